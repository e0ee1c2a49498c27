//! The events platform on in-memory ports: the schemas, every documented rejection, `/collect`'s
//! answers, and live metrics equal to an independent computation whatever the batching, with
//! repeated event ids, redelivery and a crash after any write.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use chrono::{DateTime, Duration, TimeZone, Utc};
use serde_json::{json, Value};
use tally_engine::ports::{OutRecord, PortError, RecordPublisher};
use tally_engine::testing::*;
use tally_engine::{Aggregation, StreamRecord};

use super::collect::{key_hash, App, AppKeys, CollectError, Collector, MAX_BODY_BYTES};
use super::metrics::{expected_metrics, read_metrics, EventsMetrics, EventsMetricsHandler};
use super::{EventDecoder, EventTypes, IngestSeal, DIRECT_APP};

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 22, 12, 0, 30).unwrap()
}

fn event(id: &str, event_type: &str, attributes: Value) -> Value {
    json!({
        "event_id": id,
        "event_type": event_type,
        "client_time": "2026-11-22T11:59:00Z",
        "device": {"id": "d1", "platform": "ios", "os_version": "18.1", "model": "iPhone16,1", "app_version": "4.2.0"},
        "user_id": "u1",
        "session_id": "s1",
        "attributes": attributes,
    })
}

fn decode(v: &Value) -> Result<super::Event, tally_engine::Rejection> {
    EventDecoder::default().decode_bytes(v.to_string().as_bytes(), now())
}

/// The seal key of these tests' stack.
fn seal_key() -> Vec<u8> {
    vec![42; super::seal::KEY_BYTES]
}

fn seal() -> IngestSeal {
    IngestSeal::new(seal_key())
}

#[test]
fn every_required_type_has_a_schema_and_app_open_and_close_need_no_attributes() {
    let types = EventTypes::built_in();
    for t in [
        "app_open",
        "app_close",
        "screen_view",
        "click",
        "search",
        "clip_play",
        "clip_complete",
        "purchase",
    ] {
        assert!(types.get(t).is_some(), "{t} has a schema");
    }
    for t in ["app_open", "app_close"] {
        decode(&event("e1", t, json!({}))).unwrap();
        let mut no_attributes = event("e1", t, json!({}));
        no_attributes.as_object_mut().unwrap().remove("attributes");
        decode(&no_attributes).unwrap();
    }
    let purchase = &types.get("purchase").unwrap().info;
    let columns: Vec<&str> = purchase
        .attributes
        .iter()
        .map(|a| a.name.as_str())
        .collect();
    // Columns in name order, whatever the order in the file.
    assert_eq!(
        columns,
        ["currency", "item_id", "order_id", "price", "quantity"]
    );
}

#[test]
fn a_valid_event_decodes_with_its_device_and_times() {
    let e = decode(&event(
        "e1",
        "purchase",
        json!({"order_id": "o1", "item_id": "i1", "price": 2.5, "currency": "CAD"}),
    ))
    .unwrap();
    assert_eq!(e.device.id, "d1");
    assert_eq!(e.device.platform.unwrap().as_str(), "ios");
    assert_eq!(
        e.client_time,
        Utc.with_ymd_and_hms(2026, 11, 22, 11, 59, 0).unwrap()
    );
    assert_eq!(e.attributes["price"], json!(2.5));
    assert_eq!(e.app(), DIRECT_APP, "a direct put without an app");
    let mut epoch = event("e2", "app_open", json!({}));
    epoch["client_time"] = json!(1_700_000_000_000i64);
    assert_eq!(
        decode(&epoch).unwrap().client_time.timestamp(),
        1_700_000_000
    );
}

