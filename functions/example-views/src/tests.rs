//! The counter on the engine, against in-memory ports: what a user of the counts would check.

use chrono::{DateTime, TimeZone, Utc};
use tally_engine::testing::*;
use tally_engine::{Engine, StreamRecord};

use super::views::ViewCounter;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 0).unwrap()
}

fn record(i: u64, data: &str) -> StreamRecord {
    StreamRecord {
        shard_id: "shardId-000000000000".into(),
        sequence_number: kinesis_sequence(i),
        partition_key: "pk".into(),
        data: data.as_bytes().to_vec(),
        arrival: now(),
    }
}

fn views() -> Vec<StreamRecord> {
    vec![
        record(1, r#"{"page":"/home","at":"2026-11-22T09:59:05Z"}"#),
        record(2, r#"{"page":"/home","at":"2026-11-22T09:59:40Z"}"#),
        record(3, r#"{"page":"/pricing","at":"2026-11-22T09:59:41Z"}"#),
        record(4, r#"{"page":"/home","at":"2026-11-22T09:58:59Z"}"#),
        record(5, r#"{"at":"2026-11-22T09:59:42Z"}"#),
        record(6, r#"{"page":"home","at":"2026-11-22T09:59:42Z"}"#),
        record(7, r#"{"page":"/home","at":"2030-01-01T00:00:00Z"}"#),
    ]
}

/// The newest count published per (page, minute).
fn counts(publisher: &MemoryPublisher) -> Vec<(String, String, u64)> {
    let mut newest = std::collections::BTreeMap::new();
    for v in publisher.json() {
        let key = (
            v["page"].as_str().unwrap().to_string(),
            v["minute"].as_str().unwrap().to_string(),
        );
        let e = newest.entry(key).or_insert((0, 0));
        if v["rev"].as_u64().unwrap() >= e.0 {
            *e = (v["rev"].as_u64().unwrap(), v["views"].as_u64().unwrap());
        }
    }
    newest
        .into_iter()
        .map(|((p, m), (_, n))| (p, m, n))
        .collect()
}

#[tokio::test]
async fn views_are_counted_per_page_and_minute_and_bad_ones_are_dead_letters() {
    let (store, publisher, dl) = memory_ports();
    let engine = Engine::new(ViewCounter::default(), &store, &publisher, &dl);
    let report = engine.run(&views(), now()).await;
    assert_eq!(report.retry_from, None);
    assert_eq!(
        counts(&publisher),
        [
            ("/home".into(), "2026-11-22T09:58Z".into(), 1),
            ("/home".into(), "2026-11-22T09:59Z".into(), 2),
            ("/pricing".into(), "2026-11-22T09:59Z".into(), 1),
        ]
    );
    let reasons = dl.reasons();
    assert_eq!(reasons.len(), 3, "{reasons:?}");
    assert_reasons_include(
        &reasons,
        &["missing field page", "must start with /", "out of range"],
    );
}

#[tokio::test]
async fn a_redelivered_or_split_batch_counts_each_view_once() {
    let (store, publisher, dl) = memory_ports();
    let engine = Engine::new(ViewCounter::default(), &store, &publisher, &dl);
    let all = views();
    // The first three records, then the whole batch again (Lambda retrying after a timeout).
    engine.run(&all[..3], now()).await;
    engine.run(&all, now()).await;
    let home = counts(&publisher)
        .into_iter()
        .find(|(p, m, _)| p == "/home" && m == "2026-11-22T09:59Z")
        .unwrap();
    assert_eq!(home.2, 2);
}
