//! The lake's conversions against in-memory objects: rows and types, bad lines, tables unique by
//! an id as their readers see them, compaction, and runs that repeat.

use std::io::Write;

use chrono::{TimeZone, Utc};
use tally_engine::testing::MemoryObjects;

use crate::bad_records::BAD_RECORDS;
use crate::gender::VISITS;
use crate::rows::{read_parquet, Value};
use crate::rules::{ALERTS, INTERACTIONS};
use crate::LakeWriter;

const DAY: &str = "2026-11-22";

/// Every file of the lake (not the raw archive) with its bytes.
fn lake_files(store: &MemoryObjects) -> Vec<(String, Vec<u8>)> {
    store
        .keys()
        .into_iter()
        .filter(|k| k.starts_with("lake/"))
        .map(|k| (k.clone(), store.data(&k).unwrap()))
        .collect()
}

fn gz(lines: &[&str]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    for l in lines {
        enc.write_all(l.as_bytes()).unwrap();
        enc.write_all(b"\n").unwrap();
    }
    enc.finish().unwrap()
}

fn raw_key(stream: &str, n: u32) -> String {
    format!("raw/{stream}/dt={DAY}/tally-X-1-2026-11-22-10-00-{n:02}-90e1035e-397c-4140-b289-c6a9d2136883.gz")
}

fn files(store: &MemoryObjects, prefix: &str) -> Vec<String> {
    store
        .keys()
        .into_iter()
        .filter(|k| k.starts_with(prefix))
        .collect()
}

/// A table's rows as a query sees them (through its view, for a table unique by an id).
fn rows_of(store: &MemoryObjects, table: &crate::Table) -> Vec<crate::rows::Row> {
    if table.layout.unique().is_some() {
        return futures::executor::block_on(crate::unique::read_unique(store, table)).unwrap();
    }
    files(store, &table.prefix())
        .iter()
        .flat_map(|f| read_parquet(table, store.data(f).unwrap()).unwrap())
        .collect()
}

