//! The gender models on the engine, against in-memory ports: aggregation, redelivery, crashes and
//! batching must not change the state or the answers.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use chrono::{DateTime, Duration, TimeZone, Utc};

use tally_engine::testing::*;
use tally_engine::{Aggregation, BatchHandler, Engine, SequenceNumber, Sequenced, StreamRecord};

use super::model::{
    Bucket, GenderCounts, GenderModel, LastVisitModel, LatestVisit, ModelState,
    RecentTopGenderModel, TopGenderModel,
};
use super::visit::{Gender, Visit, VisitDecoder};
use super::VisitConsumer;

const SHARD: &str = "shardId-000000000000";

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 22, 12, 0, 0).unwrap()
}

fn seq(i: u64) -> SequenceNumber {
    kinesis_sequence(i)
}

fn record(i: u64, data: &str) -> StreamRecord {
    StreamRecord {
        shard_id: SHARD.into(),
        sequence_number: seq(i),
        partition_key: "pk".into(),
        data: data.as_bytes().to_vec(),
        arrival: now(),
    }
}

/// A visit at `ts`, arriving then (or at `now()` if that is later).
fn visit(i: u64, cid: &str, g: &str, ts: DateTime<Utc>) -> StreamRecord {
    let mut r = record(
        i,
        &format!(
            r#"{{"cid":"{cid}","gndr":"{g}","ts":"{}"}}"#,
            ts.to_rfc3339()
        ),
    );
    r.arrival = r.arrival.max(ts);
    r
}

/// A model on the engine, with the test's ports.
type ModelEngine<'a> = Engine<
    VisitConsumer<&'a dyn GenderModel>,
    &'a MemoryStateStore,
    &'a MemoryPublisher,
    &'a MemoryDeadLetters,
>;

fn engine<'a>(
    model: &'a dyn GenderModel, store: &'a MemoryStateStore, publisher: &'a MemoryPublisher,
    dl: &'a MemoryDeadLetters,
) -> ModelEngine<'a> {
    Engine::new(VisitConsumer::new(model), store, publisher, dl)
}

/// Every model on one state item per cid (the default deployment).
fn combined<'a>(
    store: &'a MemoryStateStore, publisher: &'a MemoryPublisher, dl: &'a MemoryDeadLetters,
) -> ModelEngine<'a> {
    const ALL: [&dyn GenderModel; 3] = [
        &LastVisitModel,
        &TopGenderModel,
        &RecentTopGenderModel { days: 7 },
    ];
    Engine::new(VisitConsumer::combined(ALL.to_vec()), store, publisher, dl)
}

/// The stored latest visit of a state item.
fn latest_of(store: &MemoryStateStore, pk: &str) -> Option<LatestVisit> {
    LatestVisit::from_latest(store.item(pk)?.latest.as_ref()?)
}

fn random_visits(rng: &mut SeededRng, n: u64, cids: u64) -> Vec<StreamRecord> {
    (0..n)
        .map(|i| {
            let cid = format!("C{}", rng.below(cids));
            let g = if rng.below(2) == 0 { "male" } else { "FEMALE" };
            let ts = now() - Duration::hours(rng.below(24 * 10) as i64);
            if rng.below(25) == 0 {
                record(i, "{broken")
            } else {
                visit(i, &cid, g, ts)
            }
        })
        .collect()
}

