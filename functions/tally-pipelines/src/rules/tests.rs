//! The rules on the engine, against in-memory ports: alerts are emitted once, with the count at which
//! the rule first held, whatever the batching, redelivery or crashes.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, TimeZone, Utc};

use tally_engine::testing::*;
use tally_engine::windows::window_label;
use tally_engine::{Aggregation, Engine, SequenceNumber, StreamRecord};

use super::{Rule, RuleConsumer};

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 22, 12, 0, 0).unwrap()
}

fn record(i: u64, shard: &str, data: String) -> StreamRecord {
    StreamRecord {
        shard_id: shard.into(),
        sequence_number: SequenceNumber::parse(&format!(
            "49590338271490256608559692538361571095921575989{i:09}"
        ))
        .unwrap(),
        partition_key: "k".into(),
        data: data.into_bytes(),
        arrival: now(),
    }
}

fn interaction(user: u64, property: u64, at: DateTime<Utc>, event: &str) -> String {
    format!(
        r#"{{"user_id":{user},"property_id":{property},"date":"{}","event":"{event}"}}"#,
        at.format("%Y-%m-%d %H:%M:%S")
    )
}

/// The seed's rules with its thresholds.
fn rules() -> Vec<Rule> {
    vec![
        Rule::by_name("paid_user", 9, 60, 86_400).unwrap(),
        Rule::by_name("property_status", 5, 60, 86_400).unwrap(),
        Rule::by_name("possible_broker", 10, 60, 86_400).unwrap(),
    ]
}

/// Random interactions over a few users, properties and minutes, on two shards (by user, as the
/// stream is partitioned), with some other events and some garbage.
fn random_records(seed: u64, n: u64) -> Vec<StreamRecord> {
    let mut rng = SeededRng::new(seed);
    let mut next = move |m: u64| rng.below(m);
    let base = Utc.with_ymd_and_hms(2021, 11, 30, 0, 0, 0).unwrap();
    (0..n)
        .map(|i| {
            let user = next(6);
            let shard = format!("shardId-00000000000{}", user % 2);
            let at = base + Duration::seconds(next(240) as i64);
            let data = match next(20) {
                0 => "{broken".to_string(),
                1 => interaction(user, next(4), at, "View"),
                _ => interaction(user, next(4), at, "Interaction"),
            };
            StreamRecord {
                partition_key: user.to_string(),
                ..record(i, &shard, data)
            }
        })
        .collect()
}

/// Alerts computed independently: alert_id -> the full alert, straight from the seed's rules.
fn expected_alerts(records: &[StreamRecord]) -> BTreeMap<String, serde_json::Value> {
    let mut users: BTreeMap<u64, u64> = BTreeMap::new();
    let mut props: BTreeMap<u64, u64> = BTreeMap::new();
    let mut windows: BTreeMap<(u64, i64), u64> = BTreeMap::new();
    for r in records {
        let Ok(v) = serde_json::from_slice::<serde_json::Value>(&r.data) else {
            continue;
        };
        if v["event"] != "Interaction" {
            continue;
        }
        let (u, p) = (
            v["user_id"].as_u64().unwrap(),
            v["property_id"].as_u64().unwrap(),
        );
        let t =
            chrono::NaiveDateTime::parse_from_str(v["date"].as_str().unwrap(), "%Y-%m-%d %H:%M:%S")
                .unwrap()
                .and_utc()
                .timestamp();
        *users.entry(u).or_default() += 1;
        *props.entry(p).or_default() += 1;
        *windows.entry((u, t - t.rem_euclid(60))).or_default() += 1;
    }
    let mut out = BTreeMap::new();
    for (u, n) in users.into_iter().filter(|(_, n)| *n >= 9) {
        let _ = n;
        out.insert(format!("paid_user:{u}"), serde_json::json!({"user":u,"interactions_count":9,"alert_id":format!("paid_user:{u}")}));
    }
    for (p, _) in props.into_iter().filter(|(_, n)| *n > 5) {
        out.insert(format!("property_status:{p}"), serde_json::json!({"property":p,"property_interactions_count":6,"alert_id":format!("property_status:{p}")}));
    }
    for ((u, start), _) in windows.into_iter().filter(|(_, n)| *n > 10) {
        let label = window_label(Utc.timestamp_opt(start, 0).unwrap());
        let id = format!("possible_broker:{u}:{label}");
        out.insert(id.clone(), serde_json::json!({"window.start":label,"user_id":u,"threat_user_interactions":11,"alert_id":id}));
    }
    out
}

