//! The RSVP functions on their events/ files, against the emulators: the statistics the live API
//! answers equal the independent computation over the event's records, and the dashboard feed
//! counts a republished alert once.

use chrono::{TimeZone, Utc};
use lambda_http::http::Method;
use lambda_runtime::{Context, LambdaEvent};
use live_api::LiveApi;
use serde_json::{json, Value};
use tally_aws::http::HttpApi;
use tally_aws::kinesis_event::KinesisEvent;

use super::{expected, without_as_of};
use crate::support::{deliver_twice, event_file, Stack};

fn kinesis_file(name: &str) -> KinesisEvent {
    serde_json::from_value(event_file(name)).unwrap()
}

/// The reasons of the dead letters under `prefix`.
async fn reasons(stack: &Stack, prefix: &str) -> Vec<String> {
    stack
        .objects("ArchiveBucket", prefix)
        .await
        .values()
        .map(|b| {
            let v: Value = serde_json::from_slice(b).unwrap();
            v["reason"].as_str().unwrap().to_string()
        })
        .collect()
}

#[tokio::test]
async fn rsvp_stats_on_its_event_file_then_the_live_api_on_its_own() {
    let stack = Stack::new(&[]).await;
    let f = rsvp_stats::from_env(&stack.sdk, &stack.function_env("RsvpStatsFunction")).unwrap();
    let event = kinesis_file("RsvpStatsFunction.json");
    // The second delivery is a redelivery: nothing counts twice.
    deliver_twice(&f, &event).await;
    let lines: Vec<String> = tally_aws::kinesis_event::stream_records(&event)
        .unwrap()
        .into_iter()
        .map(|r| String::from_utf8(r.data).unwrap())
        .collect();

    let api = LiveApi::from_env(&stack.sdk, &stack.function_env("LiveApiFunction")).unwrap();
    let request =
        lambda_http::request::from_str(&event_file("LiveApiFunction.json").to_string()).unwrap();
    let response = api.handle(request).await.into_response().unwrap();
    assert_eq!(response.status(), 200);
    let stats: Value = serde_json::from_slice(response.body().as_ref()).unwrap();
    let want = expected(&lines);
    assert_eq!(without_as_of(stats.clone()), want);
    // The five real RSVPs say yes four times; the later version changes the first to no; the
    // duplicate counts once.
    assert_eq!(stats["totals"], json!({"yes": 3, "no": 2, "rsvps": 5}));

    let published = stack.read_stream("RsvpStatsStream").await;
    assert!(!published.is_empty(), "changes are published");
    let newest: Value = serde_json::from_slice(&published.last().unwrap().data).unwrap();
    assert_eq!(newest["totals"], stats["totals"], "{newest}");

    let reasons = reasons(&stack, "dead-letter/rsvp-stats/").await;
    assert_eq!(reasons.len(), 1, "the RSVP without a response: {reasons:?}");
    assert!(reasons[0].contains("response"), "{}", reasons[0]);
}

#[tokio::test]
async fn the_dashboard_feed_on_its_event_file_counts_a_republished_alert_once() {
    let stack = Stack::new(&[]).await;
    let f =
        dashboard_feed::from_env(&stack.sdk, &stack.function_env("DashboardFeedFunction")).unwrap();
    let response = f
        .handle(LambdaEvent::new(
            kinesis_file("DashboardFeedFunction.json"),
            Context::default(),
        ))
        .await
        .unwrap();
    assert!(response.batch_item_failures.is_empty(), "{response:?}");

    // The event's records arrived at 10:00 on 2026-11-22: the dashboard as of half an hour later.
    let api = LiveApi::from_env(&stack.sdk, &stack.function_env("LiveApiFunction")).unwrap();
    let at = Utc.with_ymd_and_hms(2026, 11, 22, 10, 30, 0).unwrap();
    let reply = api
        .route(
            &Method::GET,
            "/api/v1/dashboard",
            &live_api::Query::default(),
            at,
        )
        .await;
    let response = reply.into_response().unwrap();
    assert_eq!(response.status(), 200);
    let dashboard: Value = serde_json::from_slice(response.body().as_ref()).unwrap();
    let panels = &dashboard["panels"];
    let paid_user = panels["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["rule"] == "paid_user")
        .unwrap();
    assert_eq!(paid_user["alerts"], 2, "{panels}");
    let mut users: Vec<i64> = panels["latest_alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["key"].as_i64().unwrap())
        .collect();
    users.sort();
    assert_eq!(users, [1, 2], "{panels}");

    let reasons = reasons(&stack, "dead-letter/dash/").await;
    assert_eq!(reasons.len(), 1, "the alert of no rule: {reasons:?}");
    assert!(reasons[0].contains("no_such_rule"), "{}", reasons[0]);
}
