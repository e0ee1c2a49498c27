//! Hostile input against every decoder and every handler, on in-memory ports: arbitrary bytes,
//! and each record shape with its fields replaced by values chosen to hurt (chrono's limits, year
//! 9999, negative and huge numbers, wrong types, control characters, deep nesting), arriving at
//! any time. Nothing may panic, no batch may fail, and every record ends applied, ignored or
//! dead-lettered, once.
//!
//! `make test` runs a short pass; a long one is `TALLY_FUZZ_CASES=200000 cargo test --release -p
//! tally-pipelines -- fuzz` (docs/exactly-once.md, "Hostile input").

use chrono::{DateTime, Duration, TimeZone, Utc};
use serde_json::{json, Value};
use tally_engine::testing::*;
use tally_engine::{BatchHandler, BatchReport, Engine, StreamRecord};

use crate::dashboard::FeedConsumer;
use crate::gender::model::{LastVisitModel, RecentTopGenderModel, TopGenderModel};
use crate::gender::results_writer::ResultsWriter;
use crate::gender::testing::MemoryResultsTable;
use crate::gender::{GenderModel, VisitConsumer, VisitDecoder};
use crate::rsvp::{RsvpDecoder, RsvpStats};
use crate::rules::interaction::InteractionDecoder;
use crate::rules::{Rule, RuleConsumer, RULES};
use tally_events::{EventDecoder, EventsMetrics, IngestSeal};

/// Cases per target: `TALLY_FUZZ_CASES`, or a pass short enough for `make test`.
fn cases() -> u64 {
    std::env::var("TALLY_FUZZ_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(600)
}

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 22, 12, 0, 0).unwrap()
}

/// Values that have broken parsers, clocks and counters before.
fn hostile(rng: &mut SeededRng) -> Value {
    let pick = rng.below(36);
    match pick {
        0 => Value::Null,
        1 => json!(true),
        2 => json!(0),
        3 => json!(-1),
        4 => json!(i64::MIN),
        5 => json!(i64::MAX),
        6 => json!(u64::MAX),
        7 => json!(1.5),
        8 => json!(1e308),
        9 => json!(-1e308),
        10 => json!(8_210_266_876_799_999i64),
        11 => json!(-8_210_266_876_799_999i64),
        12 => json!(""),
        13 => json!("x".repeat(5_000)),
        14 => json!("\u{0}\u{1f}\u{7f}"),
        15 => json!("💥 \u{202e}"),
        16 => json!("9999-12-31T23:59:59Z"),
        17 => json!("0000-01-01T00:00:00Z"),
        18 => json!("2026-02-30T00:00:00Z"),
        19 => json!("1969-12-31T23:59:59.999Z"),
        20 => json!("-1"),
        21 => json!("99999999999999999999999"),
        22 => json!("9999-12-31 23:59:59"),
        23 => json!("2021-11-30 00:00:00"),
        24 => json!("male"),
        25 => json!("FEMALE"),
        26 => json!("yes"),
        27 => json!("Interaction"),
        28 => json!([]),
        29 => json!([1, "a", null]),
        30 => json!({}),
        31 => json!({"a": {"b": [{"c": null}]}}),
        32 => json!(rng.next_u64() as i64),
        33 => json!((now() + Duration::minutes(rng.below(3000) as i64 - 1500)).timestamp_millis()),
        34 => json!((now() + Duration::hours(rng.below(60) as i64 - 30)).to_rfc3339()),
        _ => {
            let depth = 1 + rng.below(200) as usize;
            serde_json::from_str(&format!("{}{}", "[".repeat(depth), "]".repeat(depth)))
                .unwrap_or(Value::Null)
        }
    }
}

/// A random place in `v`: replaced by a hostile value, removed, or given a sibling.
fn mutate(v: &mut Value, rng: &mut SeededRng) {
    match v {
        Value::Object(map) if !map.is_empty() && rng.below(4) != 0 => {
            let keys: Vec<String> = map.keys().cloned().collect();
            let key = &keys[rng.below(keys.len() as u64) as usize];
            match rng.below(6) {
                0 => {
                    map.remove(key);
                }
                1 => {
                    map.insert(format!("extra{}", rng.below(5)), hostile(rng));
                }
                2 | 3 => mutate(map.get_mut(key).expect("a key of the map"), rng),
                _ => {
                    map.insert(key.clone(), hostile(rng));
                }
            }
        }
        Value::Array(items) if !items.is_empty() && rng.below(3) != 0 => {
            let i = rng.below(items.len() as u64) as usize;
            mutate(&mut items[i], rng);
        }
        other => *other = hostile(rng),
    }
}