/// Delivers per shard in batches like Lambda, resuming at reported failures, `repeats` times each.
async fn deliver(
    rule: &Rule, store: &MemoryStateStore, publisher: &MemoryPublisher, records: &[StreamRecord],
    batch: usize, repeats: usize, aggregation: Aggregation,
) {
    let dl = MemoryDeadLetters::default();
    // As a warm function instance does: keys whose alert is out are skipped (per-key mode only).
    let d =
        Engine::new(RuleConsumer::new(*rule), store, publisher, &dl).with_aggregation(aggregation);
    deliver_like_lambda(&d, records, batch, repeats, now()).await;
}

/// The alerts one rule publishes from `records`, on fresh state, delivered as Lambda would.
async fn alerts_of(
    rule: &Rule, records: &[StreamRecord], batch: usize, repeats: usize, aggregation: Aggregation,
) -> (BTreeMap<String, serde_json::Value>, usize) {
    let (store, publisher) = (MemoryStateStore::new(), MemoryPublisher::default());
    deliver(
        rule,
        &store,
        &publisher,
        records,
        batch,
        repeats,
        aggregation,
    )
    .await;
    alerts(&publisher)
}

fn alerts(publisher: &MemoryPublisher) -> (BTreeMap<String, serde_json::Value>, usize) {
    let published = publisher.published.lock().unwrap();
    let all: Vec<serde_json::Value> = published
        .iter()
        .map(|r| serde_json::from_slice(&r.data).unwrap())
        .collect();
    (
        all.iter()
            .map(|a| (a["alert_id"].as_str().unwrap().to_string(), a.clone()))
            .collect(),
        all.len(),
    )
}

#[tokio::test]
async fn the_seed_sample_gives_one_alert_per_rule_at_9_6_and_11() {
    let at = Utc.with_ymd_and_hms(2021, 11, 30, 0, 0, 0).unwrap();
    // The seed's input: 22 interactions of user 1 and 2 of user 2, all on property 1, one minute.
    let mut records = Vec::new();
    for i in 0..24u64 {
        let user = if i == 10 || i == 23 { 2 } else { 1 };
        records.push(record(
            i,
            "shardId-000000000000",
            interaction(user, 1, at, "Interaction"),
        ));
    }
    let mut all = BTreeMap::new();
    for rule in rules() {
        let (got, count) = alerts_of(&rule, &records, 5, 1, Aggregation::PerKey).await;
        assert_eq!(
            count,
            1,
            "{}: one alert, not one per micro-batch as in the seed",
            rule.name()
        );
        all.extend(got);
    }
    assert_eq!(all["paid_user:1"]["interactions_count"], 9);
    assert_eq!(all["property_status:1"]["property_interactions_count"], 6);
    assert_eq!(
        all["possible_broker:1:2021-11-30T00:00:00.000Z"]["threat_user_interactions"],
        11
    );
    assert_eq!(all.len(), 3, "user 2 raises nothing");
}

#[tokio::test]
async fn alerts_match_an_independent_computation_whatever_the_batching() {
    for seed in 0..5u64 {
        let records = random_records(seed, 400);
        let expected = expected_alerts(&records);
        assert!(!expected.is_empty());
        for (batch, repeats, aggregation) in [
            (1, 1, Aggregation::PerKey),
            (7, 2, Aggregation::PerKey),
            (100, 1, Aggregation::PerRecord),
            (400, 3, Aggregation::PerKey),
        ] {
            let mut got = BTreeMap::new();
            let mut emitted = 0;
            for rule in rules() {
                let (alerts, n) = alerts_of(&rule, &records, batch, repeats, aggregation).await;
                emitted += n;
                got.extend(alerts);
            }
            assert_eq!(got, expected, "seed {seed} batch {batch} x{repeats}");
            assert_eq!(
                emitted,
                expected.len(),
                "each alert emitted once: seed {seed} batch {batch} x{repeats}"
            );
        }
    }
}

