//! Kinesis event source mappings with AWS's semantics, read from the template: one poller per
//! shard per function (order kept within a shard), `ParallelizationFactor` (up to that many
//! batches of a shard at once, each with its own partition keys: order kept per partition key),
//! `BatchSize`, `MaximumBatchingWindowInSeconds`,
//! `StartingPosition`, `FilterCriteria`, `ReportBatchItemFailures` (resume from the lowest failed
//! sequence number), `BisectBatchOnFunctionError`, `MaximumRetryAttempts`,
//! `MaximumRecordAgeInSeconds` and an SQS on-failure destination.
//!
//! - `spec.rs`: the mapping as the template declares it
//! - `filters.rs`: `FilterCriteria`
//! - `event.rs`: the Kinesis event and the partial batch response
//! - `destination.rs`: what a failed batch leaves on the on-failure queue
//! - `queue.rs`: SQS mappings
//! - here: the Kinesis pollers and their retry policy

pub mod destination;
pub mod event;
pub mod filters;
pub mod queue;
pub mod spec;

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use event::first_failure;
pub use event::{kinesis_event, payload_bytes, PAYLOAD_LIMIT};
use filters::{filter_view, pattern_matches};
pub use queue::{QueueMapping, QueueMappingSpec};
pub use spec::MappingSpec;

use crate::kinesis::{for_each_shard, ShardReader, ShardRecord, WriteWatch};
use crate::lambda::{FunctionHost, InvokeError};
use destination::Failure;

/// What a mapping did, for `tally up`'s status and the tests.
#[derive(Debug, Clone, Default)]
pub struct MappingStats {
    pub invocations: u64,
    pub records: u64,
    pub filtered_out: u64,
    pub retries: u64,
    pub bisections: u64,
    pub partial_failures: u64,
    pub sent_to_destination: u64,
    /// Records done with: processed, filtered out, or sent to the destination.
    pub completed: u64,
}

pub struct Mapping {
    pub spec: MappingSpec,
    host: Arc<FunctionHost>,
    kinesis: aws_sdk_kinesis::Client,
    sqs: aws_sdk_sqs::Client,
    queue_endpoint: String,
    /// After a failed read.
    idle_poll: Duration,
    /// An idle shard waits for a write (or a second).
    writes: WriteWatch,
    pub stats: Mutex<MappingStats>,
    /// Per shard: whether it has read to the end of the shard and has nothing in hand.
    idle_shards: Mutex<HashMap<String, bool>>,
}

impl Mapping {
    pub fn new(
        spec: MappingSpec, host: Arc<FunctionHost>, kinesis: aws_sdk_kinesis::Client,
        sqs: aws_sdk_sqs::Client, queue_endpoint: String, idle_poll: Duration, writes: WriteWatch,
    ) -> Arc<Self> {
        Arc::new(Mapping {
            spec,
            host,
            kinesis,
            sqs,
            queue_endpoint,
            idle_poll,
            writes,
            stats: Mutex::new(MappingStats::default()),
            idle_shards: Mutex::default(),
        })
    }

    /// True when every shard is read to its end and nothing is being processed.
    pub fn caught_up(&self) -> bool {
        let shards = self.idle_shards.lock().unwrap();
        !shards.is_empty() && shards.values().all(|idle| *idle)
    }

    fn set_idle(&self, shard_id: &str, idle: bool) {
        self.idle_shards
            .lock()
            .unwrap()
            .insert(shard_id.to_string(), idle);
    }

    /// Polls every shard until `shutdown` turns true; children of a closed shard start after it.
    pub async fn run(self: Arc<Self>, shutdown: watch::Receiver<bool>) {
        let (kinesis, stream) = (self.kinesis.clone(), self.spec.stream_name.clone());
        let each = shutdown.clone();
        for_each_shard(
            kinesis,
            stream,
            shutdown,
            Duration::from_secs(2),
            move |shard_id| {
                let (me, shutdown) = (self.clone(), each.clone());
                async move { me.poll_shard(shard_id, shutdown).await }
            },
        )
        .await
    }

