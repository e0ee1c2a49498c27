//! Putting records with `PutRecords`: in calls that fit its limits, re-sending what Kinesis refused.

use std::time::Duration;

use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::PutRecordsRequestEntry;
use aws_sdk_kinesis::Client;
use tally_engine::publish::put_records_chunks;

/// What a put did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PutOutcome {
    pub accepted: usize,
    /// Entries Kinesis refused at least once (throttling) and that were sent again.
    pub retried: usize,
    /// Entries still refused after the last attempt.
    pub refused: usize,
    /// PutRecords calls made.
    pub calls: u64,
}

impl PutOutcome {
    fn add(&mut self, other: PutOutcome) {
        self.accepted += other.accepted;
        self.retried += other.retried;
        self.refused += other.refused;
        self.calls += other.calls;
    }
}

/// Puts one call's worth of `(partition key, data)` entries (see [`put_all`] for any number),
/// re-sending what Kinesis refused with a growing pause, up to 10 attempts.
pub async fn put_records(kinesis: &Client, stream: &str, batch: &[(String, &[u8])]) -> PutOutcome {
    let mut pending: Vec<&(String, &[u8])> = batch.iter().collect();
    let mut outcome = PutOutcome::default();
    for attempt in 0..10u32 {
        let entries: Vec<PutRecordsRequestEntry> = pending
            .iter()
            .map(|(key, data)| {
                PutRecordsRequestEntry::builder()
                    .data(Blob::new(*data))
                    .partition_key(key)
                    .build()
                    .expect("data and key set")
            })
            .collect();
        outcome.calls += 1;
        match kinesis
            .put_records()
            .stream_name(stream)
            .set_records(Some(entries))
            .send()
            .await
        {
            Ok(out) => {
                let refused: Vec<_> = out
                    .records()
                    .iter()
                    .zip(&pending)
                    .filter(|(r, _)| r.error_code().is_some())
                    .map(|(_, e)| *e)
                    .collect();
                outcome.accepted += pending.len() - refused.len();
                outcome.retried += refused.len();
                pending = refused;
            }
            Err(_) => outcome.retried += pending.len(),
        }
        if pending.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50 << attempt.min(5))).await;
    }
    outcome.refused = pending.len();
    outcome
}

/// Puts any number of entries, one `PutRecords` call's worth at a time; `progress` gets the
/// running total after each call.
pub async fn put_all<D: AsRef<[u8]>>(
    kinesis: &Client,
    stream: &str,
    entries: &[(String, D)],
    mut progress: impl FnMut(&PutOutcome),
) -> PutOutcome {
    let mut total = PutOutcome::default();
    let sizes = entries.iter().map(|(k, d)| k.len() + d.as_ref().len());
    for chunk in put_records_chunks(sizes) {
        let batch: Vec<(String, &[u8])> = entries[chunk]
            .iter()
            .map(|(k, d)| (k.clone(), d.as_ref()))
            .collect();
        total.add(put_records(kinesis, stream, &batch).await);
        progress(&total);
    }
    total
}
