//! The lookup API's answers and errors against a real results table.

use chrono::{Duration, Utc};
use gender_api::GenderApi;
use lambda_http::http::{Method, StatusCode};
use tally_engine::StoredState;
use tally_pipelines::gender::model::{Bucket, GenderCounts, ModelState, RecentTopGenderModel};
use tally_pipelines::gender::{Cid, GenderResult, ResultsUpsert};

use crate::support::Stack;

async fn api_with(
    stack: &Stack, results: &[GenderResult],
) -> GenderApi<tally_aws::DynamoResultsTable> {
    let api = GenderApi::from_env(&stack.sdk, &stack.function_env("GenderApiFunction")).unwrap();
    for r in results {
        let stored = api
            .lookup
            .upsert_newer(&r.cid, std::slice::from_ref(r))
            .await
            .unwrap();
        assert_eq!(stored, 1);
    }
    api
}

#[tokio::test]
async fn errors_are_json_4xx_never_5xx() {
    let stack = Stack::new(&[]).await;
    let api = api_with(&stack, &[]).await;
    let now = Utc::now();
    let cases = [
        (
            "/api/v1/getGender/C404",
            Some("MODEL2"),
            StatusCode::NOT_FOUND,
            "unknown cid C404",
        ),
        (
            "/api/v1/getGender/C1",
            Some("MODEL7"),
            StatusCode::BAD_REQUEST,
            "unknown model",
        ),
        (
            "/api/v1/getGender/C1",
            Some("model2"),
            StatusCode::BAD_REQUEST,
            "unknown model",
        ),
        (
            "/api/v1/getGender/C%201",
            None,
            StatusCode::BAD_REQUEST,
            "invalid cid",
        ),
        (
            "/api/v1/getGender/",
            None,
            StatusCode::NOT_FOUND,
            "no route",
        ),
        ("/api/v2/whatever", None, StatusCode::NOT_FOUND, "no route"),
    ];
    for (path, model, status, message) in cases {
        let reply = api.route(&Method::GET, path, model, now).await;
        assert_eq!(reply.status, status, "{path} {model:?}: {}", reply.body);
        assert!(
            reply.body["error"].as_str().unwrap().contains(message),
            "{path}: {}",
            reply.body
        );
    }
    let root = api.route(&Method::GET, "/", None, now).await;
    assert_eq!(root.status, StatusCode::OK);
    assert_eq!(root.body["service"], "tally");
    assert!(root.body["version"].is_string());
}

#[tokio::test]
async fn model3_answer_moves_with_time_and_expires() {
    let stack = Stack::new(&[]).await;
    let model = RecentTopGenderModel { days: 7 };
    let now = Utc::now();
    let mut state = ModelState::default();
    state.counts.insert(
        Bucket::Day((now - Duration::days(6)).date_naive()),
        GenderCounts { male: 3, female: 0 },
    );
    state.counts.insert(
        Bucket::Day(now.date_naive()),
        GenderCounts { male: 0, female: 2 },
    );
    let stored = StoredState {
        rev: 2,
        counters: ModelState::counters(&state.counts),
        ..Default::default()
    };
    let result = GenderResult::from_state(&model, &Cid::parse("C3").unwrap(), &stored, now);
    let api = api_with(&stack, &[result]).await;

    // C3's answer by MODEL3 as the API gives it `days` from now.
    let c3_after = |days: i64| {
        api.route(
            &Method::GET,
            "/api/v1/getGender/C3",
            Some("MODEL3"),
            now + Duration::days(days),
        )
    };
    let today = c3_after(0).await;
    assert_eq!(today.status, StatusCode::OK);
    assert_eq!(
        (
            today.body["gndr"].as_str(),
            today.body["male"].as_u64(),
            today.body["female"].as_u64()
        ),
        (Some("male"), Some(3), Some(2))
    );
    // Tomorrow the three male visits are eight days old: they no longer count, though stored.
    let tomorrow = c3_after(1).await;
    assert_eq!(tomorrow.body["gndr"], "female");
    // A week later nothing is left in the window: no answer, as a 404.
    let later = c3_after(8).await;
    assert_eq!(later.status, StatusCode::NOT_FOUND);
    assert!(later.body["error"]
        .as_str()
        .unwrap()
        .contains("no visits in its window"));
}