#[test]
fn every_kind_of_bad_event_has_its_code_and_a_reason_that_says_where() {
    let valid = event(
        "e1",
        "click",
        json!({"screen_name": "home", "element_id": "b"}),
    );
    let with = |f: &dyn Fn(&mut Value)| {
        let mut v = valid.clone();
        f(&mut v);
        v
    };
    let cases: Vec<(Value, &str, &str)> = vec![
        (
            with(&|v| {
                v.as_object_mut().unwrap().remove("event_id");
            }),
            "missing_field",
            "event_id",
        ),
        (
            with(&|v| {
                v.as_object_mut().unwrap().remove("event_type");
            }),
            "missing_field",
            "event_type",
        ),
        (
            with(&|v| {
                v["device"].as_object_mut().unwrap().remove("id");
            }),
            "missing_field",
            "device.id",
        ),
        (
            with(&|v| v["event_type"] = json!("teleport")),
            "unknown_type",
            "teleport",
        ),
        (
            with(&|v| v["attributes"] = json!({"screen_name": "home"})),
            "schema_violation",
            "/attributes",
        ),
        (
            with(&|v| v["attributes"]["element_id"] = json!(7)),
            "schema_violation",
            "/attributes/element_id",
        ),
        (
            with(&|v| v["attributes"]["extra"] = json!(1)),
            "schema_violation",
            "/attributes",
        ),
        (
            with(&|v| v["device"]["platform"] = json!("symbian")),
            "invalid_field",
            "device.platform",
        ),
        (
            with(&|v| v["client_time"] = json!("yesterday")),
            "invalid_field",
            "client_time",
        ),
        (
            with(&|v| v["event_id"] = json!("")),
            "invalid_field",
            "event_id",
        ),
    ];
    for (bad, code, says) in cases {
        let why = decode(&bad).unwrap_err();
        assert_eq!(why.code(), code, "{bad}");
        assert!(why.to_string().contains(says), "{why} names {says}");
    }
    let price = event(
        "e1",
        "purchase",
        json!({"order_id": "o", "item_id": "i", "price": -1, "currency": "CAD"}),
    );
    let why = decode(&price).unwrap_err();
    assert_eq!(why.code(), "schema_violation");
    assert!(
        why.to_string()
            .starts_with("schema violation at /attributes/price:"),
        "{why}"
    );
    let d = EventDecoder::default();
    assert_eq!(
        d.decode_bytes(b"{not json", now()).unwrap_err().code(),
        "malformed_json"
    );
    let huge = event("e1", "search", json!({"query": "x".repeat(40_000)}));
    assert_eq!(
        d.decode_bytes(huge.to_string().as_bytes(), now())
            .unwrap_err()
            .code(),
        "oversized"
    );
}

// ---- /collect ----

struct Keys;

impl AppKeys for Keys {
    async fn app_by_key_hash(&self, hash: &str) -> Result<Option<App>, PortError> {
        Ok((hash == key_hash("tk_good")).then(|| App {
            app_id: "app-1".into(),
            name: "Flyers".into(),
            origins: vec!["https://shop.example".into()],
        }))
    }
}

/// A stream that refuses every other entry of the first `refusals` calls (all of them when
/// `refuse_all`), then takes all.
#[derive(Default)]
struct Stream {
    records: Mutex<Vec<OutRecord>>,
    refusals: AtomicUsize,
    refuse_all: bool,
    calls: AtomicUsize,
}

impl RecordPublisher for Stream {
    async fn publish(&self, records: &[OutRecord]) -> Result<Vec<usize>, PortError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let refusing = self
            .refusals
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        let mut refused = Vec::new();
        for (i, r) in records.iter().enumerate() {
            if refusing && (self.refuse_all || i % 2 == 1) {
                refused.push(i);
            } else {
                self.records.lock().unwrap().push(r.clone());
            }
        }
        Ok(refused)
    }
}

fn collector(refusals: usize) -> Collector<Keys, Stream, Vec<u8>> {
    let stream = Stream::default();
    stream.refusals.store(refusals, Ordering::SeqCst);
    let mut c = Collector::new(Keys, stream, seal_key());
    c.backoff = std::time::Duration::from_millis(1);
    c
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(data).unwrap();
    gz.finish().unwrap()
}