    /// Keeps the records the filters let through; the others are done with.
    fn filter_into(&self, records: Vec<ShardRecord>, pending: &mut VecDeque<ShardRecord>) {
        for record in records {
            let wanted = self.spec.filters.is_empty()
                || self
                    .spec
                    .filters
                    .iter()
                    .any(|f| pattern_matches(f, &filter_view(&record)));
            if wanted {
                pending.push_back(record);
            } else {
                let mut s = self.stats.lock().unwrap();
                s.filtered_out += 1;
                s.completed += 1;
            }
        }
    }

    async fn poll_shard(&self, shard_id: String, shutdown: watch::Receiver<bool>) {
        let (mut writes, mut stop) = (self.writes.clone(), shutdown.clone());
        let start = self.spec.starting_position.clone();
        let mut reader = ShardReader::new(
            self.kinesis.clone(),
            &self.spec.stream_name,
            &shard_id,
            start,
        );
        let mut pending: VecDeque<ShardRecord> = VecDeque::new();
        loop {
            if *shutdown.borrow() {
                return;
            }
            // Fill a batch: up to BatchSize records (per lane), or what came within the batching
            // window.
            let wanted = self.spec.batch_size * self.spec.parallelization;
            let mut window_start: Option<Instant> = None;
            while pending.len() < wanted && !reader.is_closed() {
                writes.before_read();
                let page = match reader.read(wanted - pending.len()).await {
                    Ok(page) => page,
                    Err(_) => {
                        // A lost iterator or a throttle: the reader resumes after its last record.
                        tokio::time::sleep(self.idle_poll).await;
                        continue;
                    }
                };
                self.filter_into(page.records, &mut pending);
                if !page.at_end {
                    if !pending.is_empty() {
                        window_start.get_or_insert_with(Instant::now);
                    }
                    continue;
                }
                self.set_idle(&shard_id, pending.is_empty());
                if pending.is_empty() {
                    window_start = None;
                    if *shutdown.borrow() {
                        return;
                    }
                    writes.idle(&mut stop).await;
                    continue;
                }
                let started = *window_start.get_or_insert_with(Instant::now);
                if started.elapsed() >= self.spec.batching_window {
                    break;
                }
                let left = self.spec.batching_window.saturating_sub(started.elapsed());
                tokio::time::sleep(self.idle_poll.min(left)).await;
            }
            if pending.is_empty() {
                if reader.is_closed() {
                    // Read to its end and all of it processed: idle for good (its children go on).
                    self.set_idle(&shard_id, true);
                    return;
                }
                continue;
            }
            self.set_idle(&shard_id, false);
            let arn = &self.spec.stream_arn;
            let batches = take_lanes(
                &mut pending,
                self.spec.batch_size,
                self.spec.parallelization,
                |r| payload_bytes(arn, r),
            );
            // The shard goes on once every lane's batch is done with.
            futures_util::future::join_all(batches.into_iter().map(|b| self.process(b, &shutdown)))
                .await;
        }
    }

    /// Delivers one batch until it succeeds or goes to the on-failure destination.
    async fn process(&self, batch: Vec<ShardRecord>, shutdown: &watch::Receiver<bool>) {
        let mut work: VecDeque<(Vec<ShardRecord>, u32)> = VecDeque::from([(batch, 0)]);
        while let Some((mut batch, attempts)) = work.pop_front() {
            if *shutdown.borrow() {
                return; // the local cloud is stopping: nothing checkpoints these records
            }
            if let Some(max_age) = self.spec.max_record_age {
                let now = chrono::Utc::now().timestamp_millis() as f64 / 1000.0;
                let cut = batch
                    .iter()
                    .position(|r| now - r.arrival <= max_age.as_secs_f64())
                    .unwrap_or(batch.len());
                if cut > 0 {
                    let old: Vec<ShardRecord> = batch.drain(..cut).collect();
                    self.to_destination(&old, "RecordAgeExceeded", attempts, None)
                        .await;
                }
                if batch.is_empty() {
                    continue;
                }
            }
            {
                let mut s = self.stats.lock().unwrap();
                s.invocations += 1;
                s.records += batch.len() as u64;
            }
            let event = kinesis_event(&self.spec.stream_arn, &batch);
            let outcome = self
                .host
                .invoke(serde_json::to_vec(&event).unwrap_or_default())
                .await;
            let failed_from = match &outcome {
                Ok(body) if self.spec.report_batch_item_failures => first_failure(body, &batch),
                Ok(_) => Ok(None),
                Err(_) => Err(()),
            };
            let exhausted = self.spec.max_retries.is_some_and(|m| attempts >= m);
            match failed_from {
                Ok(None) => self.stats.lock().unwrap().completed += batch.len() as u64,
                Ok(Some(i)) => {
                    {
                        let mut s = self.stats.lock().unwrap();
                        s.partial_failures += 1;
                        s.completed += i as u64;
                    }
                    let rest = batch.split_off(i);
                    // Progress (i > 0) checkpoints the records before the failure; retrying from
                    // the first record again is a retry attempt.
                    let attempts = if i > 0 { attempts } else { attempts + 1 };
                    if i == 0 && exhausted {
                        self.to_destination(&rest, "RetryAttemptsExhausted", attempts, None)
                            .await;
                    } else {
                        self.backoff(attempts).await;
                        work.push_front((rest, attempts));
                    }
                }
                Err(()) => {
                    let error = outcome.err();
                    if exhausted {
                        self.to_destination(
                            &batch,
                            "RetryAttemptsExhausted",
                            attempts + 1,
                            error.as_ref(),
                        )
                        .await;
                    } else if self.spec.bisect && batch.len() > 1 {
                        self.stats.lock().unwrap().bisections += 1;
                        let second = batch.split_off(batch.len() / 2);
                        work.push_front((second, attempts + 1));
                        work.push_front((batch, attempts + 1));
                    } else {
                        self.stats.lock().unwrap().retries += 1;
                        self.backoff(attempts).await;
                        work.push_front((batch, attempts + 1));
                    }
                }
            }
        }
    }

