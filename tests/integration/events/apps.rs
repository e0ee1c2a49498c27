//! `tally apps rotate` and `revoke` against the running stack: a key rotated without grace and a
//! revoked app's keys are refused by `/collect` within a minute (its key cache), the new key
//! works, and `tally apps list` says each app's state.

use std::time::Duration;

use serde_json::json;
use tally_cloud::http::http_send;

use crate::support::{register_app, shared_cloud, shared_stack, tally, tally_stdout, wait_for};

/// `POST /collect` of one valid event with `key`: the status.
async fn post_with(api_url: &str, key: &str) -> u16 {
    let body = json!([{"event_id": format!("rot-{}", uuid_like()), "event_type": "app_open", "client_time": 1_764_000_000_000i64, "device": {"id": "d-rot", "platform": "web"}}]);
    let headers = [("x-api-key", key), ("content-type", "application/json")];
    http_send(
        hyper::Method::POST,
        &format!("{api_url}/collect"),
        &headers,
        body.to_string().into_bytes(),
    )
    .await
    .unwrap()
    .status
}

fn uuid_like() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

/// The state `tally apps list` gives `app_id`.
fn listed_state(edge_url: &str, app_id: &str) -> String {
    let out = tally(&["apps", "list"], edge_url);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.split('\t').collect::<Vec<_>>())
        .find(|f| f[0] == app_id)
        .map(|f| f[3].to_string())
        .unwrap_or_else(|| panic!("{app_id} not listed"))
}

/// Waits until `key` gets `status` from `/collect` (at most 90 s: the cache keeps a key a minute).
async fn until_answered(api_url: &str, key: &str, status: u16, what: &str) {
    wait_for(what, Duration::from_secs(90), || async move {
        (post_with(api_url, key).await == status).then_some(())
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_key_and_a_revoked_app_are_refused_within_a_minute() {
    let cloud = shared_cloud();
    let (edge, api) = (&cloud.edge_url, &cloud.api_url);
    let (rotating, first) = register_app(&shared_stack(), edge, "Rotating e2e");
    let (revoked, revoked_key) = register_app(&shared_stack(), edge, "Revoked e2e");
    assert_eq!(post_with(api, &first).await, 200);
    assert_eq!(post_with(api, &revoked_key).await, 200);
    let apps = |args: &[&str]| {
        let stdout = tally_stdout(&shared_stack(), &[&["apps"], args].concat(), edge);
        stdout.lines().last().unwrap_or_default().to_string()
    };

    // Both at once, so that the one minute of `/collect`'s key cache is waited for once.
    let second = apps(&["rotate", &rotating, "--grace", "0"]);
    apps(&["revoke", &revoked]);
    assert_ne!(second, first);
    assert_eq!(
        post_with(api, &second).await,
        200,
        "the new key works at once"
    );
    assert_eq!(listed_state(edge, &rotating), "active");
    assert_eq!(listed_state(edge, &revoked), "revoked");
    tokio::join!(
        until_answered(api, &first, 403, "the key rotated without grace refused"),
        until_answered(api, &revoked_key, 403, "the revoked app's key refused"),
    );

    let third = apps(&["rotate", &rotating, "--grace", "3600"]);
    assert!(listed_state(edge, &rotating).starts_with("rotating (old key until "));
    assert_eq!(
        post_with(api, &second).await,
        200,
        "the old key works during its grace"
    );
    assert_eq!(post_with(api, &third).await, 200);
    let out = tally(&["apps", "rotate", &revoked], edge);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("is revoked"),
        "a revoked app gets no new key"
    );
}