/// With a `ParallelizationFactor`, batches of one shard run at once, each with its own users:
/// property_status hears about one property from several lanes, in no order between them.
#[tokio::test]
async fn alerts_are_exact_when_batches_of_one_shard_run_at_once() {
    for seed in 0..5u64 {
        let records = random_records(seed, 400);
        let expected = expected_alerts(&records);
        for (lanes, batch, repeats) in [(2, 5, 1), (3, 7, 2), (10, 20, 1)] {
            let mut got = BTreeMap::new();
            let mut emitted = 0;
            for rule in rules() {
                let (store, publisher, dl) = memory_ports();
                let consumer = RuleConsumer::with_parallelization(rule, lanes as u32);
                let engine = Engine::new(consumer, &store, &publisher, &dl);
                deliver_in_lanes(&engine, &records, lanes, batch, repeats, seed, now()).await;
                let (alerts, n) = alerts(&publisher);
                emitted += n;
                got.extend(alerts);
            }
            let case = format!("seed {seed}, {lanes} lanes, batch {batch} x{repeats}");
            assert_eq!(got, expected, "{case}");
            assert_eq!(emitted, expected.len(), "each alert emitted once: {case}");

            // The counts themselves, with a threshold never reached (no key is ever finished).
            let (store, publisher, dl) = memory_ports();
            let rule = Rule::by_name("property_status", u64::MAX / 2, 60, 86_400).unwrap();
            let consumer = RuleConsumer::with_parallelization(rule, lanes as u32);
            let engine = Engine::new(consumer, &store, &publisher, &dl);
            deliver_in_lanes(&engine, &records, lanes, batch, repeats, seed, now()).await;
            for (property, n) in interactions_per_property(&records) {
                let item = store.item(&format!("property_status#{property}")).unwrap();
                assert_eq!(item.counters["count"], n, "property {property}: {case}");
            }
        }
    }
}

/// Without a `ParallelizationFactor` a shard's records arrive in order, so a property that
/// hears from several users in a batch is written once; with one, once per user (their own
/// watermarks keep it exact).
#[tokio::test]
async fn a_property_is_written_once_per_batch_unless_batches_of_a_shard_run_at_once() {
    let rule = Rule::by_name("property_status", 5, 60, 86_400).unwrap();
    let at = Utc.with_ymd_and_hms(2021, 11, 30, 0, 0, 0).unwrap();
    let records: Vec<StreamRecord> = (0..12u64)
        .map(|i| StreamRecord {
            partition_key: (i % 4).to_string(),
            ..record(
                i,
                "shardId-000000000000",
                interaction(i % 4, 5, at, "Interaction"),
            )
        })
        .collect();
    for (factor, writes) in [(1, 1), (2, 4)] {
        let (store, publisher, dl) = memory_ports();
        let consumer = RuleConsumer::with_parallelization(rule, factor);
        let report = Engine::new(consumer, &store, &publisher, &dl)
            .run(&records, now())
            .await;
        assert_eq!(report.keys, writes, "factor {factor}");
        assert_eq!(
            store.item("property_status#5").unwrap().counters["count"],
            12
        );
        assert_eq!(alerts(&publisher).1, 1, "factor {factor}");
    }
}

fn interactions_per_property(records: &[StreamRecord]) -> BTreeMap<u64, u64> {
    let mut out = BTreeMap::new();
    for r in records {
        let Ok(v) = serde_json::from_slice::<serde_json::Value>(&r.data) else {
            continue;
        };
        if v["event"] == "Interaction" {
            *out.entry(v["property_id"].as_u64().unwrap()).or_default() += 1;
        }
    }
    out
}