#[tokio::test]
async fn collect_accepts_each_valid_event_and_lists_the_rest_by_index() {
    let c = collector(2);
    let batch = json!([
        event("e1", "app_open", json!({})),
        event("e2", "teleport", json!({})),
        event("e3", "search", json!({"query": "milk"})),
        "not an event",
        event("e4", "search", json!({})),
        event("e5", "clip_play", json!({"clip_id": "c1"})),
    ]);
    let got = c
        .collect(
            Some("tk_good"),
            None,
            &gzip(batch.to_string().as_bytes()),
            Some("gzip"),
            now(),
        )
        .await
        .unwrap();
    assert_eq!(got.accepted, 3);
    let rejected: Vec<(usize, &str)> = got.rejected.iter().map(|r| (r.index, r.code)).collect();
    assert_eq!(
        rejected,
        [
            (1, "unknown_type"),
            (3, "not_an_object"),
            (4, "schema_violation")
        ]
    );
    // Refused entries were put again until Kinesis had all of them, stamped with the app.
    let records = c.stream.records.lock().unwrap().clone();
    let mut ids: Vec<String> = records
        .iter()
        .map(|r| {
            let v: Value = serde_json::from_slice(&r.data).unwrap();
            let Value::Object(sealed) = &v else {
                panic!("{v}")
            };
            assert!(seal().verifies(sealed), "sealed by /collect: {v}");
            assert_eq!(v["app_id"], "app-1");
            assert_eq!(v["app_name"], "Flyers");
            assert_eq!(v["server_time"], "2026-11-22T12:00:30.000Z");
            assert_eq!(r.partition_key, "d1", "keyed by device");
            v["event_id"].as_str().unwrap().to_string()
        })
        .collect();
    ids.sort();
    assert_eq!(ids, ["e1", "e3", "e5"]);
    assert_eq!(
        c.stream.calls.load(Ordering::SeqCst),
        2,
        "the refused entry was put again"
    );
    // NDJSON too.
    let ndjson = format!(
        "{}\n\n{}\n",
        event("e6", "app_close", json!({})),
        event("e7", "app_close", json!({"session_duration_ms": 5}))
    );
    let got = c
        .collect(Some("tk_good"), None, ndjson.as_bytes(), None, now())
        .await
        .unwrap();
    assert_eq!((got.accepted, got.rejected.len()), (2, 0));
}

#[tokio::test]
async fn collect_answers_every_documented_error() {
    let c = collector(0);
    let one = json!([event("e1", "app_open", json!({}))]).to_string();
    let status = |r: Result<_, CollectError>| r.map(|_| 200).unwrap_or_else(|e| e.status());
    assert_eq!(
        status(c.collect(None, None, one.as_bytes(), None, now()).await),
        401
    );
    assert_eq!(
        status(
            c.collect(Some(" "), None, one.as_bytes(), None, now())
                .await
        ),
        401
    );
    assert_eq!(
        status(
            c.collect(Some("tk_bad"), None, one.as_bytes(), None, now())
                .await
        ),
        403
    );
    // A browser's page: only the app's own origins, whatever their case.
    let from = |origin| c.collect(Some("tk_good"), Some(origin), one.as_bytes(), None, now());
    assert_eq!(status(from("https://shop.example").await), 200);
    assert_eq!(status(from("HTTPS://Shop.Example").await), 200);
    let refused = from("https://evil.example").await.unwrap_err();
    assert_eq!(refused.status(), 403);
    assert!(
        refused
            .to_string()
            .contains("origin https://evil.example may not post events of app Flyers"),
        "{refused}"
    );
    assert_eq!(
        status(
            c.collect(Some("tk_good"), None, b"{\"a\":", None, now())
                .await
        ),
        400
    );
    assert_eq!(
        status(c.collect(Some("tk_good"), None, b"[1,", None, now()).await),
        400
    );
    assert_eq!(
        status(c.collect(Some("tk_good"), None, b"", None, now()).await),
        400
    );
    assert_eq!(
        status(
            c.collect(Some("tk_good"), None, b"plain", Some("gzip"), now())
                .await
        ),
        400
    );
    assert_eq!(
        status(
            c.collect(Some("tk_good"), None, one.as_bytes(), Some("br"), now())
                .await
        ),
        415
    );
    let big = format!("[{}]", vec!["0"; MAX_BODY_BYTES / 2 + 1].join(","));
    assert_eq!(
        status(
            c.collect(Some("tk_good"), None, big.as_bytes(), None, now())
                .await
        ),
        413
    );
    // A gzip bomb stops at the limit.
    let bomb = gzip(&vec![b' '; MAX_BODY_BYTES * 8]);
    assert!(bomb.len() < 100_000);
    assert_eq!(
        status(
            c.collect(Some("tk_good"), None, &bomb, Some("gzip"), now())
                .await
        ),
        413
    );
    let many = serde_json::to_string(&vec![json!({}); 1001]).unwrap();
    assert_eq!(
        status(
            c.collect(Some("tk_good"), None, many.as_bytes(), None, now())
                .await
        ),
        400
    );
    // Kinesis refusing for good: a 503 with Retry-After, never a 200.
    let mut throttled = collector(100);
    throttled.stream.refuse_all = true;
    let err = throttled
        .collect(
            Some("tk_good"),
            None,
            json!([
                event("a", "app_open", json!({})),
                event("b", "app_open", json!({}))
            ])
            .to_string()
            .as_bytes(),
            None,
            now(),
        )
        .await
        .unwrap_err();
    assert_eq!((err.status(), err.retry_after()), (503, Some(1)));
    assert_eq!(
        status(
            c.collect(Some("tk_good"), None, one.as_bytes(), None, now())
                .await
        ),
        200
    );
}