/// The answers computed independently of the engine, straight from the visits.
fn expected_answers(records: &[StreamRecord], model: &str) -> BTreeMap<String, Gender> {
    let mut by_cid: BTreeMap<String, Vec<(DateTime<Utc>, u64, Gender)>> = BTreeMap::new();
    for (i, r) in records.iter().enumerate() {
        let Ok(v) = serde_json::from_slice::<serde_json::Value>(&r.data) else {
            continue;
        };
        let g = if v["gndr"].as_str().unwrap().eq_ignore_ascii_case("male") {
            Gender::Male
        } else {
            Gender::Female
        };
        let ts = DateTime::parse_from_rfc3339(v["ts"].as_str().unwrap())
            .unwrap()
            .with_timezone(&Utc);
        by_cid
            .entry(v["cid"].as_str().unwrap().to_string())
            .or_default()
            .push((ts, i as u64, g));
    }
    let top = |m: usize, f: usize| if m > f { Gender::Male } else { Gender::Female };
    let mut out = BTreeMap::new();
    for (cid, vs) in by_cid {
        let answer = match model {
            "MODEL1" => Some(vs.iter().max_by_key(|(ts, i, _)| (*ts, *i)).unwrap().2),
            "MODEL2" => {
                let m = vs.iter().filter(|v| v.2 == Gender::Male).count();
                Some(top(m, vs.len() - m))
            }
            _ => {
                let start = (now() - Duration::days(6)).date_naive();
                let recent: Vec<_> = vs.iter().filter(|v| v.0.date_naive() >= start).collect();
                let m = recent.iter().filter(|v| v.2 == Gender::Male).count();
                (!recent.is_empty()).then(|| top(m, recent.len() - m))
            }
        };
        if let Some(a) = answer {
            out.insert(cid, a);
        }
    }
    out
}

/// The answers as the results table would hold them: the highest revision per _id wins.
fn answers(publisher: &MemoryPublisher, model: &dyn GenderModel) -> BTreeMap<String, Gender> {
    let mut newest: BTreeMap<String, super::GenderResult> = BTreeMap::new();
    for r in publisher.published.lock().unwrap().iter() {
        let r: super::GenderResult = serde_json::from_slice(&r.data).unwrap();
        if newest.get(&r.id).is_none_or(|k| k.rev < r.rev) {
            newest.insert(r.id.clone(), r.clone());
        }
    }
    newest
        .into_values()
        .filter_map(|r| r.as_of(model, now()).gndr.map(|g| (r.cid.to_string(), g)))
        .collect()
}

async fn deliver(
    handler: &impl BatchHandler, records: &[StreamRecord], batch: usize, repeats: usize,
) {
    deliver_like_lambda(handler, records, batch, repeats, now()).await
}

#[tokio::test]
async fn one_write_per_distinct_cid() {
    let records: Vec<_> = (0..100)
        .map(|i| visit(i, &format!("C{}", i % 4), "male", now()))
        .collect();
    let (store, publisher, dl) = memory_ports();
    let report = engine(&TopGenderModel, &store, &publisher, &dl)
        .run(&records, now())
        .await;
    assert_eq!(report.writes, 4);
    assert_eq!(store.requests.load(Ordering::SeqCst), 4);
    assert_eq!(report.published, 4);
    let items = store.items.lock().unwrap();
    assert_eq!(
        ModelState::from_stored(&items["MODEL2#C0"]).counts[&Bucket::AllTime],
        GenderCounts {
            male: 25,
            female: 0
        }
    );
}

#[tokio::test]
async fn per_record_mode_writes_once_per_record_with_the_same_answers() {
    let mut rng = SeededRng::new(7);
    let records = random_visits(&mut rng, 200, 10);
    let (store, publisher, dl) = memory_ports();
    let d =
        engine(&TopGenderModel, &store, &publisher, &dl).with_aggregation(Aggregation::PerRecord);
    let report = d.run(&records, now()).await;
    assert_eq!(report.writes, report.valid);
    assert_eq!(
        answers(&publisher, &TopGenderModel),
        expected_answers(&records, "MODEL2")
    );
}