    async fn backoff(&self, attempts: u32) {
        let ms = 50u64.saturating_mul(1 << attempts.min(6)).min(2000);
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }

    async fn to_destination(
        &self, records: &[ShardRecord], condition: &str, invokes: u32, error: Option<&InvokeError>,
    ) {
        {
            let mut s = self.stats.lock().unwrap();
            s.sent_to_destination += records.len() as u64;
            s.completed += records.len() as u64;
        }
        let Some(queue) = &self.spec.on_failure_queue else {
            eprintln!(
                "{}: {} records discarded after {condition} (no on-failure destination)",
                self.spec.logical_id,
                records.len()
            );
            return;
        };
        let failure = Failure {
            function_arn: &self.host.spec().arn,
            stream_arn: &self.spec.stream_arn,
            condition,
            invokes,
            error,
        };
        let url = format!(
            "{}/{}/{queue}",
            self.queue_endpoint.trim_end_matches('/'),
            tally_stack::template::ACCOUNT
        );
        if let Err(e) = self
            .sqs
            .send_message()
            .queue_url(&url)
            .message_body(failure.message(records).to_string())
            .send()
            .await
        {
            eprintln!(
                "{}: could not send a failed batch to {queue}: {}",
                self.spec.logical_id,
                aws_sdk_sqs::error::DisplayErrorContext(e)
            );
        }
    }
}

/// The next batch of each lane, taken from the front of `pending`: a record's lane follows its
/// partition key, so one key's records stay in one lane, in order, and never run at once. What a
/// full lane cannot take stays pending, in order.
fn take_lanes(
    pending: &mut VecDeque<ShardRecord>, batch_size: usize, lanes: usize,
    payload_bytes: impl Fn(&ShardRecord) -> usize,
) -> Vec<Vec<ShardRecord>> {
    let lanes = lanes.max(1);
    let mut batches: Vec<Vec<ShardRecord>> = vec![Vec::new(); lanes];
    let mut bytes = vec![0usize; lanes];
    // A lane that refused a record takes no later one: that would overtake it.
    let mut full = vec![false; lanes];
    let mut rest = VecDeque::new();
    for record in pending.drain(..) {
        let lane = if lanes == 1 {
            0
        } else {
            lane_of(&record.partition_key, lanes)
        };
        let size = payload_bytes(&record);
        let batch = &mut batches[lane];
        full[lane] = full[lane]
            || batch.len() >= batch_size
            || (!batch.is_empty() && bytes[lane] + size > PAYLOAD_LIMIT);
        if full[lane] {
            rest.push_back(record);
        } else {
            bytes[lane] += size;
            batch.push(record);
        }
    }
    *pending = rest;
    batches.retain(|b| !b.is_empty());
    batches
}

