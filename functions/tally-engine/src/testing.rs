//! For tests of every crate (feature `testing`): in-memory ports that evaluate the same
//! conditions as the DynamoDB adapter and can be told to fail, Kinesis-like sequence numbers, and
//! deliveries as Lambda makes them.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

use crate::ports::*;
use crate::record::DeadLetter;
pub use crate::sampling::{SeededRng, ZipfKeys};
use crate::sequence::SequenceNumber;

/// A 56-digit sequence number, like Kinesis's, for position `i` of a shard.
pub fn kinesis_sequence(i: u64) -> SequenceNumber {
    SequenceNumber::parse(&format!(
        "4959033827149025660855969253836157109592157598{i:010}"
    ))
    .expect("56 digits")
}

#[derive(Default)]
pub struct MemoryStateStore {
    pub items: Mutex<BTreeMap<String, StoredState>>,
    /// Writes allowed before every further write fails (a crash or an outage); `usize::MAX`: never.
    pub writes_left: AtomicUsize,
    /// Makes housekeeping (`remove_counters`) fail.
    pub housekeeping_fails: AtomicBool,
    pub requests: AtomicUsize,
    /// One write, by its position from now on, that fails while the others succeed (a throttled
    /// request); `usize::MAX`: none.
    pub failing_write: AtomicUsize,
}

impl MemoryStateStore {
    pub fn new() -> Self {
        Self {
            writes_left: AtomicUsize::new(usize::MAX),
            failing_write: AtomicUsize::new(usize::MAX),
            ..Default::default()
        }
    }

    pub fn fail_after(&self, writes: usize) {
        self.writes_left.store(writes, Ordering::SeqCst);
    }

    /// Fails only the `n`-th write from now (0: the next one).
    pub fn fail_only(&self, n: usize) {
        self.failing_write.store(n, Ordering::SeqCst);
    }

    pub fn item(&self, pk: &str) -> Option<StoredState> {
        self.items.lock().unwrap().get(pk).cloned()
    }

    fn gate(&self) -> Result<(), PortError> {
        self.requests.fetch_add(1, Ordering::SeqCst);
        let failing = self.failing_write.load(Ordering::SeqCst);
        if failing != usize::MAX {
            self.failing_write
                .store(failing.wrapping_sub(1), Ordering::SeqCst);
            if failing == 0 {
                return Err(PortError::Throttled("injected throttling".into()));
            }
        }
        let left = self.writes_left.load(Ordering::SeqCst);
        if left == 0 {
            return Err(PortError::Transient("injected failure".into()));
        }
        if left != usize::MAX {
            self.writes_left.store(left - 1, Ordering::SeqCst);
        }
        Ok(())
    }

    fn apply(stored: &mut StoredState, change: &StateChange) {
        stored.rev += 1;
        let domain = change.shard_id.clone();
        match change.lane {
            Lane::Live => {
                stored
                    .watermarks
                    .insert(domain.clone(), change.applies_through.clone());
                stored.starts.entry(domain).or_insert(change.from.clone());
            }
            Lane::Backfill => {
                stored
                    .backfilled
                    .insert(domain, change.applies_through.clone());
            }
        }
        for (name, n) in &change.delta.counters {
            *stored.counters.entry(name.clone()).or_default() += n;
        }
        if change.delta.latest.is_some() {
            stored.latest = change.delta.latest.clone();
        }
        for (name, value) in &change.delta.facts {
            stored
                .facts
                .entry(name.clone())
                .or_insert_with(|| value.clone());
        }
    }
}

/// Attributes one change may name, like DynamoDB's 4 KB update expressions (about 100 of
/// tally's attribute names): a change that does not fit fails here as it would there.
pub const MAX_NAMES_PER_CHANGE: usize = 100;

fn fits_one_write(change: &StateChange) -> Result<(), PortError> {
    let names = change.delta.counters.len() + change.delta.facts.len();
    if names > MAX_NAMES_PER_CHANGE {
        return Err(PortError::Fatal(format!(
            "update expression too large: {names} attributes in one write"
        )));
    }
    Ok(())
}

impl StateStore for MemoryStateStore {
    async fn read(&self, key: &StateKey) -> Result<Option<StoredState>, PortError> {
        self.gate()?;
        Ok(self.items.lock().unwrap().get(key.partition_key()).cloned())
    }

