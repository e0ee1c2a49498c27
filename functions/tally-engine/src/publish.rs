//! Publishing at least once: what an output stream did not accept is sent again, and what still
//! fails is retried from the first record it depends on. Also the one place that knows how many
//! records fit one Kinesis `PutRecords` call.

use std::ops::Range;

use crate::ports::{OutRecord, RecordPublisher};
use crate::report::BatchReport;
use crate::sequence::SequenceNumber;

/// How often records that the stream did not accept are re-sent within one invocation.
const MAX_PUBLISH_ATTEMPTS: usize = 3;

/// Kinesis `PutRecords` takes at most 500 records a call...
pub const PUT_RECORDS_MAX_RECORDS: usize = 500;
/// ... and at most 5 MiB of data and partition keys.
pub const PUT_RECORDS_MAX_BYTES: usize = 5 * 1024 * 1024;

/// Splits records of the given sizes (data plus partition key) into consecutive runs that each
/// fit one `PutRecords` call.
pub fn put_records_chunks(sizes: impl IntoIterator<Item = usize>) -> Vec<Range<usize>> {
    let mut chunks = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    let mut end = 0;
    for size in sizes {
        let full = end - start == PUT_RECORDS_MAX_RECORDS || bytes + size > PUT_RECORDS_MAX_BYTES;
        if full && end > start {
            chunks.push(start..end);
            (start, bytes) = (end, 0);
        }
        bytes += size;
        end += 1;
    }
    if end > start {
        chunks.push(start..end);
    }
    chunks
}

/// A record waiting to be published, with the first sequence number it depends on (retried from
/// there when it cannot be published).
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub id: String,
    pub record: OutRecord,
    pub first: SequenceNumber,
}

/// Publishes, re-sending what the stream did not accept; what still fails is reported for retry.
/// Returns the ids that were published.
pub async fn publish_all<P: RecordPublisher>(
    publisher: &P, mut pending: Vec<Outgoing>, report: &mut BatchReport,
) -> Vec<String> {
    let mut published = Vec::new();
    for attempt in 1..=MAX_PUBLISH_ATTEMPTS {
        if pending.is_empty() {
            break;
        }
        let records: Vec<OutRecord> = pending.iter().map(|p| p.record.clone()).collect();
        match publisher.publish(&records).await {
            Ok(failed) => {
                let mut refused = vec![false; pending.len()];
                for i in failed {
                    refused[i] = true;
                }
                let (again, done): (Vec<_>, Vec<_>) =
                    pending.into_iter().zip(refused).partition(|(_, r)| *r);
                report.published += done.len();
                published.extend(done.into_iter().map(|(p, _)| p.id));
                pending = again.into_iter().map(|(p, _)| p).collect();
            }
            Err(e) if attempt == MAX_PUBLISH_ATTEMPTS || !e.is_retryable() => {
                for p in &pending {
                    report.fail(&p.first, format!("{} not published: {e}", p.id));
                }
                return published;
            }
            Err(_) => {}
        }
    }
    for p in &pending {
        report.fail(
            &p.first,
            format!(
                "{} not accepted by the stream after {MAX_PUBLISH_ATTEMPTS} attempts",
                p.id
            ),
        );
    }
    published
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_hold_at_most_500_records_and_5_mib() {
        assert_eq!(
            put_records_chunks(vec![10; 1200]),
            vec![0..500, 500..1000, 1000..1200]
        );
        let mib = 1024 * 1024;
        assert_eq!(
            put_records_chunks([2 * mib, 2 * mib, 2 * mib, 10]),
            vec![0..2, 2..4]
        );
        assert_eq!(
            put_records_chunks([6 * mib, 1]),
            vec![0..1, 1..2],
            "an oversized record goes alone"
        );
        assert!(put_records_chunks(Vec::<usize>::new()).is_empty());
    }
}
