//! In-memory ports for unit tests of the domain. They mirror the conditions the DynamoDB adapter
//! evaluates, and can be told to fail, to test retries and crashes.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use crate::model::LatestVisit;
use crate::ports::*;
use crate::record::DeadLetter;
use crate::sequence::SequenceNumber;

#[derive(Default)]
pub struct MemoryStateStore {
    pub items: Mutex<BTreeMap<String, StoredState>>,
    /// Writes allowed before every further write fails (a crash or an outage); `usize::MAX`: never.
    pub writes_left: AtomicUsize,
    pub requests: AtomicUsize,
}

impl MemoryStateStore {
    pub fn new() -> Self {
        Self {
            writes_left: AtomicUsize::new(usize::MAX),
            ..Default::default()
        }
    }

    pub fn fail_after(&self, writes: usize) {
        self.writes_left.store(writes, Ordering::SeqCst);
    }

    fn gate(&self) -> Result<(), PortError> {
        self.requests.fetch_add(1, Ordering::SeqCst);
        let left = self.writes_left.load(Ordering::SeqCst);
        if left == 0 {
            return Err(PortError::Transient("injected failure".into()));
        }
        if left != usize::MAX {
            self.writes_left.store(left - 1, Ordering::SeqCst);
        }
        Ok(())
    }

    fn apply(stored: &mut StoredState, change: &StateChange, set_latest: bool) {
        stored.rev += 1;
        stored
            .watermarks
            .insert(change.shard_id.clone(), change.applies_through.clone());
        for (name, n) in &change.counters {
            *stored.counters.entry(name.clone()).or_default() += n;
        }
        if set_latest && change.latest.is_some() {
            stored.latest = change.latest.clone();
        }
    }
}

impl StateStore for MemoryStateStore {
    async fn apply_if_fresh(
        &self,
        key: &StateKey,
        first: &SequenceNumber,
        change: &StateChange,
    ) -> Result<Applied, PortError> {
        self.gate()?;
        let mut items = self.items.lock().unwrap();
        let current = items.get(key.partition_key()).cloned();
        let fresh = current
            .as_ref()
            .and_then(|s| s.watermarks.get(&change.shard_id))
            .is_none_or(|w| w < first);
        let newer = match (
            &change.latest,
            current.as_ref().and_then(|s| s.latest.as_ref()),
        ) {
            (Some(new), Some(old)) => new.order_key() > old.order_key(),
            _ => true,
        };
        if !(fresh && newer) {
            return Ok(Applied::Conflict(current));
        }
        let mut stored = current.unwrap_or_default();
        Self::apply(&mut stored, change, true);
        items.insert(key.partition_key().to_string(), stored.clone());
        Ok(Applied::Done(stored))
    }

    async fn apply_if_unchanged(
        &self,
        key: &StateKey,
        expected_rev: Option<u64>,
        change: &StateChange,
    ) -> Result<Applied, PortError> {
        self.gate()?;
        let mut items = self.items.lock().unwrap();
        let current = items.get(key.partition_key()).cloned();
        if current.as_ref().map(|s| s.rev) != expected_rev {
            return Ok(Applied::Conflict(current));
        }
        let mut stored = current.unwrap_or_default();
        Self::apply(&mut stored, change, true);
        items.insert(key.partition_key().to_string(), stored.clone());
        Ok(Applied::Done(stored))
    }

    async fn remove_counters(&self, key: &StateKey, names: &[String]) -> Result<(), PortError> {
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

#[derive(Default)]
pub struct MemoryPublisher {
    pub published: Mutex<Vec<OutRecord>>,
    /// Calls that fail before publishing works.
    pub failures_left: AtomicUsize,
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

impl DeadLetterSink for MemoryDeadLetters {
    async fn put(&self, letter: &DeadLetter) -> Result<(), PortError> {
        self.letters
            .lock()
            .unwrap()
            .insert(letter.object_key("dead-letter"), letter.clone());
        Ok(())
    }
}

/// The newest latest visit, for assertions.
pub fn latest_of(store: &MemoryStateStore, pk: &str) -> Option<LatestVisit> {
    store
        .items
        .lock()
        .unwrap()
        .get(pk)
        .and_then(|s| s.latest.clone())
}