    async fn apply_if_fresh(
        &self, key: &StateKey, first: &SequenceNumber, change: &StateChange,
    ) -> Result<Applied, PortError> {
        self.gate()?;
        fits_one_write(change)?;
        let mut items = self.items.lock().unwrap();
        let current = items.get(key.partition_key()).cloned();
        let fresh = current
            .as_ref()
            .and_then(|s| s.watermarks.get(&change.shard_id))
            .is_none_or(|w| w < first);
        let newer = match (
            &change.delta.latest,
            current.as_ref().and_then(|s| s.latest.as_ref()),
        ) {
            (Some(new), Some(old)) => new.order_key > old.order_key,
            _ => true,
        };
        if !(fresh && newer) {
            return Ok(Applied::Conflict(current));
        }
        let mut stored = current.unwrap_or_default();
        Self::apply(&mut stored, change);
        items.insert(key.partition_key().to_string(), stored.clone());
        Ok(Applied::Done(stored))
    }

    async fn apply_if_unchanged(
        &self, key: &StateKey, expected_rev: Option<u64>, change: &StateChange,
    ) -> Result<Applied, PortError> {
        self.gate()?;
        fits_one_write(change)?;
        let mut items = self.items.lock().unwrap();
        let current = items.get(key.partition_key()).cloned();
        if current.as_ref().map(|s| s.rev) != expected_rev {
            return Ok(Applied::Conflict(current));
        }
        let mut stored = current.unwrap_or_default();
        Self::apply(&mut stored, change);
        items.insert(key.partition_key().to_string(), stored.clone());
        Ok(Applied::Done(stored))
    }

    async fn remove_counters(&self, key: &StateKey, names: &[String]) -> Result<(), PortError> {
        if self.housekeeping_fails.load(Ordering::SeqCst) {
            return Err(PortError::Transient("injected housekeeping failure".into()));
        }
        let mut items = self.items.lock().unwrap();
        if let Some(s) = items.get_mut(key.partition_key()) {
            for n in names {
                s.counters.remove(n);
            }
        }
        Ok(())
    }

    async fn set_flag(&self, key: &StateKey, flag: &str) -> Result<(), PortError> {
        self.gate()?;
        if let Some(s) = self.items.lock().unwrap().get_mut(key.partition_key()) {
            s.flags.insert(flag.to_string());
        }
        Ok(())
    }
}

impl StateReader for MemoryStateStore {
    async fn read_many(&self, keys: &[StateKey]) -> Result<Vec<Option<StoredState>>, PortError> {
        let items = self.items.lock().unwrap();
        Ok(keys
            .iter()
            .map(|k| items.get(k.partition_key()).cloned())
            .collect())
    }
}

/// A state store, an output stream and a dead-letter location, all in memory and empty: what a
/// test of a consumer on the engine starts from.
pub fn memory_ports() -> (MemoryStateStore, MemoryPublisher, MemoryDeadLetters) {
    let dead_letters = MemoryDeadLetters::default();
    (
        MemoryStateStore::new(),
        MemoryPublisher::default(),
        dead_letters,
    )
}

#[derive(Default)]
pub struct MemoryPublisher {
    pub published: Mutex<Vec<OutRecord>>,
    /// Calls that fail before publishing works.
    pub failures_left: AtomicUsize,
}

impl MemoryPublisher {
    /// Every record published so far, as JSON.
    pub fn json(&self) -> Vec<serde_json::Value> {
        self.published
            .lock()
            .unwrap()
            .iter()
            .map(|r| serde_json::from_slice(&r.data).expect("published records are JSON"))
            .collect()
    }
}

impl RecordPublisher for MemoryPublisher {
    async fn publish(&self, results: &[OutRecord]) -> Result<Vec<usize>, PortError> {
        if self.failures_left.load(Ordering::SeqCst) > 0 {
            self.failures_left.fetch_sub(1, Ordering::SeqCst);
            return Err(PortError::Transient("injected publish failure".into()));
        }
        self.published.lock().unwrap().extend_from_slice(results);
        Ok(Vec::new())
    }
}

#[derive(Default)]
pub struct MemoryDeadLetters {
    pub letters: Mutex<BTreeMap<String, DeadLetter>>,
}

impl MemoryDeadLetters {
    /// The reason of every dead letter so far.
    pub fn reasons(&self) -> Vec<String> {
        self.letters
            .lock()
            .unwrap()
            .values()
            .map(|l| l.reason.clone())
            .collect()
    }
}

/// Each of `expected` is part of some dead letter's reason (they are one-line and stable).
#[track_caller]
pub fn assert_reasons_include(reasons: &[String], expected: &[&str]) {
    for want in expected {
        assert!(
            reasons.iter().any(|r| r.contains(want)),
            "no dead letter says {want:?}: {reasons:?}"
        );
    }
}

impl DeadLetterSink for MemoryDeadLetters {
    async fn put(&self, letter: &DeadLetter) -> Result<(), PortError> {
        self.letters
            .lock()
            .unwrap()
            .insert(letter.object_key("dead-letter"), letter.clone());
        Ok(())
    }
}

/// Objects in memory.
#[derive(Default)]
pub struct MemoryObjects {
    pub objects: Mutex<BTreeMap<String, Vec<u8>>>,
}

