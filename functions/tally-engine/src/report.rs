//! What one invocation did: the source of its metrics, its log lines and its partial batch
//! response.

use std::collections::BTreeMap;

use crate::sequence::SequenceNumber;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchReport {
    pub records: usize,
    /// Valid records used (visits, interactions, results).
    pub valid: usize,
    /// Valid records the consumer does not look at (events other than "Interaction").
    pub ignored: usize,
    pub rejected: BTreeMap<&'static str, u64>,
    /// Valid records not written because their key is finished (a rule key whose alert is out).
    pub skipped: usize,
    /// Distinct keys written (cids, rule keys).
    pub keys: usize,
    /// Write requests the store answered: conditional writes (also those whose condition failed,
    /// which DynamoDB bills too), housekeeping and flags. A request that failed is not counted.
    pub writes: usize,
    /// Writes whose condition failed (redelivered or out-of-order records).
    pub conflicts: usize,
    pub published: usize,
    /// Valid records a completed batch applied and published before (a redelivery, a replay):
    /// their outputs are not published again.
    pub published_before: usize,
    /// What the batch newly counted, by name (app events per type): business metrics.
    pub counted: BTreeMap<String, u64>,
    /// The lowest sequence number that must be retried: Lambda resumes the shard from there.
    pub retry_from: Option<SequenceNumber>,
    pub errors: Vec<String>,
}

impl BatchReport {
    pub fn new(records: usize) -> Self {
        BatchReport {
            records,
            ..Default::default()
        }
    }

    /// Adds what `other`, another handler's report on the same records (`who`, [`crate::Fanout`]),
    /// did: its work and its retry point; the records and their decoding are counted once.
    pub fn add_work_of(&mut self, other: BatchReport, who: &str) {
        self.skipped += other.skipped;
        self.keys += other.keys;
        self.writes += other.writes;
        self.conflicts += other.conflicts;
        self.published += other.published;
        self.published_before += other.published_before;
        for (name, n) in other.counted {
            *self.counted.entry(name).or_default() += n;
        }
        if let Some(at) = &other.retry_from {
            self.fail(at, format!("{who}: {}", other.errors.join("; ")));
        }
    }

    /// The records from `at` on must be retried, because of `error`.
    pub fn fail(&mut self, at: &SequenceNumber, error: String) {
        if self.retry_from.as_ref().is_none_or(|s| at < s) {
            self.retry_from = Some(at.clone());
        }
        self.errors.push(error);
    }
}