#[tokio::test]
async fn a_crash_after_any_write_still_emits_every_alert_with_its_id() {
    let records = random_records(99, 300);
    let expected = expected_alerts(&records);
    let shard: Vec<StreamRecord> = records
        .iter()
        .filter(|r| r.shard_id.ends_with('0'))
        .cloned()
        .collect();
    for rule in rules() {
        let clean_writes = {
            let (store, publisher, dl) = memory_ports();
            Engine::new(RuleConsumer::new(rule), &store, &publisher, &dl)
                .run(&shard, now())
                .await
                .writes
        };
        assert!(clean_writes >= 3);
        let mut reported = 0;
        for crash_after in 0..clean_writes {
            let (store, publisher) = (MemoryStateStore::new(), MemoryPublisher::default());
            store.fail_after(crash_after);
            let dl = MemoryDeadLetters::default();
            let report = Engine::new(RuleConsumer::new(rule), &store, &publisher, &dl)
                .run(&shard, now())
                .await;
            // A failed count write is retried; a failed `alerted` flag is not (best effort).
            reported += usize::from(report.retry_from.is_some());
            store.fail_after(usize::MAX);
            deliver(
                &rule,
                &store,
                &publisher,
                &records,
                50,
                1,
                Aggregation::PerKey,
            )
            .await;
            let (got, _) = alerts(&publisher);
            let want: BTreeMap<_, _> = expected
                .iter()
                .filter(|(k, _)| k.starts_with(rule.name()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            assert_eq!(got, want, "{} crash after {crash_after}", rule.name());
        }
        assert!(
            reported > 0,
            "{}: the injected failures were reported",
            rule.name()
        );
    }
}

#[tokio::test]
async fn an_alert_whose_publish_failed_is_published_on_the_retry() {
    let rule = Rule::by_name("paid_user", 9, 60, 86_400).unwrap();
    let at = Utc.with_ymd_and_hms(2021, 11, 30, 0, 0, 0).unwrap();
    let records: Vec<StreamRecord> = (0..9)
        .map(|i| {
            record(
                i,
                "shardId-000000000000",
                interaction(1, 1, at, "Interaction"),
            )
        })
        .collect();
    let (store, publisher, dl) = memory_ports();
    publisher
        .failures_left
        .store(3, std::sync::atomic::Ordering::SeqCst);
    let d = Engine::new(RuleConsumer::new(rule), &store, &publisher, &dl);
    assert!(
        d.run(&records, now()).await.retry_from.is_some(),
        "the publish failure is reported"
    );
    assert_eq!(d.run(&records, now()).await.retry_from, None);
    let (got, n) = alerts(&publisher);
    assert_eq!(
        (n, got["paid_user:1"]["interactions_count"].as_u64()),
        (1, Some(9))
    );
    // A third delivery of the same records sends nothing more: the alert is flagged.
    d.run(&records, now()).await;
    assert_eq!(alerts(&publisher).1, 1);
}

#[tokio::test]
async fn other_events_are_ignored_and_garbage_is_dead_lettered() {
    let rule = Rule::by_name("paid_user", 1, 60, 86_400).unwrap();
    let at = Utc.with_ymd_and_hms(2021, 11, 30, 0, 0, 0).unwrap();
    let records = vec![
        record(0, "s", interaction(1, 1, at, "View")),
        record(1, "s", "{".into()),
        record(2, "s", interaction(2, 1, at, "Interaction")),
    ];
    let (store, publisher, dl) = memory_ports();
    let report = Engine::new(RuleConsumer::new(rule), &store, &publisher, &dl)
        .run(&records, now())
        .await;
    assert_eq!(
        (
            report.ignored,
            report.valid,
            report.rejected.values().sum::<u64>()
        ),
        (1, 1, 1)
    );
    assert_eq!(dl.letters.lock().unwrap().len(), 1);
    assert_eq!(
        alerts(&publisher).0.keys().cloned().collect::<Vec<_>>(),
        vec!["paid_user:2".to_string()]
    );
}

#[tokio::test]
async fn events_of_a_key_whose_alert_is_out_are_not_written_again_in_per_key_mode() {
    let rule = Rule::by_name("paid_user", 9, 60, 86_400).unwrap();
    let records: Vec<StreamRecord> = (0..30)
        .map(|i| {
            let at = now() - Duration::seconds(600 - i as i64);
            record(
                i,
                "shardId-000000000000",
                interaction(7, i % 3, at, "Interaction"),
            )
        })
        .collect();
    for (aggregation, want_skipped) in [(Aggregation::PerKey, 20), (Aggregation::PerRecord, 0)] {
        let (store, publisher, dl) = memory_ports();
        let d = Engine::new(RuleConsumer::new(rule), &store, &publisher, &dl)
            .with_aggregation(aggregation);
        let mut skipped = 0;
        for chunk in records.chunks(10) {
            skipped += d.run(chunk, now()).await.skipped;
        }
        assert_eq!(skipped, want_skipped, "{aggregation:?}");
        let (got, _) = alerts(&publisher);
        assert_eq!(got.len(), 1, "{aggregation:?}: {got:?}");
        assert_eq!(got["paid_user:7"]["interactions_count"], 9);
    }
}
