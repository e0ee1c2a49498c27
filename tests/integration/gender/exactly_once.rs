//! Exactly-once state against DynamoDB Local, with kinesalite's real 56-digit sequence numbers:
//! redelivery, crashes after any write, publish failures and different batch sizes all end in the
//! state and answers of one clean delivery.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};

use aws_lambda_events::event::streams::KinesisEventResponse;
use chrono::{Duration, Utc};
use lambda_runtime::{Context, LambdaEvent};
use tally_aws::{KinesisFunction, S3DeadLetters};
use tally_engine::ports::*;
use tally_engine::testing::SeededRng;
use tally_engine::windows::UtcDays;
use tally_engine::{BatchHandler, Engine, Fanout, SequenceNumber, StreamRecord};
use tally_pipelines::gender::model::{Bucket, GenderModel, ModelState, RecentTopGenderModel};
use tally_pipelines::gender::VisitConsumer;

use super::event_files::scan_state;
use super::oracle;
use crate::support::{kinesis_event, ShardRecord, Stack, PER_MODEL};

/// Passes `writes_left` writes through, then fails the next `failures_left`, then works again: a
/// process that died (or lost DynamoDB for a while) after that many writes.
struct CrashAfter<S> {
    inner: S,
    writes_left: AtomicUsize,
    failures_left: AtomicUsize,
}

impl<S> CrashAfter<S> {
    fn new(inner: S, writes: usize, failures: usize) -> Self {
        Self {
            inner,
            writes_left: AtomicUsize::new(writes),
            failures_left: AtomicUsize::new(failures),
        }
    }

    fn take(&self) -> Result<(), PortError> {
        let dec = |a: &AtomicUsize| {
            a.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
        };
        if dec(&self.writes_left) || !dec(&self.failures_left) {
            Ok(())
        } else {
            Err(PortError::Transient("injected crash".into()))
        }
    }
}

impl<S: StateStore> StateStore for CrashAfter<S> {
    async fn read(&self, key: &StateKey) -> Result<Option<StoredState>, PortError> {
        self.inner.read(key).await
    }
    async fn apply_if_fresh(
        &self, key: &StateKey, first: &SequenceNumber, change: &StateChange,
    ) -> Result<Applied, PortError> {
        self.take()?;
        self.inner.apply_if_fresh(key, first, change).await
    }
    async fn apply_if_unchanged(
        &self, key: &StateKey, rev: Option<u64>, change: &StateChange,
    ) -> Result<Applied, PortError> {
        self.take()?;
        self.inner.apply_if_unchanged(key, rev, change).await
    }
    async fn remove_counters(&self, key: &StateKey, names: &[String]) -> Result<(), PortError> {
        self.inner.remove_counters(key, names).await
    }
    async fn set_flag(&self, key: &StateKey, flag: &str) -> Result<(), PortError> {
        self.take()?;
        self.inner.set_flag(key, flag).await
    }
}

/// Fails the first `failures` publishes: the state is written, the results are not.
struct FlakyPublisher<P> {
    inner: P,
    failures: AtomicUsize,
}

impl<P: RecordPublisher> RecordPublisher for FlakyPublisher<P> {
    async fn publish(&self, results: &[OutRecord]) -> Result<Vec<usize>, PortError> {
        if self
            .failures
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(PortError::Transient("injected publish failure".into()));
        }
        self.inner.publish(results).await
    }
}

/// A model function with the given state store and publisher.
type Model<S, P> =
    KinesisFunction<Fanout<Engine<VisitConsumer<Box<dyn GenderModel>>, S, P, S3DeadLetters>>>;

/// The function with its state store wrapped (fault injection around the real adapter).
fn with_store<S, P, S2>(f: Model<S, P>, mut wrap: impl FnMut(S) -> S2) -> Model<S2, P> {
    f.map(|engines| engines.map(|engine| engine.map_store(&mut wrap)))
}

/// The function with its publisher wrapped.
fn with_publisher<S, P, P2>(f: Model<S, P>, mut wrap: impl FnMut(P) -> P2) -> Model<S, P2> {
    f.map(|engines| engines.map(|engine| engine.map_publisher(&mut wrap)))
}