/// A time as a record might carry it: at the limits of what a time can be, or near now.
fn hostile_time(rng: &mut SeededRng) -> Value {
    match rng.below(12) {
        0 => json!(8_210_266_876_799_999i64),
        1 => json!(-8_210_266_876_799_999i64),
        2 => json!("9999-12-31T23:59:59Z"),
        3 => json!("9999-12-31 23:59:59"),
        4 => json!(-1),
        5 => json!("2026-02-30T00:00:00Z"),
        6 => json!(0),
        7 => json!(i64::MAX),
        _ => hostile(rng),
    }
}

/// Bytes a stream could carry: the shape with a hostile time or other field, or garbage.
fn hostile_bytes(template: &Value, rng: &mut SeededRng) -> Vec<u8> {
    const TIMES: [&str; 5] = ["ts", "date", "mtime", "client_time", "server_time"];
    if rng.below(3) == 0 {
        let mut v = template.clone();
        if let Some(map) = v.as_object_mut() {
            for field in TIMES {
                if map.contains_key(field) {
                    map.insert(field.to_string(), hostile_time(rng));
                }
            }
        }
        return v.to_string().into_bytes();
    }
    match rng.below(10) {
        0 => (0..rng.below(300)).map(|_| rng.below(256) as u8).collect(),
        1 => {
            let text = template.to_string();
            text.as_bytes()[..rng.below(text.len() as u64) as usize].to_vec()
        }
        2 => {
            let mut bytes = template.to_string().into_bytes();
            let at = rng.below(bytes.len() as u64) as usize;
            bytes.insert(at, 0xff);
            bytes
        }
        3 => template.to_string().into_bytes(),
        _ => {
            let mut v = template.clone();
            for _ in 0..=rng.below(3) {
                mutate(&mut v, rng);
            }
            v.to_string().into_bytes()
        }
    }
}

/// When a record arrived: mostly now, sometimes at the ends of time.
fn arrival(rng: &mut SeededRng) -> DateTime<Utc> {
    match rng.below(8) {
        0 => DateTime::<Utc>::MAX_UTC,
        1 => DateTime::<Utc>::MIN_UTC,
        2 => DateTime::<Utc>::UNIX_EPOCH,
        _ => now() - Duration::seconds(rng.below(7 * 86_400) as i64),
    }
}

/// A batch of `n` hostile records of one shard (sequence numbers in order).
fn batch(template: &Value, rng: &mut SeededRng, start: u64, n: u64) -> Vec<StreamRecord> {
    (0..n)
        .map(|i| StreamRecord {
            shard_id: "shardId-000000000000".into(),
            sequence_number: kinesis_sequence(start + i),
            partition_key: format!("k{}", rng.below(8)),
            data: hostile_bytes(template, rng),
            arrival: arrival(rng),
        })
        .collect()
}

/// Every record accounted for once, nothing to retry.
fn assert_accounted(what: &str, report: &BatchReport, letters: usize, before: usize) {
    let rejected: u64 = report.rejected.values().sum();
    assert_eq!(
        report.valid + report.ignored + rejected as usize,
        report.records,
        "{what}: every record applied, ignored or rejected: {report:?}"
    );
    assert_eq!(
        letters - before,
        rejected as usize,
        "{what}: one dead letter per rejected record"
    );
    assert_eq!(
        report.retry_from, None,
        "{what}: hostile input never fails a batch: {report:?}"
    );
}

/// Runs `handler` over hostile batches of `template`'s shape.
async fn fuzz_handler(
    what: &str, template: Value, seed: u64, handler: &impl BatchHandler, dl: &MemoryDeadLetters,
) {
    let mut rng = SeededRng::new(seed);
    let mut done = 0;
    let mut seq = 1;
    while done < cases() {
        let n = 1 + rng.below(40);
        let records = batch(&template, &mut rng, seq, n);
        seq += n;
        done += n;
        let before = dl.letters.lock().unwrap().len();
        let report = handler.handle(&records, now()).await;
        assert_accounted(what, &report, dl.letters.lock().unwrap().len(), before);
    }
}

fn visit() -> Value {
    json!({"cid": "C124", "gndr": "female", "ts": "2026-11-22T10:00:00Z"})
}

fn interaction() -> Value {
    json!({"user_id": 1, "property_id": 1, "date": "2021-11-30 00:00:00", "event": "Interaction"})
}

fn rsvp() -> Value {
    let sample = include_str!("../../../tests/fixtures/meetup_rsvp_sample.jsonl");
    serde_json::from_str(sample.lines().next().expect("a sample line")).expect("json")
}