/// A stable lane for a partition key (FNV-1a): the same key, the same lane, on every poll.
fn lane_of(partition_key: &str, lanes: usize) -> usize {
    let hash = partition_key
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
    (hash % lanes as u64) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(i: usize, key: &str) -> ShardRecord {
        ShardRecord {
            shard_id: "shardId-000000000000".into(),
            sequence_number: format!("{i:05}"),
            partition_key: key.into(),
            data: Vec::new(),
            arrival: 0.0,
        }
    }

    #[test]
    fn lanes_keep_each_partition_key_in_one_batch_in_order() {
        let keys = ["a", "b", "c", "d", "e", "f", "g"];
        let mut pending: VecDeque<ShardRecord> = (0..60)
            .map(|i| record(i, keys[i * 7 % keys.len()]))
            .collect();
        let mut seen: Vec<Vec<ShardRecord>> = Vec::new();
        while !pending.is_empty() {
            let before = pending.len();
            let batches = take_lanes(&mut pending, 4, 3, |_| 1);
            assert!(batches.len() <= 3 && batches.iter().all(|b| b.len() <= 4));
            let lanes: Vec<_> = batches
                .iter()
                .map(|b| lane_of(&b[0].partition_key, 3))
                .collect();
            assert!(
                batches
                    .iter()
                    .zip(&lanes)
                    .all(|(b, l)| b.iter().all(|r| lane_of(&r.partition_key, 3) == *l)),
                "a batch holds one lane's keys"
            );
            assert!(pending.len() < before, "progress");
            seen.extend(batches);
        }
        for key in keys {
            let order: Vec<&str> = seen
                .iter()
                .flatten()
                .filter(|r| r.partition_key == key)
                .map(|r| r.sequence_number.as_str())
                .collect();
            assert!(order.windows(2).all(|w| w[0] < w[1]), "{key}: {order:?}");
        }
        assert_eq!(seen.iter().map(Vec::len).sum::<usize>(), 60, "nothing lost");
    }

    #[test]
    fn one_lane_is_the_shard_in_order() {
        let mut pending: VecDeque<ShardRecord> = (0..10).map(|i| record(i, "k")).collect();
        let batches = take_lanes(&mut pending, 4, 1, |_| 1);
        assert_eq!(batches.len(), 1);
        assert_eq!(batches[0][0].sequence_number, "00000");
        assert_eq!(pending.len(), 6);
    }

    /// Kinesis records of up to 1 MB, base64 in the event: a batch of 10,000 would not fit in
    /// Lambda's 6 MB, so it ends before, and the rest waits in order.
    #[test]
    fn a_batch_stops_short_of_lambdas_payload_limit() {
        let arn = "arn:aws:kinesis:us-east-1:123456789012:stream/s";
        let mut pending: VecDeque<ShardRecord> = (0..10)
            .map(|i| ShardRecord {
                data: vec![b'x'; 1_000_000],
                ..record(i, "k")
            })
            .collect();
        let batches = take_lanes(&mut pending, 10_000, 1, |r| payload_bytes(arn, r));
        let event = serde_json::to_vec(&kinesis_event(arn, &batches[0])).unwrap();
        assert_eq!(batches[0].len(), 4, "4 x 1.33 MB of base64 fit, 5 do not");
        assert!(event.len() <= PAYLOAD_LIMIT, "{} bytes", event.len());
        // The estimate is an upper bound, and a close one.
        let one = ShardRecord {
            partition_key: "k\"é".into(),
            arrival: 1_796_137_956.473,
            ..record(7, "k")
        };
        let exact = serde_json::to_vec(&kinesis_event(arn, std::slice::from_ref(&one)))
            .unwrap()
            .len()
            - r#"{"Records":[]}"#.len();
        let estimate = payload_bytes(arn, &one);
        assert!(
            estimate >= exact && estimate <= exact + 40,
            "{estimate} for {exact}"
        );
        assert_eq!(pending.len(), 6);
        assert_eq!(pending[0].sequence_number, "00004");
        // A record bigger than the limit still goes alone, as Lambda would try it.
        let mut one: VecDeque<ShardRecord> = VecDeque::from([record(0, "k")]);
        assert_eq!(take_lanes(&mut one, 10, 1, |_| PAYLOAD_LIMIT + 1).len(), 1);
    }
}