#[test]
fn keys_are_stored_as_their_sha256() {
    assert_eq!(
        key_hash("abc"),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
}

// ---- live metrics ----

const SHARDS: [&str; 2] = ["shardId-000000000000", "shardId-000000000001"];
const TYPES: [&str; 4] = ["app_open", "click", "clip_play", "search"];

fn attributes(t: &str, i: u64) -> Value {
    match t {
        "click" => json!({"screen_name": "home", "element_id": format!("b{i}")}),
        "clip_play" => json!({"clip_id": format!("c{}", i % 5)}),
        "search" => json!({"query": "milk"}),
        _ => json!({}),
    }
}

/// Events of three apps over 20 minutes on two shards (by device), with SDK retries that repeat
/// an event id (sometimes minutes later), direct puts without an app, forged copies of an app's
/// events (its app id and an early server time, without the seal), times out of range, and
/// garbage.
fn random_records(seed: u64, n: u64) -> Vec<StreamRecord> {
    let mut rng = SeededRng::new(seed);
    let start = now() - Duration::minutes(20);
    let mut sent: Vec<(Value, u64)> = Vec::new();
    let mut out = Vec::new();
    let mut positions = [0u64; 2];
    let sealed = |v: Value| match v {
        Value::Object(m) => Value::Object(seal().seal(m)).to_string(),
        other => other.to_string(),
    };
    for i in 0..n {
        let arrival = start + Duration::milliseconds((i as i64) * 1_200_000 / n as i64);
        let (data, device) = match rng.below(30) {
            0 if !sent.is_empty() => {
                // A retry: the same event, stamped again by /collect later.
                let (mut v, device) = sent[rng.below(sent.len() as u64) as usize].clone();
                if v.get("app_id").is_some() {
                    v["server_time"] = json!(arrival.to_rfc3339());
                    (sealed(v), device)
                } else {
                    (v.to_string(), device)
                }
            }
            1 => ("{\"event_id\":".to_string(), rng.below(6)),
            2 => (
                event(&format!("bad{i}"), "click", json!({})).to_string(),
                rng.below(6),
            ),
            3 if !sent.is_empty() => {
                // A forgery: an app's event put directly with its app id and an early server
                // time, but no seal.
                let (mut v, device) = sent[rng.below(sent.len() as u64) as usize].clone();
                v["app_id"] = json!("app-1");
                v["app_name"] = json!("Not Flyers");
                v["server_time"] = json!("2000-01-01T00:00:00Z");
                (v.to_string(), device)
            }
            4 => {
                let mut v = event(&format!("late{i}"), "app_open", json!({}));
                v["client_time"] = match rng.below(3) {
                    0 => json!(8_210_266_876_799_999i64),
                    1 => json!("9999-12-31T23:59:59Z"),
                    _ => json!(-1),
                };
                (sealed(v), rng.below(6))
            }
            _ => {
                let t = TYPES[rng.below(4) as usize];
                let device = rng.below(6);
                let mut v = event(&format!("ev-{i}"), t, attributes(t, i));
                v["device"]["id"] = json!(format!("d{device}"));
                let data = match rng.below(4) {
                    0 => v.to_string(), // a direct put: no app, no server time
                    n => {
                        v["app_id"] = json!(format!("app-{n}"));
                        v["server_time"] = json!(arrival.to_rfc3339());
                        sealed(v.clone())
                    }
                };
                sent.push((v, device));
                (data, device)
            }
        };
        let s = (device % 2) as usize;
        positions[s] += 1;
        out.push(StreamRecord {
            shard_id: SHARDS[s].into(),
            sequence_number: kinesis_sequence(positions[s]),
            partition_key: format!("d{device}"),
            data: data.into_bytes(),
            arrival,
        });
    }
    out
}

/// The events as received, in shard order (how Lambda sees them), with their arrival times.
fn received(records: &[StreamRecord]) -> Vec<(super::Event, DateTime<Utc>)> {
    let mut by_shard: Vec<&StreamRecord> = records.iter().collect();
    by_shard
        .sort_by(|a, b| (&a.shard_id, &a.sequence_number).cmp(&(&b.shard_id, &b.sequence_number)));
    by_shard
        .into_iter()
        .filter_map(|r| {
            let (event, _) = EventDecoder::default().decode_record(r, &seal()).ok()?;
            Some((event, r.arrival))
        })
        .collect()
}

type Handler<'a> = EventsMetricsHandler<&'a MemoryStateStore, &'a MemoryDeadLetters, Vec<u8>>;

#[tokio::test]
async fn metrics_equal_an_independent_computation_whatever_the_batching() {
    for seed in 0..3u64 {
        let records = random_records(seed, 800);
        let events = received(&records);
        let all = expected_metrics(&events, None, 60, now());
        assert!(
            all.events > 500 && all.totals.len() == 4,
            "a workload that tests something"
        );
        let distinct: std::collections::BTreeSet<&str> =
            events.iter().map(|(e, _)| e.event_id.as_str()).collect();
        assert!(events.len() > distinct.len(), "some event ids repeat");
        for (batch, repeats, aggregation) in [
            (1, 1, Aggregation::PerKey),
            (9, 2, Aggregation::PerKey),
            (100, 1, Aggregation::PerRecord),
            (800, 3, Aggregation::PerKey),
        ] {
            let (store, dl) = (MemoryStateStore::new(), MemoryDeadLetters::default());
            let mut h: Handler = EventsMetrics::handler(&store, &dl, seal_key());
            h.aggregation = aggregation;
            deliver_like_lambda(&h, &records, batch, repeats, now()).await;
            let case = format!("seed {seed} batch {batch} x{repeats} {aggregation:?}");
            for app in [None, Some("app-1"), Some("app-3"), Some(DIRECT_APP)] {
                for minutes in [1, 15, 60] {
                    let got = read_metrics(&store, app, minutes, now()).await.unwrap();
                    assert_eq!(
                        got,
                        expected_metrics(&events, app, minutes, now()),
                        "{case} {app:?} {minutes}"
                    );
                }
            }
            let bad = records.len() - events.len();
            assert_eq!(
                dl.letters.lock().unwrap().len(),
                bad,
                "{case}: every bad record once"
            );
            let codes: std::collections::BTreeSet<String> = dl
                .letters
                .lock()
                .unwrap()
                .values()
                .map(|l| l.reason_code.to_string())
                .collect();
            assert_eq!(
                codes,
                ["malformed_json", "schema_violation", "time_out_of_range"]
                    .map(String::from)
                    .into(),
                "{case}"
            );
        }
    }
}

#[tokio::test]
async fn a_crash_after_any_write_loses_and_doubles_nothing() {
    let records: Vec<StreamRecord> = random_records(11, 200)
        .into_iter()
        .filter(|r| r.shard_id == SHARDS[0])
        .collect();
    let expected = expected_metrics(&received(&records), None, 60, now());
    let clean = {
        let (store, dl) = (MemoryStateStore::new(), MemoryDeadLetters::default());
        let h: Handler = EventsMetrics::handler(&store, &dl, seal_key());
        h.run(&records, now()).await.writes
    };
    assert!(clean > 20, "both steps write: {clean}");
    for (n, only) in (0..clean).flat_map(|n| [(n, false), (n, true)]) {
        let (store, dl) = (MemoryStateStore::new(), MemoryDeadLetters::default());
        let h: Handler = EventsMetrics::handler(&store, &dl, seal_key());
        // A crash after n writes, or only the n-th write throttled and the others done.
        if only {
            store.fail_only(n);
        } else {
            store.fail_after(n);
        }
        let first = h.run(&records, now()).await;
        assert!(first.retry_from.is_some(), "the failure is reported");
        store.fail_after(usize::MAX);
        deliver_like_lambda(&h, &records, records.len(), 1, now()).await;
        let got = read_metrics(&store, None, 60, now()).await.unwrap();
        assert_eq!(got, expected, "write {n} failed (only it: {only})");
    }
}

#[tokio::test]
async fn a_batch_reports_what_it_counted_per_type_for_the_metrics_line() {
    let records = random_records(3, 300);
    let (store, dl) = (MemoryStateStore::new(), MemoryDeadLetters::default());
    let h: Handler = EventsMetrics::handler(&store, &dl, seal_key());
    let report = h.run(&records, now()).await;
    let expected = expected_metrics(&received(&records), None, 60, now());
    let per_type: BTreeMap<String, u64> = report.counted.clone();
    assert_eq!(per_type, expected.totals);
}

#[tokio::test]
async fn a_forged_direct_event_neither_replaces_nor_counts_for_a_registered_app() {
    let arrival = now() - Duration::minutes(5);
    let mut own = event("e1", "click", attributes("click", 1));
    own["app_id"] = json!("app-1");
    own["app_name"] = json!("Flyers");
    own["server_time"] = json!(arrival.to_rfc3339());
    let Value::Object(own_map) = own.clone() else {
        unreachable!()
    };
    let sealed = Value::Object(seal().seal(own_map)).to_string();
    // The same id and app, an earlier server time, put straight onto the stream, before and
    // after the app's own event; and one under a new id.
    let mut forged = own.clone();
    forged["server_time"] = json!("2000-01-01T00:00:00Z");
    let mut forged_new = forged.clone();
    forged_new["event_id"] = json!("e2");
    let record = |n: u64, data: String, minutes_ago: i64| StreamRecord {
        shard_id: SHARDS[0].into(),
        sequence_number: kinesis_sequence(n),
        partition_key: "d1".into(),
        data: data.into_bytes(),
        arrival: now() - Duration::minutes(minutes_ago),
    };
    let records = [
        record(1, forged.to_string(), 6),
        record(2, sealed, 5),
        record(3, forged.to_string(), 4),
        record(4, forged_new.to_string(), 4),
    ];
    let (store, dl) = (MemoryStateStore::new(), MemoryDeadLetters::default());
    let h: Handler = EventsMetrics::handler(&store, &dl, seal_key());
    deliver_like_lambda(&h, &records, 1, 2, now()).await;
    let app = read_metrics(&store, Some("app-1"), 60, now())
        .await
        .unwrap();
    assert_eq!(app.events, 1, "only the app's own event counts for it");
    let minute = |m: &super::Metrics| {
        m.per_minute
            .iter()
            .filter(|c| c.events > 0)
            .map(|c| c.minute.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(minute(&app), ["2026-11-22T11:55:00Z"], "at its own arrival");
    let direct = read_metrics(&store, Some(DIRECT_APP), 60, now())
        .await
        .unwrap();
    assert_eq!(direct.events, 2, "the forgeries count once each, as direct");
    let all = read_metrics(&store, None, 60, now()).await.unwrap();
    assert_eq!(all.events, 3);
}

#[tokio::test]
async fn collect_rejects_times_out_of_range_by_index() {
    let c = collector(0);
    let mut far = event("e1", "app_open", json!({}));
    far["client_time"] = json!("9999-12-31T23:59:59Z");
    let mut limit = event("e2", "app_open", json!({}));
    limit["client_time"] = json!(8_210_266_876_799_999i64);
    let mut before = event("e3", "app_open", json!({}));
    before["client_time"] = json!(-1);
    let mut tomorrow = event("e4", "app_open", json!({}));
    tomorrow["client_time"] = json!((now() + Duration::hours(23)).to_rfc3339());
    let batch = json!([far, limit, before, tomorrow]);
    let got = c
        .collect(
            Some("tk_good"),
            None,
            batch.to_string().as_bytes(),
            None,
            now(),
        )
        .await
        .unwrap();
    assert_eq!(got.accepted, 1, "a clock up to a day ahead is accepted");
    let rejected: Vec<(usize, &str)> = got.rejected.iter().map(|r| (r.index, r.code)).collect();
    assert_eq!(
        rejected,
        [
            (0, "time_out_of_range"),
            (1, "time_out_of_range"),
            (2, "time_out_of_range")
        ]
    );
    assert!(
        got.rejected[0].reason.contains("time_out_of_range"),
        "{:?}",
        got.rejected[0]
    );
}

#[test]
fn web_origins_are_scheme_host_and_port_only() {
    use crate::collect::web_origin;
    assert_eq!(
        web_origin(" HTTPS://Shop.Example ").unwrap(),
        "https://shop.example"
    );
    assert_eq!(
        web_origin("http://127.0.0.1:8080").unwrap(),
        "http://127.0.0.1:8080"
    );
    for bad in [
        "shop.example",
        "ftp://x",
        "https://x/path",
        "https://x:port",
        "https://",
        "https://u@x",
    ] {
        let e = web_origin(bad).unwrap_err();
        assert!(e.contains("is not a web origin"), "{bad}: {e}");
    }
}