fn app_event(seal: &IngestSeal) -> Value {
    let event = json!({"event_id": "e1", "event_type": "clip_play", "client_time": "2026-11-22T10:00:00Z", "device": {"id": "d1", "platform": "ios"}, "attributes": {"clip_id": "c1", "position_ms": 5}, "app_id": "a1", "app_name": "A", "server_time": "2026-11-22T10:00:01.000Z"});
    let Value::Object(map) = event else {
        unreachable!()
    };
    Value::Object(seal.seal(map))
}

fn gender_result() -> Value {
    json!({"_id": "C124_MODEL2", "model": "MODEL2", "cid": "C124", "gndr": "male", "rev": 3, "as_of": "2026-11-22T10:00:00Z"})
}

#[test]
fn decoders_never_panic_and_say_why() {
    let mut rng = SeededRng::new(1);
    let seal = IngestSeal::new(vec![9; 32]);
    let shapes = [
        visit(),
        interaction(),
        rsvp(),
        app_event(&seal),
        gender_result(),
    ];
    for i in 0..cases() * 4 {
        let shape = &shapes[(i % shapes.len() as u64) as usize];
        let record = StreamRecord {
            shard_id: "s".into(),
            sequence_number: kinesis_sequence(i + 1),
            partition_key: "k".into(),
            data: hostile_bytes(shape, &mut rng),
            arrival: arrival(&mut rng),
        };
        // Each result is either a value or a reason with a code; none may panic.
        let codes = [
            VisitDecoder::default()
                .decode(&record)
                .err()
                .map(|e| e.code()),
            InteractionDecoder::default()
                .decode(&record)
                .err()
                .map(|e| e.code()),
            RsvpDecoder::default()
                .decode(&record)
                .err()
                .map(|e| e.code()),
            EventDecoder::default()
                .decode_record(&record, &seal)
                .err()
                .map(|e| e.code()),
            crate::gender::results_writer::decode_result(&record)
                .err()
                .map(|e| e.code()),
        ];
        assert!(codes.iter().flatten().all(|c| !c.is_empty()));
    }
}

#[tokio::test]
async fn the_gender_models_take_any_visit() {
    let (store, publisher, dl) = memory_ports();
    const ALL: [&dyn GenderModel; 3] = [
        &LastVisitModel,
        &TopGenderModel,
        &RecentTopGenderModel { days: 7 },
    ];
    let engine = Engine::new(
        VisitConsumer::combined(ALL.to_vec()),
        &store,
        &publisher,
        &dl,
    );
    fuzz_handler("gender models", visit(), 2, &engine, &dl).await;
}

#[tokio::test]
async fn every_rule_takes_any_interaction() {
    for (i, def) in RULES.iter().enumerate() {
        let (store, publisher, dl) = memory_ports();
        let engine = Engine::new(
            RuleConsumer::new(Rule::by_name(def.name, 9, 60, 3_600).unwrap()),
            &store,
            &publisher,
            &dl,
        );
        fuzz_handler(def.name, interaction(), 3 + i as u64, &engine, &dl).await;
    }
}

#[tokio::test]
async fn the_rsvp_stats_take_any_rsvp() {
    let (store, publisher, dl) = memory_ports();
    let handler = RsvpStats::handler(&store, &publisher, &dl);
    fuzz_handler("rsvp stats", rsvp(), 7, &handler, &dl).await;
}

#[tokio::test]
async fn the_event_metrics_take_any_event() {
    let key = vec![9u8; 32];
    let (store, dl) = (MemoryStateStore::new(), MemoryDeadLetters::default());
    let handler = EventsMetrics::handler(&store, &dl, key.clone());
    fuzz_handler(
        "event metrics",
        app_event(&IngestSeal::new(key)),
        8,
        &handler,
        &dl,
    )
    .await;
}

#[tokio::test]
async fn the_results_writer_and_the_dashboard_feed_take_any_record() {
    let (table, dl) = (MemoryResultsTable::default(), MemoryDeadLetters::default());
    let writer = ResultsWriter {
        table,
        dead_letters: &dl,
        aggregation: tally_engine::Aggregation::PerKey,
    };
    fuzz_handler("results writer", gender_result(), 9, &writer, &dl).await;
    let (store, publisher, dl) = memory_ports();
    let feed = Engine::new(FeedConsumer, &store, &publisher, &dl);
    fuzz_handler("dashboard feed", gender_result(), 10, &feed, &dl).await;
    let alert = json!({"alert_id": "paid_user:1", "user": 1, "interactions_count": 9});
    let dl2 = MemoryDeadLetters::default();
    let feed = Engine::new(FeedConsumer, &store, &publisher, &dl2);
    fuzz_handler("dashboard feed alerts", alert, 11, &feed, &dl2).await;
}
