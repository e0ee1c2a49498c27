//! The events functions on their events/ files, against the emulators: `/collect` with a key
//! registered in the stack's `AppsTable`, the live metrics (a repeat counted once, the invalid
//! event dead-lettered with its pointer), and the archive's router.

use chrono::{TimeZone, Utc};
use serde_json::{json, Value};
use tally_aws::http::HttpApi;
use tally_aws::kinesis_event::KinesisEvent;
use tally_aws::{DynamoAppKeys, DynamoSealKeys};
use tally_events::collect::{key_hash, App};
use tally_events::{read_metrics, IngestSeal, SealKeys, DIRECT_APP};

use crate::support::{deliver_twice, event_file, Stack};

#[tokio::test]
async fn collect_on_its_event_file_puts_the_valid_events_and_lists_the_other() {
    let stack = Stack::new(&[]).await;
    DynamoAppKeys::on(tally_aws::DynamoTable::new(
        stack.clients.dynamodb.clone(),
        stack.name("AppsTable"),
    ))
    .register(
        &key_hash("tk_sample_key_registered_by_the_test"),
        &App {
            app_id: "flyers-3f2a9c".into(),
            name: "Flyers".into(),
            origins: Vec::new(),
        },
    )
    .await
    .unwrap();
    let api =
        collect::CollectApi::from_env(&stack.sdk, &stack.function_env("CollectFunction")).unwrap();
    let request =
        lambda_http::request::from_str(&event_file("CollectFunction.json").to_string()).unwrap();
    let response = api.handle(request).await.into_response().unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = serde_json::from_slice(response.body().as_ref()).unwrap();
    assert_eq!(body["accepted"], 2, "{body}");
    assert_eq!(body["rejected"][0]["index"], 1);
    let put: Vec<Value> = stack
        .read_stream("EventsStream")
        .await
        .iter()
        .map(|r| serde_json::from_slice(&r.data).unwrap())
        .collect();
    assert_eq!(put.len(), 2);
    assert!(put
        .iter()
        .all(|e| e["app_id"] == "flyers-3f2a9c" && e["server_time"].is_string()));
    // Sealed with the stack's key, which the first function that needed it made.
    let key = DynamoSealKeys::on(tally_aws::DynamoTable::new(
        stack.clients.dynamodb.clone(),
        stack.name("AppsTable"),
    ))
    .seal_key()
    .await
    .unwrap();
    let seal = IngestSeal::new(key);
    assert!(put
        .iter()
        .all(|e| e.as_object().is_some_and(|e| seal.verifies(e))));
}

#[tokio::test]
async fn events_metrics_on_its_event_file_count_each_event_id_once() {
    let stack = Stack::new(&[]).await;
    let f =
        events_metrics::from_env(&stack.sdk, &stack.function_env("EventsMetricsFunction")).unwrap();
    let event: KinesisEvent =
        serde_json::from_value(event_file("EventsMetricsFunction.json")).unwrap();
    // The second delivery is a redelivery: nothing counts twice.
    deliver_twice(&f, &event).await;
    let store =
        tally_aws::state_store(&stack.sdk, &stack.function_env("EventsMetricsFunction")).unwrap();
    let at = Utc.with_ymd_and_hms(2026, 11, 22, 10, 30, 0).unwrap();
    let all = read_metrics(&store, None, 60, at).await.unwrap();
    assert_eq!(
        serde_json::to_value(&all.totals).unwrap(),
        json!({"click": 1, "screen_view": 1, "search": 1})
    );
    // The file's records name an app but carry no ingest seal (as a direct put would): they
    // count under `direct`, never for the app they claim.
    let app = read_metrics(&store, Some("flyers-3f2a9c"), 60, at)
        .await
        .unwrap();
    assert_eq!(app.events, 0);
    let direct = read_metrics(&store, Some(DIRECT_APP), 60, at)
        .await
        .unwrap();
    assert_eq!(direct.events, 3);
    let letters = stack
        .objects("ArchiveBucket", "dead-letter/events-metrics/")
        .await;
    assert_eq!(letters.len(), 1);
    let letter: Value = serde_json::from_slice(letters.values().next().unwrap()).unwrap();
    assert_eq!(letter["reason_code"], "schema_violation");
    assert!(
        letter["reason"]
            .as_str()
            .unwrap()
            .contains("/attributes/price"),
        "{letter}"
    );
}

#[tokio::test]
async fn the_router_on_its_event_file_partitions_the_valid_event_and_fails_the_rest() {
    let stack = Stack::new(&[]).await;
    let router = events_router::EventsRouter::from_env(
        &stack.sdk,
        &stack.function_env("EventsRouterFunction"),
    )
    .unwrap();
    let event: events_router::TransformationEvent =
        serde_json::from_value(event_file("EventsRouterFunction.json")).unwrap();
    let out = router.transform(event, Utc::now()).await.unwrap();
    let results: Vec<&str> = out.records.iter().map(|r| r.result).collect();
    assert_eq!(results, ["Ok", "ProcessingFailed", "ProcessingFailed"]);
    let keys = out.records[0].metadata.as_ref().unwrap();
    assert_eq!(keys.partition_keys["event_type"], "screen_view");
}
