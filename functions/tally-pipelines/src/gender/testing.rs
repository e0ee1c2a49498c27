//! An in-memory results table for tests of the writer and the API (feature `testing`).

use std::collections::BTreeMap;
use std::sync::Mutex;

use tally_engine::PortError;

use super::result::{GenderResult, ResultLookup, ResultsUpsert};

/// Evaluates the same condition as the DynamoDB table: a result is stored only over an older one.
#[derive(Default)]
pub struct MemoryResultsTable {
    pub results: Mutex<BTreeMap<String, GenderResult>>,
}

impl ResultsUpsert for MemoryResultsTable {
    async fn upsert_if_newer(&self, result: &GenderResult) -> Result<bool, PortError> {
        let mut results = self.results.lock().unwrap();
        if results.get(&result.id).is_some_and(|r| r.rev >= result.rev) {
            return Ok(false);
        }
        results.insert(result.id.clone(), result.clone());
        Ok(true)
    }
}

impl ResultLookup for MemoryResultsTable {
    async fn get(&self, id: &str) -> Result<Option<GenderResult>, PortError> {
        Ok(self.results.lock().unwrap().get(id).cloned())
    }
}