/// A reproducible mix of visits (and a few bad records) over `cids` customers and ten days.
fn visit_lines(seed: u64, n: usize, cids: u64) -> Vec<(String, Vec<u8>)> {
    let mut rng = SeededRng::new(seed);
    let mut next = move |m: u64| rng.below(m);
    (0..n)
        .map(|_| {
            let cid = format!("C{}", next(cids));
            let ts = (Utc::now() - Duration::hours(next(240) as i64)).to_rfc3339();
            let g = if next(2) == 0 { "male" } else { "Female" };
            let line = if next(30) == 0 {
                format!("{{\"cid\":\"{cid}\",\"gndr\":")
            } else {
                format!(r#"{{"cid":"{cid}","gndr":"{g}","ts":"{ts}"}}"#)
            };
            (cid, line.into_bytes())
        })
        .collect()
}

fn oracle_visits(records: &[ShardRecord]) -> Vec<oracle::RawVisit> {
    records
        .iter()
        .enumerate()
        .filter_map(|(i, r)| oracle::parse_visit(&r.data, (r.arrival * 1000.0).round() as i64, i))
        .collect()
}

/// MODEL2's newest answer per cid on the results stream is what the oracle computes from the
/// records once each.
async fn assert_answers_as_the_oracle(stack: &Stack, records: &[ShardRecord]) {
    let expected = oracle::answers(&oracle_visits(records), "MODEL2", Utc::now(), 7);
    assert_eq!(answers_on_stream(stack, "MODEL2").await, expected);
}

async fn answers_on_stream(stack: &Stack, model: &str) -> BTreeMap<String, String> {
    let mut newest: BTreeMap<String, (u64, Option<String>)> = BTreeMap::new();
    for r in stack.read_stream("GenderResultsStream").await {
        let v: serde_json::Value = serde_json::from_slice(&r.data).unwrap();
        if v["model"] != model {
            continue;
        }
        let rev = v["rev"].as_u64().unwrap();
        let cid = v["cid"].as_str().unwrap().to_string();
        if newest.get(&cid).is_none_or(|(r, _)| *r < rev) {
            newest.insert(cid, (rev, v["gndr"].as_str().map(String::from)));
        }
    }
    newest
        .into_iter()
        .filter_map(|(k, (_, g))| g.map(|g| (k, g)))
        .collect()
}

async fn invoke<H: BatchHandler>(
    f: &KinesisFunction<H>, arn: &str, records: &[ShardRecord],
) -> KinesisEventResponse {
    f.handle(LambdaEvent::new(
        kinesis_event(arn, records),
        Context::default(),
    ))
    .await
    .unwrap()
}

/// Delivers like the event source mapping: batches of `batch`, resuming at the reported failure.
async fn deliver<H: BatchHandler>(
    f: &KinesisFunction<H>, arn: &str, records: &[ShardRecord], batch: usize,
) {
    let mut pos = 0;
    let mut retries = 0;
    while pos < records.len() {
        let end = (pos + batch).min(records.len());
        let response = invoke(f, arn, &records[pos..end]).await;
        match response
            .batch_item_failures
            .first()
            .and_then(|f| f.item_identifier.clone())
        {
            None => pos = end,
            Some(seq) => {
                pos = records
                    .iter()
                    .position(|r| r.sequence_number == seq)
                    .expect("failure names a record of the batch");
                retries += 1;
                assert!(retries < 50, "no progress");
            }
        }
    }
}

/// A stack of the per-model deployment (the default one is tested in
/// `all_models_on_one_item_...` below) with `n` visits on its stream.
async fn stack_with_visits(seed: u64, n: usize) -> (Stack, Vec<ShardRecord>, String) {
    stack_with_visits_in(PER_MODEL, seed, n).await
}

async fn stack_with_visits_in(
    params: &[(&str, &str)], seed: u64, n: usize,
) -> (Stack, Vec<ShardRecord>, String) {
    let stack = Stack::new(params).await;
    stack
        .put_records("VisitsStream", &visit_lines(seed, n, 12))
        .await;
    let records = stack.read_stream("VisitsStream").await;
    assert_eq!(records.len(), n);
    assert!(
        records.iter().all(|r| r.sequence_number.len() > 40),
        "kinesalite sequence numbers are long"
    );
    let arn = stack.template.arn("VisitsStream").unwrap();
    (stack, records, arn)
}

#[tokio::test]
async fn crash_after_each_write_then_whole_batch_redelivered_equals_one_delivery() {
    let (stack, records, arn) = stack_with_visits(11, 150).await;
    // A clean run in a separate stack tells the state one delivery leaves.
    let (clean_stack, clean_records, clean_arn) = stack_with_visits(11, 150).await;
    let clean = gender_model::from_env(
        &clean_stack.sdk,
        &clean_stack.function_env("Model2Function"),
    )
    .unwrap();
    invoke(&clean, &clean_arn, &clean_records).await;
    let clean_state = scan_state(&clean_stack).await;
    // One write per cid; the batch's completion mark after them is best effort (a crash there
    // fails nothing).
    let writes = clean_state.keys().filter(|pk| !pk.contains("#~")).count();
    assert!(writes >= 10);

    let base = gender_model::from_env(&stack.sdk, &stack.function_env("Model2Function")).unwrap();
    let f = with_store(base, |s| CrashAfter::new(s, 0, 0));
    let store = &f.handler.store;
    // Crash after 0, 3, 6, ... writes; each time the whole batch comes again (Lambda got no answer).
    for crash_after in (0..writes).step_by(3) {
        store.writes_left.store(crash_after, Ordering::SeqCst);
        store.failures_left.store(usize::MAX, Ordering::SeqCst);
        let response = invoke(&f, &arn, &records).await;
        assert!(
            !response.batch_item_failures.is_empty(),
            "crash after {crash_after} writes must be reported"
        );
    }
    store.failures_left.store(0, Ordering::SeqCst);
    let response = invoke(&f, &arn, &records).await;
    assert!(response.batch_item_failures.is_empty());

    let strip = |s: BTreeMap<String, BTreeMap<String, String>>| -> BTreeMap<String, BTreeMap<String, String>> {
        s.into_iter().map(|(k, v)| (k, v.into_iter().filter(|(a, _)| a.starts_with("c_")).collect())).collect()
    };
    assert_eq!(
        strip(scan_state(&stack).await),
        strip(clean_state),
        "counts equal one delivery"
    );
    assert_answers_as_the_oracle(&stack, &records).await;
}

#[tokio::test]
async fn partial_failures_resume_and_batch_sizes_do_not_change_answers() {
    let (stack, records, arn) = stack_with_visits(5, 240).await;
    for (model, logical_id) in [
        ("MODEL1", "Model1Function"),
        ("MODEL2", "Model2Function"),
        ("MODEL3", "Model3Function"),
    ] {
        let expected = oracle::answers(&oracle_visits(&records), model, Utc::now(), 7);
        let base = gender_model::from_env(&stack.sdk, &stack.function_env(logical_id)).unwrap();
        // Fails its 5th and 6th writes, then works: a partial batch failure mid-way.
        let f = with_store(base, |s| CrashAfter::new(s, 4, 2));
        deliver(&f, &arn, &records, 64).await;
        assert_eq!(
            f.handler.store.failures_left.load(Ordering::SeqCst),
            0,
            "the injected failures happened"
        );
        // A redelivery of everything in other batch sizes changes nothing.
        deliver(&f, &arn, &records, 17).await;
        deliver(&f, &arn, &records, 240).await;
        assert_eq!(answers_on_stream(&stack, model).await, expected, "{model}");
    }
}

/// The default deployment: every model on one item per cid, through a mid-batch failure, a
/// redelivery in other batch sizes, each model's answers equal the oracle's.
#[tokio::test]
async fn all_models_on_one_item_per_cid_survive_partial_failures_and_redelivery() {
    let (stack, records, arn) = stack_with_visits_in(&[], 6, 240).await;
    let base =
        gender_model::from_env(&stack.sdk, &stack.function_env("GenderModelsFunction")).unwrap();
    let f = with_store(base, |s| CrashAfter::new(s, 4, 2));
    deliver(&f, &arn, &records, 64).await;
    assert_eq!(f.handler.store.failures_left.load(Ordering::SeqCst), 0);
    deliver(&f, &arn, &records, 17).await;
    deliver(&f, &arn, &records, 240).await;
    for model in ["MODEL1", "MODEL2", "MODEL3"] {
        let expected = oracle::answers(&oracle_visits(&records), model, Utc::now(), 7);
        assert_eq!(answers_on_stream(&stack, model).await, expected, "{model}");
    }
    let state = scan_state(&stack).await;
    assert!(
        !state.is_empty() && state.keys().all(|pk| pk.starts_with("MODELS#")),
        "one item per cid for every model: {:?}",
        state.keys().take(3).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn a_result_whose_publish_failed_is_published_on_the_retry() {
    let (stack, records, arn) = stack_with_visits(9, 60).await;
    let base = gender_model::from_env(&stack.sdk, &stack.function_env("Model2Function")).unwrap();
    // Three failures: more than the in-invocation retries, so the batch is reported.
    let f = with_publisher(base, |p| FlakyPublisher {
        inner: p,
        failures: AtomicUsize::new(3),
    });
    let first = invoke(&f, &arn, &records).await;
    assert_eq!(first.batch_item_failures.len(), 1);
    assert!(
        stack.read_stream("GenderResultsStream").await.is_empty(),
        "nothing published yet"
    );
    let state_after_first = scan_state(&stack).await;
    let second = invoke(&f, &arn, &records).await;
    assert!(second.batch_item_failures.is_empty());
    let mut state_after_second = scan_state(&stack).await;
    assert!(
        state_after_second
            .remove("MODEL2#~completed#shardId-000000000000")
            .is_some(),
        "the batch, published now, is marked completed"
    );
    assert_eq!(
        state_after_second, state_after_first,
        "the retry writes nothing else: the state was already applied"
    );
    assert_answers_as_the_oracle(&stack, &records).await;
}

#[tokio::test]
async fn model3_prunes_expired_days_in_dynamodb_and_sets_a_ttl() {
    let (stack, records, _) = stack_with_visits(3, 80).await;
    let env = stack.function_env("Model3Function");
    let f = gender_model::from_env(&stack.sdk, &env).unwrap().handler;
    let model: &dyn GenderModel = &RecentTopGenderModel { days: 7 };
    let stream_records =
        tally_aws::kinesis_event::stream_records(&kinesis_event("arn", &records)).unwrap();
    let engine = Engine::new(
        VisitConsumer::new(model),
        &f.store,
        &f.publisher,
        &f.dead_letters,
    );
    engine.run(&stream_records, Utc::now()).await;
    // Five days later, one more visit: every day now outside the window is removed from the item.
    let later = Utc::now() + Duration::days(5);
    let late_visit = StreamRecord {
        data: format!(
            r#"{{"cid":"C1","gndr":"male","ts":"{}"}}"#,
            later.to_rfc3339()
        )
        .into_bytes(),
        sequence_number: SequenceNumber::parse(&format!(
            "{}9",
            records.last().unwrap().sequence_number
        ))
        .unwrap(),
        arrival: later,
        ..stream_records[0].clone()
    };
    engine.run(&[late_visit], later).await;
    let item = f
        .store
        .read(&StateKey::new("MODEL3", "C1"))
        .await
        .unwrap()
        .unwrap();
    let item = ModelState::from_stored(&item);
    let first_day = UtcDays { days: 7 }.first_day(later);
    assert!(
        item.counts
            .keys()
            .all(|b| matches!(b, Bucket::Day(d) if *d >= first_day)),
        "{:?}",
        item.counts.keys()
    );
    assert!(item.counts[&Bucket::Day(later.date_naive())].male >= 1);
    let raw = stack
        .clients
        .dynamodb
        .get_item()
        .table_name(stack.name("GenderStateTable"))
        .key(
            "pk",
            aws_sdk_dynamodb::types::AttributeValue::S("MODEL3#C1".into()),
        )
        .send()
        .await
        .unwrap()
        .item
        .unwrap();
    let ttl: i64 = raw["expires_at"].as_n().unwrap().parse().unwrap();
    assert!(
        ttl > later.timestamp(),
        "TTL lies after the last day of the window"
    );
}