impl MemoryObjects {
    pub fn keys(&self) -> Vec<String> {
        self.objects.lock().unwrap().keys().cloned().collect()
    }

    pub fn data(&self, key: &str) -> Option<Vec<u8>> {
        self.objects.lock().unwrap().get(key).cloned()
    }

    pub fn insert(&self, key: &str, data: Vec<u8>) {
        self.objects.lock().unwrap().insert(key.to_string(), data);
    }
}

impl ObjectStore for MemoryObjects {
    async fn list(&self, prefix: &str) -> Result<Vec<ListedObject>, PortError> {
        Ok(self
            .objects
            .lock()
            .unwrap()
            .range(prefix.to_string()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, data)| ListedObject {
                key: k.clone(),
                size: data.len() as u64,
            })
            .collect())
    }

    async fn delete(&self, key: &str) -> Result<(), PortError> {
        self.objects.lock().unwrap().remove(key);
        Ok(())
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, PortError> {
        Ok(self.data(key))
    }

    async fn put(&self, key: &str, data: Vec<u8>) -> Result<(), PortError> {
        self.insert(key, data);
        Ok(())
    }
}

/// Delivers `records` the way Lambda does: per shard (in the order shards first appear), in
/// batches of `batch`, every batch `repeats` times (redelivery), resuming at the first record a
/// report asks to retry from.
pub async fn deliver_like_lambda(
    handler: &impl crate::BatchHandler, records: &[crate::StreamRecord], batch: usize,
    repeats: usize, now: chrono::DateTime<chrono::Utc>,
) {
    let mut shards: Vec<&str> = Vec::new();
    for r in records {
        if !shards.contains(&r.shard_id.as_str()) {
            shards.push(&r.shard_id);
        }
    }
    for shard in shards {
        let of_shard: Vec<crate::StreamRecord> = records
            .iter()
            .filter(|r| r.shard_id == shard)
            .cloned()
            .collect();
        let (mut pos, mut attempts) = (0, 0);
        while pos < of_shard.len() {
            let end = (pos + batch).min(of_shard.len());
            let mut report = None;
            for _ in 0..repeats.max(1) {
                report = Some(handler.handle(&of_shard[pos..end], now).await);
            }
            let report = report.expect("delivered at least once");
            match report.retry_from {
                None => pos = end,
                Some(s) => {
                    pos = of_shard
                        .iter()
                        .position(|r| r.sequence_number == s)
                        .expect("the retry names a record of the batch");
                    attempts += 1;
                    assert!(attempts < 1000, "no progress: {:?}", report.errors);
                }
            }
        }
    }
}

/// Delivers `records` the way Lambda does with a `ParallelizationFactor` of `lanes`: each shard's
/// records split into lanes by partition key (one key's records in one lane, in order), each lane
/// in batches of `batch`, every batch `repeats` times, resuming a lane at the first record a
/// report asks to retry from. Lanes run at once on AWS, so their batches come in an order drawn
/// from `seed`: a later record of a shard often lands before an earlier one of another key.
pub async fn deliver_in_lanes(
    handler: &impl crate::BatchHandler, records: &[crate::StreamRecord], lanes: usize,
    batch: usize, repeats: usize, seed: u64, now: chrono::DateTime<chrono::Utc>,
) {
    let lane_of = |key: &str| {
        let h = key.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
        (h % lanes.max(1) as u64) as usize
    };
    let mut queues: BTreeMap<(String, usize), Vec<crate::StreamRecord>> = BTreeMap::new();
    for r in records {
        queues
            .entry((r.shard_id.clone(), lane_of(&r.partition_key)))
            .or_default()
            .push(r.clone());
    }
    let mut queues: Vec<(Vec<crate::StreamRecord>, usize)> =
        queues.into_values().map(|q| (q, 0)).collect();
    let mut rng = SeededRng::new(seed);
    let mut attempts = 0;
    loop {
        let open: Vec<usize> = (0..queues.len())
            .filter(|i| queues[*i].1 < queues[*i].0.len())
            .collect();
        if open.is_empty() {
            return;
        }
        let (queue, pos) = &mut queues[open[rng.below(open.len() as u64) as usize]];
        let end = (*pos + batch).min(queue.len());
        let mut report = None;
        for _ in 0..repeats.max(1) {
            report = Some(handler.handle(&queue[*pos..end], now).await);
        }
        let report = report.expect("delivered at least once");
        match report.retry_from {
            None => *pos = end,
            Some(s) => {
                *pos = queue
                    .iter()
                    .position(|r| r.sequence_number == s)
                    .expect("the retry names a record of the batch");
                attempts += 1;
                assert!(attempts < 1000, "no progress: {:?}", report.errors);
            }
        }
    }
}