#[tokio::test]
async fn bad_records_are_dead_lettered_with_reasons_and_do_not_fail_the_batch() {
    let records = vec![
        visit(1, "C1", "male", now()),
        record(2, "{oops"),
        record(3, r#"{"cid":"C1","gndr":"x"}"#),
    ];
    let (store, publisher, dl) = memory_ports();
    let report = engine(&TopGenderModel, &store, &publisher, &dl)
        .run(&records, now())
        .await;
    assert_eq!(report.retry_from, None);
    assert_eq!(report.rejected.values().sum::<u64>(), 2);
    let reasons = dl.reasons();
    assert_eq!(reasons.len(), 2);
    assert_reasons_include(&reasons, &["malformed json", "unknown gender \"x\""]);
}

#[tokio::test]
async fn redelivered_batch_counts_once_and_republishes_the_same_revision() {
    let records: Vec<_> = (0..10)
        .map(|i| visit(i, "C1", if i < 6 { "male" } else { "female" }, now()))
        .collect();
    let (store, publisher, dl) = memory_ports();
    let d = engine(&TopGenderModel, &store, &publisher, &dl);
    d.run(&records, now()).await;
    let again = d.run(&records, now()).await;
    assert_eq!(again.conflicts, 1);
    let items = store.items.lock().unwrap();
    assert_eq!(
        ModelState::from_stored(&items["MODEL2#C1"]).counts[&Bucket::AllTime],
        GenderCounts { male: 6, female: 4 }
    );
    let published: Vec<super::GenderResult> = publisher
        .published
        .lock()
        .unwrap()
        .iter()
        .map(|r| serde_json::from_slice(&r.data).unwrap())
        .collect();
    assert_eq!(published.len(), 2);
    assert_eq!(published[0].rev, published[1].rev);
    assert_eq!(published[0].gndr, published[1].gndr);
}

#[tokio::test]
async fn overlapping_retry_applies_only_the_unseen_records() {
    // First delivery covers records 0..6; the retry starts at 3 and runs to 10 (bisected or resumed).
    let records: Vec<_> = (0..10).map(|i| visit(i, "C1", "male", now())).collect();
    let (store, publisher, dl) = memory_ports();
    let d = engine(&TopGenderModel, &store, &publisher, &dl);
    d.run(&records[0..6], now()).await;
    d.run(&records[3..10], now()).await;
    let items = store.items.lock().unwrap();
    assert_eq!(
        ModelState::from_stored(&items["MODEL2#C1"]).counts[&Bucket::AllTime].male,
        10
    );
    // One watermark per shard and partition key (the records' key is "pk").
    assert_eq!(
        items["MODEL2#C1"].watermarks[&format!("{SHARD}/pk")],
        seq(9)
    );
}

#[tokio::test]
async fn crash_after_any_write_then_retry_equals_one_delivery() {
    let mut rng = SeededRng::new(42);
    let records = random_visits(&mut rng, 120, 15);
    for model in [
        &LastVisitModel as &dyn GenderModel,
        &TopGenderModel,
        &RecentTopGenderModel { days: 7 },
    ] {
        let clean_writes = {
            let (store, publisher, dl) = memory_ports();
            engine(model, &store, &publisher, &dl)
                .run(&records, now())
                .await
                .writes
        };
        assert!(clean_writes > 10);
        for crash_after in 0..clean_writes {
            let (store, publisher, dl) = memory_ports();
            let d = engine(model, &store, &publisher, &dl);
            store.fail_after(crash_after);
            let report = d.run(&records, now()).await;
            assert!(
                report.retry_from.is_some(),
                "an injected failure must be reported"
            );
            store.fail_after(usize::MAX);
            deliver(&d, &records, records.len(), 1).await;
            assert_eq!(
                answers(&publisher, model),
                expected_answers(&records, model.name()),
                "{} crash after {crash_after}",
                model.name()
            );
        }
    }
}

#[tokio::test]
async fn publish_failure_is_retried_and_the_result_arrives() {
    let records: Vec<_> = (0..5).map(|i| visit(i, "C1", "female", now())).collect();
    let (store, publisher, dl) = memory_ports();
    publisher.failures_left.store(3, Ordering::SeqCst); // more than one invocation retries
    let d = engine(&TopGenderModel, &store, &publisher, &dl);
    let first = d.run(&records, now()).await;
    assert_eq!(first.retry_from, Some(seq(0)));
    let second = d.run(&records, now()).await;
    assert_eq!(second.retry_from, None);
    assert_eq!(answers(&publisher, &TopGenderModel)["C1"], Gender::Female);
    assert_eq!(
        ModelState::from_stored(&store.items.lock().unwrap()["MODEL2#C1"]).counts[&Bucket::AllTime]
            .female,
        5
    );
}

#[tokio::test]
async fn model1_keeps_the_latest_event_time_whatever_the_arrival_order() {
    let t = now() - Duration::hours(1);
    let records = vec![
        visit(0, "C1", "male", t + Duration::minutes(30)),
        visit(1, "C1", "female", t),
        visit(2, "C1", "female", t + Duration::minutes(10)),
    ];
    let (store, publisher, dl) = memory_ports();
    let d = engine(&LastVisitModel, &store, &publisher, &dl);
    for r in &records {
        d.run(std::slice::from_ref(r), now()).await; // one batch each: later batches are older
    }
    assert_eq!(latest_of(&store, "MODEL1#C1").unwrap().gndr, Gender::Male);
    assert_eq!(answers(&publisher, &LastVisitModel)["C1"], Gender::Male);
    // Same event time: the later arrival wins.
    let tie = vec![visit(5, "C2", "male", t), visit(6, "C2", "female", t)];
    d.run(&tie, now()).await;
    assert_eq!(latest_of(&store, "MODEL1#C2").unwrap().gndr, Gender::Female);
}

#[tokio::test]
async fn model3_drops_visits_outside_the_window_and_prunes_expired_days() {
    let (store, publisher, dl) = memory_ports();
    let model = RecentTopGenderModel { days: 7 };
    let d = engine(&model, &store, &publisher, &dl);
    let report = d
        .run(&[visit(0, "C1", "male", now() - Duration::days(8))], now())
        .await;
    assert_eq!(
        report.writes, 0,
        "a visit that can never count is not written"
    );
    d.run(&[visit(1, "C1", "male", now() - Duration::days(6))], now())
        .await;
    let later = now() + Duration::days(3);
    d.run(&[visit(2, "C1", "female", later)], later).await;
    let items = store.items.lock().unwrap();
    let days: Vec<_> = ModelState::from_stored(&items["MODEL3#C1"])
        .counts
        .keys()
        .copied()
        .collect();
    assert_eq!(
        days,
        vec![Bucket::Day(later.date_naive())],
        "the expired day was removed"
    );
}

#[tokio::test]
async fn same_input_same_answers_whatever_the_batching_and_redelivery() {
    for seed in 0..6u64 {
        let mut rng = SeededRng::new(seed);
        let records = random_visits(&mut rng, 300, 25);
        for model in [
            &LastVisitModel as &dyn GenderModel,
            &TopGenderModel,
            &RecentTopGenderModel { days: 7 },
        ] {
            let expected = expected_answers(&records, model.name());
            for (batch, repeats) in [(1, 1), (7, 2), (100, 1), (300, 3)] {
                let (store, publisher, dl) = memory_ports();
                let d = engine(model, &store, &publisher, &dl);
                deliver(&d, &records, batch, repeats).await;
                assert_eq!(
                    answers(&publisher, model),
                    expected,
                    "seed {seed} {} batch {batch} x{repeats}",
                    model.name()
                );
            }
        }
    }
}

/// With a `ParallelizationFactor`, batches of one shard run at once and only each partition key's
/// order is kept: with the contract's key (the cid) and with a producer that spreads a cid's
/// visits over several keys, the answers stay those of the visits.
#[tokio::test]
async fn same_answers_when_batches_of_one_shard_run_at_once() {
    for seed in 0..4u64 {
        let mut rng = SeededRng::new(seed);
        let by_cid: Vec<StreamRecord> = random_visits(&mut rng, 300, 25)
            .into_iter()
            .map(|r| {
                let cid = serde_json::from_slice::<serde_json::Value>(&r.data)
                    .map(|v| v["cid"].as_str().unwrap_or_default().to_string())
                    .unwrap_or_default();
                StreamRecord {
                    partition_key: cid,
                    ..r
                }
            })
            .collect();
        let spread: Vec<StreamRecord> = by_cid
            .iter()
            .map(|r| StreamRecord {
                partition_key: format!("p{}", rng.below(5)),
                ..r.clone()
            })
            .collect();
        for records in [&by_cid, &spread] {
            for model in [
                &LastVisitModel as &dyn GenderModel,
                &TopGenderModel,
                &RecentTopGenderModel { days: 7 },
            ] {
                let expected = expected_answers(records, model.name());
                for (lanes, batch, repeats) in [(2, 5, 1), (4, 9, 2), (10, 40, 1)] {
                    let (store, publisher, dl) = memory_ports();
                    let d = engine(model, &store, &publisher, &dl);
                    deliver_in_lanes(&d, records, lanes, batch, repeats, seed, now()).await;
                    assert_eq!(
                        answers(&publisher, model),
                        expected,
                        "seed {seed} {} {lanes} lanes batch {batch} x{repeats}",
                        model.name()
                    );
                }
            }
        }
    }
}

/// One item per cid for all three models: each model answers as it does alone, whatever the
/// batching, redelivery and lanes, with one write per distinct cid per batch for all of them.
#[tokio::test]
async fn all_models_on_one_item_answer_as_each_alone_with_one_write_per_cid() {
    let models = [
        &LastVisitModel as &dyn GenderModel,
        &TopGenderModel,
        &RecentTopGenderModel { days: 7 },
    ];
    for seed in 0..4u64 {
        let mut rng = SeededRng::new(seed);
        let records = random_visits(&mut rng, 300, 25);
        for (lanes, batch, repeats) in [(1, 1, 1), (1, 7, 2), (1, 300, 3), (4, 9, 2)] {
            let (store, publisher, dl) = memory_ports();
            let d = combined(&store, &publisher, &dl);
            deliver_in_lanes(&d, &records, lanes, batch, repeats, seed, now()).await;
            for model in models {
                assert_eq!(
                    answers(&publisher, model),
                    expected_answers(&records, model.name()),
                    "seed {seed} {} {lanes} lanes batch {batch} x{repeats}",
                    model.name()
                );
            }
        }
    }
    // One batch: one write per distinct cid, three results each.
    let records: Vec<_> = (0..100)
        .map(|i| visit(i, &format!("C{}", i % 4), "male", now()))
        .collect();
    let (store, publisher, dl) = memory_ports();
    let report = combined(&store, &publisher, &dl).run(&records, now()).await;
    assert_eq!(report.writes, 4);
    assert_eq!(store.requests.load(Ordering::SeqCst), 4);
    assert_eq!(report.published, 12);
    let item = store.item("MODELS#C0").unwrap();
    assert_eq!(item.counters["all_male"], 25);
    assert_eq!(item.counters["2026-11-22_male"], 25);
    let visits: Vec<Sequenced<Visit>> = records[..3]
        .iter()
        .map(|r| Sequenced {
            sequence_number: r.sequence_number.clone(),
            value: VisitDecoder::default().decode(r).unwrap(),
        })
        .collect();
    let specs: Vec<_> = models.iter().map(|m| m.state_spec()).collect();
    let change = super::consumer::fold_change(&specs, &visits, now()).unwrap();
    assert_eq!(
        change.expires_at, None,
        "MODEL2's counts in the item never expire"
    );
    let alone = super::consumer::fold_change(&specs[2..], &visits, now()).unwrap();
    assert!(alone.expires_at.is_some(), "MODEL3's item alone does");
}

#[tokio::test]
async fn a_failed_prune_is_not_a_write_and_fails_nothing() {
    let (store, publisher, dl) = memory_ports();
    let model = RecentTopGenderModel { days: 7 };
    let d = engine(&model, &store, &publisher, &dl);
    d.run(&[visit(1, "C1", "male", now() - Duration::days(6))], now())
        .await;
    store
        .housekeeping_fails
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let later = now() + Duration::days(3);
    let report = d.run(&[visit(2, "C1", "female", later)], later).await;
    assert_eq!(
        report.writes, 1,
        "the conditional write, not the failed prune"
    );
    assert_eq!(report.retry_from, None, "housekeeping never fails a batch");
    assert_eq!(
        ModelState::from_stored(&store.item("MODEL3#C1").unwrap())
            .counts
            .len(),
        2,
        "the expired day is still stored"
    );
    assert_eq!(report.published, 1);
}
