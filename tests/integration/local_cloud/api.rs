//! The local API Gateway applies the template's route throttling and the read routes'
//! authorization (ApiReadAuth), as API Gateway does.

use base64::Engine;
use tally_cloud::cloud::LocalCloud;
use tally_cloud::http::{http_get, http_send};

use crate::support::cloud_options;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_route_past_its_throttle_is_answered_429_and_other_routes_are_not() {
    let mut opts = cloud_options(&format!("thr{}", std::process::id()));
    opts.params.insert("ApiThrottleRate".into(), "1".into());
    opts.params.insert("ApiThrottleBurst".into(), "3".into());
    let cloud = LocalCloud::start(opts)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let mut statuses = Vec::new();
    let start = std::time::Instant::now();
    for _ in 0..8 {
        let (status, body) = http_get(&format!("{}/api/v1/rsvp/stats", cloud.api_url))
            .await
            .unwrap();
        if status == 429 {
            assert_eq!(body, r#"{"message":"Too Many Requests"}"#);
        }
        statuses.push(status);
    }
    // The burst, and one more for each second the requests took.
    let most = 3 + start.elapsed().as_secs_f64().ceil() as usize;
    let admitted = statuses.iter().filter(|s| **s == 200).count();
    assert!(
        (3..=most).contains(&admitted)
            && admitted + statuses.iter().filter(|s| **s == 429).count() == 8,
        "a burst of 3 and 1 a second: {statuses:?}"
    );
    let (status, _) = http_get(&format!("{}/api/v1/events/metrics", cloud.api_url))
        .await
        .unwrap();
    assert_eq!(status, 200, "another route has a bucket of its own");
    cloud.stop().await;
}

/// GET `path` on the cloud's API with `headers`: (status, body).
async fn get(cloud: &LocalCloud, path: &str, headers: &[(&str, &str)]) -> (u16, String) {
    let url = format!("{}{path}", cloud.api_url);
    let r = http_send(hyper::Method::GET, &url, headers, Vec::new())
        .await
        .unwrap();
    (r.status, r.body)
}

const READ_ROUTES: [&str; 4] = [
    "/api/v1/getGender/C1",
    "/api/v1/rsvp/stats",
    "/api/v1/events/metrics",
    "/api/v1/dashboard",
];

/// Each read route answers each of `refused` (who, its `Authorization`) API Gateway's `refusal`
/// (status and message), and serves a request with `Authorization: allowed`.
async fn every_read_route_refuses(
    cloud: &LocalCloud, refused: &[(&str, Option<&str>)], refusal: (u16, &str), allowed: &str,
) {
    let message = format!(r#"{{"message":"{}"}}"#, refusal.1);
    for route in READ_ROUTES {
        for (who, authorization) in refused {
            let headers: Vec<_> = authorization
                .map(|a| ("authorization", a))
                .into_iter()
                .collect();
            let (status, body) = get(cloud, route, &headers).await;
            assert_eq!(
                (status, body.as_str()),
                (refusal.0, message.as_str()),
                "GET {route}: {who}"
            );
        }
        let (status, body) = get(cloud, route, &[("authorization", allowed)]).await;
        assert!(
            status == 200 || (status == 404 && route.contains("getGender")),
            "GET {route} allowed: {status} {body}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_jwt_read_auth_the_read_routes_want_a_token_and_the_page_does_not() {
    let issuer = "https://issuer.example";
    let mut opts = cloud_options(&format!("jwt{}", std::process::id()));
    opts.params.insert("ApiReadAuth".into(), "jwt".into());
    opts.params.insert("ApiJwtIssuer".into(), issuer.into());
    opts.params
        .insert("ApiJwtAudience".into(), "dashboard,tools".into());
    let cloud = LocalCloud::start(opts)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let b64 = |v: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
    let exp = chrono::Utc::now().timestamp() + 600;
    let claims = serde_json::json!({"iss": issuer, "aud": "tools", "exp": exp});
    let bearer = format!(
        "Bearer {}.{}.{}",
        b64(br#"{"alg":"RS256"}"#),
        b64(claims.to_string().as_bytes()),
        b64(b"sig")
    );
    let no_token = ("no token", None);
    every_read_route_refuses(&cloud, &[no_token], (401, "Unauthorized"), &bearer).await;
    // The lookup is not reachable around its authorizer through the catch-all route.
    let (status, _) = get(&cloud, "/api/v1/getGender/C1/x", &[]).await;
    assert_eq!(status, 404);
    // The page itself and /collect's own keys are not the authorizer's.
    assert_eq!(get(&cloud, "/dashboard", &[]).await.0, 200);
    assert_eq!(get(&cloud, "/", &[]).await.0, 200);
    cloud.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_iam_read_auth_the_read_routes_want_a_signature_of_an_allowed_principal() {
    let mut opts = cloud_options(&format!("iamapi{}", std::process::id()));
    opts.params.insert("ApiReadAuth".into(), "iam".into());
    let cloud = LocalCloud::start(opts)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let signed_by = |key: &str| {
        format!("AWS4-HMAC-SHA256 Credential={key}/20261203/us-east-1/execute-api/aws4_request, SignedHeaders=host, Signature=0")
    };
    // A function's role has no execute-api:Invoke; the account's administrator may do anything.
    let role = signed_by(&tally_control::iam::role_key("GenderModelsFunctionRole"));
    let admin = signed_by("AKIAADMINISTRATOR");
    let refused = [("nobody", None), ("a role", Some(role.as_str()))];
    every_read_route_refuses(&cloud, &refused, (403, "Forbidden"), &admin).await;
    assert_eq!(get(&cloud, "/dashboard", &[]).await.0, 200);
    cloud.stop().await;
}

/// The dashboard of a stack with no data yet, as Chromium renders it: zeros, the empty-state
/// notes, and a neutral yes/no bar (not a red one for 0 of 0).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_dashboard_is_neutral() {
    let cloud = LocalCloud::start(cloud_options(&format!("empty{}", std::process::id())))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let url = format!("{}/dashboard", cloud.api_url);
    let dom = tokio::task::spawn_blocking(move || crate::support::chromium_dom(&url))
        .await
        .unwrap();
    assert!(
        dom.contains(r#"id="total-rsvps">0<"#),
        "the page loaded its data"
    );
    assert!(
        dom.contains(r#"class="ratio none" id="ratio""#),
        "a neutral bar"
    );
    for note in ["top-empty", "answers-empty", "latest-empty", "events-empty"] {
        assert!(
            dom.contains(&format!(r#"id="{note}" class="empty">"#)),
            "{note} shown"
        );
    }
    cloud.stop().await;
}
