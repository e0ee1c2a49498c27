//! An in-memory results table for tests of the writer and the API (feature `testing`).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use tally_engine::PortError;

use super::result::{GenderResult, ResultLookup, ResultsUpsert};
use super::visit::Cid;

/// Evaluates the same condition as the DynamoDB table: one item per cid, a model's result stored
/// only over an older one.
#[derive(Default)]
pub struct MemoryResultsTable {
    /// cid -> model -> result.
    pub items: Mutex<BTreeMap<String, BTreeMap<String, GenderResult>>>,
    /// Write requests made.
    pub writes: AtomicUsize,
}

impl ResultsUpsert for MemoryResultsTable {
    async fn upsert_newer(&self, cid: &Cid, results: &[GenderResult]) -> Result<usize, PortError> {
        self.writes.fetch_add(1, Ordering::SeqCst);
        let mut items = self.items.lock().unwrap();
        let item = items.entry(cid.to_string()).or_default();
        let mut stored = 0;
        for r in results {
            if item.get(&r.model).is_none_or(|old| old.rev < r.rev) {
                item.insert(r.model.clone(), r.clone());
                stored += 1;
            }
        }
        Ok(stored)
    }
}

impl ResultLookup for MemoryResultsTable {
    async fn get(&self, cid: &Cid, model: &str) -> Result<Option<GenderResult>, PortError> {
        let items = self.items.lock().unwrap();
        Ok(items.get(cid.as_str()).and_then(|i| i.get(model)).cloned())
    }
}