#[tokio::test]
async fn visits_become_typed_rows_and_bad_lines_bad_records() {
    let store = MemoryObjects::default();
    let key = raw_key("visits", 7);
    store.insert(
        &key,
        gz(&[
            r#"{"cid":"C1","gndr":"Female","ts":"2026-11-22T09:00:00Z"}"#,
            r#"{"cid":"C2","gndr":"male"}"#,
            r#"{"cid":"C3","gndr":"x"}"#,
            "not json",
        ]),
    );
    let report = LakeWriter { store: &store }
        .convert(std::slice::from_ref(&key))
        .await;
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    assert_eq!((report.objects, report.bad_lines), (1, 2));
    let written = files(&store, "lake/visits/");
    assert_eq!(
        written,
        vec![format!(
            "lake/visits/dt={DAY}/tally-X-1-2026-11-22-10-00-07-90e1035e-397c-4140-b289-c6a9d2136883.parquet"
        )],
        "one file named after its raw object"
    );
    let delivered = Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 7).unwrap();
    assert_eq!(
        rows_of(&store, &VISITS),
        vec![
            vec![
                Value::str("C1"),
                Value::str("female"),
                Value::Timestamp(Utc.with_ymd_and_hms(2026, 11, 22, 9, 0, 0).unwrap()),
                Value::Timestamp(delivered),
            ],
            vec![
                Value::str("C2"),
                Value::str("male"),
                Value::Timestamp(delivered),
                Value::Timestamp(delivered),
            ],
        ]
    );
    let bad = rows_of(&store, &BAD_RECORDS);
    let written = files(&store, "lake/bad_records/");
    assert_eq!(written.len(), 1, "{written:?}");
    assert!(
        written[0].starts_with(&format!("lake/bad_records/dt={DAY}/in-")),
        "a new file of the conversion's rows, in the partition of their day: {written:?}"
    );
    let reasons: Vec<(&str, &str, &str)> = bad
        .iter()
        .map(|r| {
            (
                r[0].as_str().unwrap(),
                r[1].as_str().unwrap(),
                r[3].as_str().unwrap(),
            )
        })
        .collect();
    assert!(reasons.contains(&("lake:visits", "invalid_field", r#"{"cid":"C3","gndr":"x"}"#)));
    assert!(reasons.contains(&("lake:visits", "malformed_json", "not json")));
}

#[tokio::test]
async fn converting_again_gives_the_same_files_and_no_second_row() {
    let store = MemoryObjects::default();
    let keys = vec![raw_key("interactions", 1), raw_key("interactions", 2)];
    store.insert(
        &keys[0],
        gz(&[
            r#"{"user_id":1,"property_id":2,"date":"2021-11-30 00:00:00","event":"Interaction"}"#,
            r#"{"user_id":-1,"property_id":2,"event":"View"}"#,
        ]),
    );
    store.insert(
        &keys[1],
        gz(&[r#"{"user_id":1,"property_id":3,"event":"View"}"#]),
    );
    let writer = LakeWriter { store: &store };
    writer.convert(&keys).await;
    let snapshot = lake_files(&store);
    for _ in 0..2 {
        let again = writer.convert(&keys).await;
        assert!(again.failed.is_empty());
    }
    let after = lake_files(&store);
    assert_eq!(after, snapshot, "the same files, byte for byte");
    let interactions = rows_of(&store, &INTERACTIONS);
    assert_eq!(interactions.len(), 2);
    assert_eq!(interactions[0][0], Value::BigInt(1));
    assert_eq!(rows_of(&store, &BAD_RECORDS).len(), 1, "the bad line once");
}

#[tokio::test]
async fn an_alert_published_twice_is_one_row_from_its_first_publication() {
    let store = MemoryObjects::default();
    let first = raw_key("paid_user_alerts", 1);
    let second = raw_key("paid_user_alerts", 9);
    let broker = raw_key("possible_broker_alerts", 3);
    let alert = r#"{"user":1,"interactions_count":9,"alert_id":"paid_user:1"}"#;
    store.insert(&first, gz(&[alert]));
    store.insert(
        &second,
        gz(&[
            alert,
            r#"{"user":2,"interactions_count":9,"alert_id":"paid_user:2"}"#,
        ]),
    );
    store.insert(
        &broker,
        gz(&[r#"{"window.start":"2021-11-30T00:00:00.000Z","user_id":1,"threat_user_interactions":11,"alert_id":"possible_broker:1:2021-11-30T00:00:00.000Z"}"#]),
    );
    let writer = LakeWriter { store: &store };
    // The later object is converted first: the earlier publication still wins.
    writer.convert(std::slice::from_ref(&second)).await;
    writer.convert(&[first.clone(), broker]).await;
    let mut alerts = rows_of(&store, &ALERTS);
    alerts.sort_by(|a, b| a[1].partial_cmp(&b[1]).unwrap());
    assert_eq!(alerts.len(), 3, "{alerts:?}");
    assert_eq!(
        alerts[0],
        vec![
            Value::str("paid_user"),
            Value::str("paid_user:1"),
            Value::str("1"),
            Value::BigInt(9),
            Value::Null,
            Value::Timestamp(Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 1).unwrap()),
        ]
    );
    assert_eq!(alerts[2][0], Value::str("possible_broker"));
    assert_eq!(
        alerts[2][4],
        Value::Timestamp(Utc.with_ymd_and_hms(2021, 11, 30, 0, 0, 0).unwrap())
    );
    assert_eq!(alerts[2][3], Value::BigInt(11));
}

#[tokio::test]
async fn dead_letters_are_bad_records_once_however_often_converted() {
    let store = MemoryObjects::default();
    let letter = |seq: &str, data: &[u8]| {
        serde_json::json!({
            "source": "MODEL1", "reason": "malformed json: x", "reason_code": "malformed_json",
            "shard_id": "shardId-000000000000", "sequence_number": seq, "partition_key": "C1",
            "approximate_arrival": "2026-11-22T10:00:00Z",
            "data_base64": base64::Engine::encode(&base64::engine::general_purpose::STANDARD, data),
        })
        .to_string()
        .into_bytes()
    };
    let keys = vec![
        "dead-letter/MODEL1/shardId-000000000000/101.json".to_string(),
        "dead-letter/MODEL1/shardId-000000000000/102.json".to_string(),
    ];
    store.insert(&keys[0], letter("101", b"{oops"));
    store.insert(&keys[1], letter("102", b"\xff\xfe"));
    let writer = LakeWriter { store: &store };
    let report = writer.convert(&keys).await;
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    // A redelivered notification, in another batch: another file, the same rows.
    writer.convert(&keys[..1]).await;
    assert_eq!(files(&store, "lake/bad_records/").len(), 2);
    let rows = rows_of(&store, &BAD_RECORDS);
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0][3], Value::str("{oops"));
    assert_eq!(
        rows[1][3],
        Value::str("\u{fffd}\u{fffd}"),
        "invalid bytes replaced"
    );
    assert_eq!(
        rows[0][4],
        Value::str("dead-letter/MODEL1/shardId-000000000000/101")
    );
}

#[tokio::test]
async fn inputs_that_cannot_be_read_are_reported_and_others_still_convert() {
    let store = MemoryObjects::default();
    let good = raw_key("visits", 1);
    let broken = raw_key("visits", 2);
    store.insert(&good, gz(&[r#"{"cid":"C1","gndr":"male"}"#]));
    store.insert(&broken, b"not gzip".to_vec());
    let report = LakeWriter { store: &store }
        .convert(&[good, broken.clone(), "lake/visits/x.parquet".into()])
        .await;
    assert_eq!(
        report.objects, 2,
        "the good one, and the lake's own file skipped"
    );
    assert!(
        report.failed[&broken].contains("not gzip"),
        "{:?}",
        report.failed
    );
    assert_eq!(rows_of(&store, &VISITS).len(), 1);
}

/// An RSVP line of the stream's shape; `topics` are the group's urlkeys.
fn rsvp(id: u64, mtime: i64, response: &str, member: &str, topics: &[&str], venue: bool) -> String {
    let mut v = serde_json::json!({
        "rsvp_id": id, "mtime": mtime, "response": response, "guests": 0, "visibility": "public",
        "member": {"member_id": 7, "member_name": member},
        "event": {"event_id": "e1", "event_name": "Rust night", "time": 1_603_234_800_000_i64,
                  "event_url": "https://www.meetup.com/g/events/e1/"},
        "group": {"group_id": 3, "group_name": "Rustaceans", "group_city": "Oslo", "group_country": "no",
                  "group_lat": 59.9, "group_lon": 10.7, "group_urlname": "g",
                  "group_topics": topics.iter().map(|t| serde_json::json!({"urlkey": t, "topic_name": t.to_uppercase()})).collect::<Vec<_>>()},
    });
    if venue {
        v["venue"] =
            serde_json::json!({"venue_id": 11, "venue_name": "Hall", "lat": 59.9, "lon": 10.7});
    }
    v.to_string()
}

#[tokio::test]
async fn rsvps_normalize_into_each_entity_once_and_the_latest_version_wins() {
    use crate::rsvp::{GROUPS, GROUP_TOPICS, MEETUP_EVENTS, MEMBERS, RSVPS, TOPICS, VENUES};
    let store = MemoryObjects::default();
    let (early, late) = (raw_key("rsvps", 1), raw_key("rsvps", 2));
    // The later versions sit in the earlier object's successor, which is converted first.
    store.insert(
        &early,
        gz(&[
            &rsvp(1, 1_000, "yes", "Ann", &["rust", "wasm"], true),
            &rsvp(2, 2_000, "yes", "Ann", &["rust", "wasm"], false),
            &rsvp(1, 1_000, "yes", "Ann", &["rust", "wasm"], true),
            r#"{"rsvp_id":9,"mtime":5}"#,
        ]),
    );
    store.insert(
        &late,
        gz(&[&rsvp(
            1,
            3_000,
            "no",
            "Ann B.",
            &["rust", "embedded"],
            false,
        )]),
    );
    let writer = LakeWriter { store: &store };
    for keys in [vec![late.clone()], vec![early.clone()], vec![early, late]] {
        let report = writer.convert(&keys).await;
        assert!(report.failed.is_empty(), "{:?}", report.failed);
    }
    let ms = |m: i64| Value::Timestamp(chrono::DateTime::from_timestamp_millis(m).unwrap());
    let mut rsvps = rows_of(&store, &RSVPS);
    rsvps.sort_by(|a, b| a[0].partial_cmp(&b[0]).unwrap());
    let rsvps: Vec<(Value, Value, Value)> = rsvps
        .into_iter()
        .map(|r| (r[0].clone(), r[1].clone(), r[2].clone()))
        .collect();
    assert_eq!(
        rsvps,
        vec![
            (Value::BigInt(1), ms(3_000), Value::str("no")),
            (Value::BigInt(2), ms(2_000), Value::str("yes")),
        ]
    );
    let members = rows_of(&store, &MEMBERS);
    assert_eq!(members.len(), 1);
    assert_eq!(members[0][1], Value::str("Ann B."), "the latest name");
    assert_eq!(rows_of(&store, &GROUPS).len(), 1);
    assert_eq!(
        rows_of(&store, &VENUES).len(),
        1,
        "RSVPs without a venue name none"
    );
    let events = rows_of(&store, &MEETUP_EVENTS);
    assert_eq!(events.len(), 1);
    assert_eq!(events[0][5], Value::Null, "the latest version has no venue");
    let mut topics: Vec<Value> = rows_of(&store, &TOPICS)
        .into_iter()
        .map(|r| r[0].clone())
        .collect();
    topics.sort_by(|a, b| a.partial_cmp(b).unwrap());
    assert_eq!(topics, ["embedded", "rust", "wasm"].map(Value::str));
    let group_topics: Vec<Value> = rows_of(&store, &GROUP_TOPICS)
        .into_iter()
        .map(|r| r[1].clone())
        .collect();
    assert_eq!(
        group_topics,
        ["embedded", "rust"].map(Value::str),
        "the group's topics as its latest RSVP lists them"
    );
    assert_eq!(rows_of(&store, &BAD_RECORDS).len(), 1);
}

fn app_event(
    id: &str, t: &str, client: &str, server: Option<&str>, device: &str, version: &str,
    attributes: &str,
) -> String {
    let stamp = server
        .map(|s| format!(r#","app_id":"app-1","app_name":"Flyers","server_time":"{s}""#))
        .unwrap_or_default();
    format!(
        r#"{{"event_id":"{id}","event_type":"{t}","client_time":"{client}","device":{{"id":"{device}","platform":"android","os_version":"15","model":"Pixel 9","app_version":"{version}"}},"user_id":"u1","session_id":"s1","attributes":{attributes}{stamp}}}"#
    )
}

#[tokio::test]
async fn events_become_facts_dimensions_and_typed_tables_each_event_id_once() {
    use crate::events::{event_tables, DIM_APP, DIM_DEVICE, FACT_EVENTS};
    let store = MemoryObjects::default();
    let (plays, purchases) = (
        raw_key("events/event_type=clip_play", 1),
        raw_key("events/event_type=purchase", 2),
    );
    // The one play p1, as /collect stamped it on each of its arrivals.
    let p1_received_at = |server_time: &str| {
        app_event(
            "p1",
            "clip_play",
            "2026-11-22T09:00:00Z",
            Some(server_time),
            "d1",
            "4.1",
            r#"{"clip_id":"c1","autoplay":true,"position_ms":0}"#,
        )
    };
    store.insert(
        &plays,
        gz(&[
            &p1_received_at("2026-11-22T09:00:05Z"),
            // The SDK's retry of p1, stamped later by /collect: the first arrival stays.
            &p1_received_at("2026-11-22T09:03:00Z"),
            // p1 put directly, as the router archives it (the app `direct`, received at its
            // arrival, which is earlier): a row of its own that replaces nothing of app-1's.
            &p1_received_at("2026-11-22T09:00:01Z").replace(
                r#""app_id":"app-1","app_name":"Flyers""#,
                r#""app_id":"direct""#,
            ),
            // An archive from before the router stamped direct puts (no app, no server time)
            // from the same device, newer app version.
            &app_event(
                "p2",
                "clip_play",
                "2026-11-22T11:00:00Z",
                None,
                "d1",
                "4.2",
                r#"{"clip_id":"c2"}"#,
            ),
            r#"{"event_id":"x","event_type":"clip_play"}"#,
        ]),
    );
    store.insert(
        &purchases,
        gz(&[&app_event(
            "b1",
            "purchase",
            "2026-11-21T23:59:00Z",
            Some("2026-11-22T00:00:01Z"),
            "d2",
            "4.0",
            r#"{"order_id":"o1","item_id":"i1","price":2.5,"currency":"CAD","quantity":2}"#,
        )]),
    );
    let writer = LakeWriter { store: &store };
    for keys in [vec![plays.clone()], vec![plays.clone(), purchases.clone()]] {
        let report = writer.convert(&keys).await;
        assert!(report.failed.is_empty(), "{:?}", report.failed);
    }
    let ts = |s: &str| Value::Timestamp(s.parse().unwrap());
    let mut facts = rows_of(&store, &FACT_EVENTS);
    facts.sort_by(|a, b| (&a[0], &a[2]).partial_cmp(&(&b[0], &b[2])).unwrap());
    let ids: Vec<(Value, Value, Value)> = facts
        .iter()
        .map(|r| (r[0].clone(), r[2].clone(), r[7].clone()))
        .collect();
    // (event_id, app_id, server_time) of each fact.
    let fact =
        |event: &str, app: &str, received: &str| (Value::str(event), Value::str(app), ts(received));
    assert_eq!(
        ids,
        vec![
            fact("b1", "app-1", "2026-11-22T00:00:01Z"),
            // Unique by (app_id, event_id): app-1's p1 keeps its own first arrival.
            fact("p1", "app-1", "2026-11-22T09:00:05Z"),
            fact("p1", "direct", "2026-11-22T09:00:01Z"),
            // Firehose's delivery time (from the object's name) stands in for an old direct put's.
            fact("p2", "direct", "2026-11-22T10:00:01Z"),
        ]
    );
    assert!(
        files(&store, "lake/fact_events/")
            .iter()
            .any(|f| f.contains("dt=2026-11-21")),
        "filed by the day the event happened"
    );
    let clip_play = event_tables()
        .iter()
        .find(|t| t.info.name == "clip_play")
        .unwrap()
        .table;
    let names: Vec<&str> = clip_play.columns.iter().map(|c| c.name).collect();
    assert_eq!(
        names,
        [
            "event_id",
            "app_id",
            "autoplay",
            "clip_id",
            "position_ms",
            "client_time",
            "server_time"
        ]
    );
    let mut plays_rows = rows_of(&store, clip_play);
    plays_rows.sort_by(|a, b| (&a[0], &a[1]).partial_cmp(&(&b[0], &b[1])).unwrap());
    assert_eq!(plays_rows.len(), 3);
    assert_eq!(
        plays_rows[0][..5],
        [
            Value::str("p1"),
            Value::str("app-1"),
            Value::Bool(true),
            Value::str("c1"),
            Value::BigInt(0)
        ]
    );
    assert_eq!(
        plays_rows[2][..5],
        [
            Value::str("p2"),
            Value::str("direct"),
            Value::Null,
            Value::str("c2"),
            Value::Null
        ]
    );
    let purchase = event_tables()
        .iter()
        .find(|t| t.info.name == "purchase")
        .unwrap()
        .table;
    let p = rows_of(&store, purchase);
    assert_eq!(p.len(), 1);
    assert_eq!(p[0][purchase.column("price").unwrap()], Value::Double(2.5));
    let mut devices = rows_of(&store, &DIM_DEVICE);
    devices.sort_by(|a, b| a[0].partial_cmp(&b[0]).unwrap());
    assert_eq!(devices.len(), 2);
    assert_eq!(
        devices[0][4],
        Value::str("4.2"),
        "the latest event's app version"
    );
    assert_eq!(
        (devices[0][5].clone(), devices[0][6].clone()),
        (ts("2026-11-22T09:00:00Z"), ts("2026-11-22T11:00:00Z")),
        "first and last seen"
    );
    let apps = rows_of(&store, &DIM_APP);
    assert_eq!(apps.len(), 1, "direct puts name no app");
    assert_eq!(apps[0][..2], [Value::str("app-1"), Value::str("Flyers")]);
    assert_eq!(
        rows_of(&store, &BAD_RECORDS).len(),
        1,
        "the line without a device"
    );
}

/// Hostile archived lines (arbitrary bytes, each record shape with hostile values) never panic a
/// conversion: each line is rows, or a rejection with its reason, and the rows write as Parquet.
#[test]
fn hostile_lines_become_rows_or_reasons_never_a_panic() {
    use crate::raw::RawObject;
    use tally_engine::testing::SeededRng;
    let cases: u64 = std::env::var("TALLY_FUZZ_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(600);
    let raw = RawObject {
        key: "raw/x/dt=2026-11-22/x-1-2026-11-22-10-00-00-0.gz".into(),
        stream: "x".into(),
        dt: chrono::NaiveDate::from_ymd_opt(2026, 11, 22).unwrap(),
        stem: "x".into(),
        delivered: Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 0).unwrap(),
    };
    let sample = include_str!("../../../tests/fixtures/meetup_rsvp_sample.jsonl");
    let shapes: Vec<serde_json::Value> = vec![
        serde_json::json!({"cid": "C1", "gndr": "male", "ts": "2026-11-22T09:00:00Z"}),
        serde_json::json!({"user_id": 1, "property_id": 2, "date": "2021-11-30 00:00:00", "event": "Interaction"}),
        serde_json::json!({"alert_id": "paid_user:1", "user": 1, "interactions_count": 9}),
        serde_json::from_str(sample.lines().next().unwrap()).unwrap(),
        serde_json::json!({"event_id": "e1", "event_type": "purchase", "client_time": "2026-11-22T09:00:00Z", "device": {"id": "d1"}, "attributes": {"order_id": "o", "item_id": "i", "price": 1.5, "currency": "CAD", "quantity": 1}, "app_id": "a", "server_time": "2026-11-22T09:00:01Z"}),
    ];
    let palette = [
        serde_json::json!(null),
        serde_json::json!(-1),
        serde_json::json!(i64::MIN),
        serde_json::json!(u64::MAX),
        serde_json::json!(1e308),
        serde_json::json!(8_210_266_876_799_999i64),
        serde_json::json!("9999-12-31T23:59:59Z"),
        serde_json::json!("2026-02-30 00:00:00"),
        serde_json::json!("\u{0}"),
        serde_json::json!("x".repeat(3000)),
        serde_json::json!([1, {}]),
        serde_json::json!({"a": 1}),
        serde_json::json!(3_000_000_000i64),
    ];
    let mut rng = SeededRng::new(17);
    for i in 0..cases {
        let shape = &shapes[(i % shapes.len() as u64) as usize];
        let line: Vec<u8> = if rng.below(6) == 0 {
            (0..rng.below(200)).map(|_| rng.below(256) as u8).collect()
        } else {
            let mut v = shape.clone();
            let obj = v.as_object_mut().unwrap();
            let keys: Vec<String> = obj.keys().cloned().collect();
            for _ in 0..=rng.below(2) {
                let key = &keys[rng.below(keys.len() as u64) as usize];
                let value = palette[rng.below(palette.len() as u64) as usize].clone();
                obj.insert(key.clone(), value);
            }
            v.to_string().into_bytes()
        };
        let single = |row: Result<crate::rows::Row, tally_engine::Rejection>,
                      table: &crate::table::Table| {
            if let Ok(row) = row {
                crate::rows::write_parquet(table, &[row]).expect("a row of the table writes");
            }
        };
        single(crate::gender::visit_row(&line, &raw), &VISITS);
        single(crate::rules::interaction_row(&line, &raw), &INTERACTIONS);
        single(crate::rules::alert_row(&line, &raw), &ALERTS);
        for rows in [
            crate::rsvp::rsvp_rows(&line, &raw),
            crate::events::event_rows(&line, &raw),
        ]
        .into_iter()
        .flatten()
        {
            for (table, row) in rows {
                crate::rows::write_parquet(table, &[row]).expect("a row of the table writes");
            }
        }
        let _ = crate::bad_records::dead_letter_row("dead-letter/x/s/1.json", &line);
    }
}

/// A raw object key of `stream` delivered on `day` (YYYY-MM-DD) at 10:00:`n`.
fn raw_key_on(stream: &str, day: &str, n: u32) -> String {
    format!("raw/{stream}/dt={day}/tally-X-1-{day}-10-00-{n:02}-90e1035e-397c-4140-b289-c6a9d2136883.gz")
}

/// The dedupe rules across days: an SDK's retry archived the next day is one fact (its first
/// arrival), an RSVP re-versioned the next day is its latest version, an alert republished the
/// next day is one alert (its first publication), whichever object is converted first.
#[tokio::test]
async fn each_row_once_across_days_whatever_the_order_of_conversion() {
    use crate::events::FACT_EVENTS;
    use crate::rsvp::RSVPS;
    let store = MemoryObjects::default();
    let (monday, tuesday) = ("2026-11-22", "2026-11-23");
    let play = |server: &str| {
        app_event(
            "p1",
            "clip_play",
            "2026-11-22T23:59:30Z",
            Some(server),
            "d1",
            "4.1",
            r#"{"clip_id":"c1"}"#,
        )
    };
    let alert = r#"{"user":1,"interactions_count":9,"alert_id":"paid_user:1"}"#;
    let mut keys = Vec::new();
    for (day, event, rsvp_line) in [
        (
            monday,
            play("2026-11-22T23:59:31Z"),
            rsvp(1, 1_000, "yes", "Ann", &["rust"], false),
        ),
        (
            tuesday,
            play("2026-11-23T00:00:40Z"),
            rsvp(1, 90_000_000, "no", "Ann", &["rust"], false),
        ),
    ] {
        for (stream, line) in [
            ("events/event_type=clip_play", event.as_str()),
            ("rsvps", rsvp_line.as_str()),
            ("paid_user_alerts", alert),
        ] {
            let key = raw_key_on(stream, day, keys.len() as u32);
            store.insert(&key, gz(&[line]));
            keys.push(key);
        }
    }
    let writer = LakeWriter { store: &store };
    // Tuesday's objects first, one conversion each, then Monday's, then all again.
    let order: Vec<Vec<String>> = keys[3..]
        .iter()
        .chain(&keys[..3])
        .map(|k| vec![k.clone()])
        .chain(std::iter::once(keys.clone()))
        .collect();
    for batch in order {
        let report = writer.convert(&batch).await;
        assert!(report.failed.is_empty(), "{:?}", report.failed);
    }
    let ts = |s: &str| Value::Timestamp(s.parse().unwrap());
    let facts = rows_of(&store, &FACT_EVENTS);
    assert_eq!(facts.len(), 1, "{facts:?}");
    assert_eq!(facts[0][7], ts("2026-11-22T23:59:31Z"), "its first arrival");
    let rsvps = rows_of(&store, &RSVPS);
    assert_eq!(rsvps.len(), 1, "{rsvps:?}");
    assert_eq!(rsvps[0][2], Value::str("no"), "the latest version");
    let alerts = rows_of(&store, &ALERTS);
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(
        alerts[0][5],
        ts("2026-11-22T10:00:02Z"),
        "its first publication"
    );
}

/// Every conversion adds a file; compaction keeps the partition to a few, and the rows as they
/// were (each once).
#[tokio::test]
async fn many_conversions_leave_few_files_and_each_row_once() {
    use crate::compaction::COMPACT_AT;
    let store = MemoryObjects::default();
    let writer = LakeWriter { store: &store };
    let mut merges = 0;
    for n in 0..60u32 {
        let key = raw_key("paid_user_alerts", n);
        // Every third object repeats the alert of the one before (a republished alert).
        let user = if n % 3 == 2 { n - 1 } else { n };
        store.insert(
            &key,
            gz(&[&format!(
                r#"{{"user":{user},"interactions_count":9,"alert_id":"paid_user:{user}"}}"#
            )]),
        );
        let report = writer.convert(&[key]).await;
        assert!(
            report.failed.is_empty() && report.compaction_failed.is_empty(),
            "{report:?}"
        );
        merges += report.compacted.merges;
        let files = files(&store, "lake/alerts/");
        assert!(
            files.len() < COMPACT_AT,
            "{} files after {} conversions",
            files.len(),
            n + 1
        );
    }
    assert!(merges >= 60 / COMPACT_AT, "{merges} merges");
    assert_eq!(rows_of(&store, &ALERTS).len(), 40);
    // What the files hold, without the readers' deduplication: compaction removed the copies.
    let stored: usize = files(&store, "lake/alerts/")
        .iter()
        .map(|f| read_parquet(&ALERTS, store.data(f).unwrap()).unwrap().len())
        .sum();
    assert!(stored < 60, "{stored} rows stored for 40 alerts");
}
