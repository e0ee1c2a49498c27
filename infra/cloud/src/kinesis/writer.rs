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
    put_records_refused(kinesis, stream, batch).await.0
}

/// As [`put_records`], also saying which entries (positions in `batch`) were still refused.
pub async fn put_records_refused(
    kinesis: &Client, stream: &str, batch: &[(String, &[u8])],
) -> (PutOutcome, Vec<usize>) {
    let mut pending: Vec<usize> = (0..batch.len()).collect();
    let mut outcome = PutOutcome::default();
    for attempt in 0..10u32 {
        let entries: Vec<PutRecordsRequestEntry> = pending
            .iter()
            .map(|&i| {
                let (key, data) = &batch[i];
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
                let refused: Vec<usize> = out
                    .records()
                    .iter()
                    .zip(&pending)
                    .filter(|(r, _)| r.error_code().is_some())
                    .map(|(_, &i)| i)
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
    (outcome, pending)
}

/// Puts any number of entries, one `PutRecords` call's worth at a time; `progress` gets the
/// running total after each call.
pub async fn put_all<D: AsRef<[u8]>>(
    kinesis: &Client, stream: &str, entries: &[(String, D)], mut progress: impl FnMut(&PutOutcome),
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

/// The value of `field` in the record (a dotted path for a nested one: `event.event_id`), or a
/// hash of the line when it has none (spreading such records over the shards).
pub fn partition_key(line: &str, field: Option<&str>) -> String {
    let from_field = field.and_then(|f| {
        let v: serde_json::Value = serde_json::from_str(line).ok()?;
        let value = f.split('.').try_fold(&v, |v, name| v.get(name))?;
        match value {
            serde_json::Value::String(s) if !s.is_empty() => Some(s.chars().take(256).collect()),
            serde_json::Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    });
    from_field.unwrap_or_else(|| {
        let mut h: u64 = 0xcbf29ce484222325;
        for b in line.bytes() {
            h = (h ^ u64::from(b)).wrapping_mul(0x100000001b3);
        }
        format!("{h:016x}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_come_from_the_field_or_a_hash_of_the_line() {
        assert_eq!(partition_key(r#"{"cid":"C1"}"#, Some("cid")), "C1");
        assert_eq!(partition_key(r#"{"user_id":7}"#, Some("user_id")), "7");
        let rsvp = r#"{"rsvp_id":1,"event":{"event_id":"273773984"}}"#;
        assert_eq!(partition_key(rsvp, Some("event.event_id")), "273773984");
        assert_eq!(partition_key(rsvp, Some("event.nope")).len(), 16);
        let hashed = partition_key("not json", Some("cid"));
        assert_eq!(hashed.len(), 16);
        assert_eq!(
            hashed,
            partition_key("not json", None),
            "the same line, the same shard"
        );
    }
}
