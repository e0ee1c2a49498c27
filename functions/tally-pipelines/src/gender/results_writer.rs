//! The results writer: `GenderResultsStream` records into the results table, newest revision wins.
//! Publishing is at-least-once and may reorder across retries; the revision makes the upsert
//! idempotent and order-independent. The table holds one item per cid with each model's newest
//! result, so a batch writes each cid once for all its models.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;

use chrono::{DateTime, Utc};
use futures::stream::{self, StreamExt};
use tally_engine::dead_letters::dead_letter_all;
use tally_engine::engine::DEFAULT_CONCURRENCY;
use tally_engine::ports::DeadLetterSink;
use tally_engine::{json_object, Aggregation, BatchHandler, BatchReport, Rejection};
use tally_engine::{SequenceNumber, StreamRecord};

use super::result::{result_id, GenderResult, ResultsUpsert};
use super::visit::Cid;

pub const SOURCE: &str = "results-writer";

/// A result carries its model's state: MODEL3's holds two counters per day of its window, so a
/// year-long window (`WindowDays` 366) makes results of about 30 KB. Anything larger is not a
/// result of ours.
pub const MAX_RESULT_BYTES: usize = 64 * 1024;

/// Decodes one `GenderResultsStream` record.
pub fn decode_result(record: &StreamRecord) -> Result<GenderResult, Rejection> {
    let object = json_object(&record.data, MAX_RESULT_BYTES)?;
    let result: GenderResult =
        serde_json::from_value(serde_json::Value::Object(object)).map_err(|e| {
            Rejection::InvalidField {
                field: "result",
                reason: e.to_string(),
            }
        })?;
    let expected = result_id(&result.cid, &result.model);
    if result.id != expected {
        return Err(Rejection::InvalidField {
            field: "_id",
            reason: format!(
                "{:?} does not match cid and model ({expected:?})",
                result.id
            ),
        });
    }
    Ok(result)
}

/// The results table with its dead-letter location.
pub struct ResultsWriter<U, D> {
    pub table: U,
    pub dead_letters: D,
    pub aggregation: Aggregation,
}

impl<U: ResultsUpsert, D: DeadLetterSink> BatchHandler for ResultsWriter<U, D> {
    fn name(&self) -> &str {
        SOURCE
    }

    fn handle(
        &self, records: &[StreamRecord], _now: DateTime<Utc>,
    ) -> impl Future<Output = BatchReport> + Send {
        write_results(&self.table, &self.dead_letters, records, self.aggregation)
    }
}

/// Stores a batch of results: per cid, the newest revision of each model's result in the batch,
/// in one write; in per-record mode (the benchmarks' baseline) every record on its own, in order.
pub async fn write_results<U: ResultsUpsert, D: DeadLetterSink>(
    table: &U, dead_letters: &D, records: &[StreamRecord], aggregation: Aggregation,
) -> BatchReport {
    let mut report = BatchReport::new(records.len());
    // Per cid, the newest revision per model, and the cid's first record (where a retry starts).
    let mut newest: BTreeMap<Cid, (BTreeMap<String, GenderResult>, SequenceNumber)> =
        BTreeMap::new();
    let mut each: Vec<(Cid, Vec<GenderResult>, SequenceNumber)> = Vec::new();
    let mut rejected = Vec::new();
    for r in records {
        match decode_result(r) {
            Ok(result) if aggregation == Aggregation::PerRecord => {
                report.valid += 1;
                each.push((result.cid.clone(), vec![result], r.sequence_number.clone()));
            }
            Ok(result) => {
                report.valid += 1;
                let (models, first) = newest
                    .entry(result.cid.clone())
                    .or_insert_with(|| (BTreeMap::new(), r.sequence_number.clone()));
                if r.sequence_number < *first {
                    *first = r.sequence_number.clone();
                }
                let newer = models.get(&result.model).is_none_or(|kept| {
                    result.rev > kept.rev || (result.rev == kept.rev && result.as_of > kept.as_of)
                });
                if newer {
                    models.insert(result.model.clone(), result);
                }
            }
            Err(why) => rejected.push((r, why)),
        }
    }
    dead_letter_all(dead_letters, SOURCE, rejected, &mut report).await;
    report.keys = newest.len()
        + each
            .iter()
            .map(|(c, _, _)| c)
            .collect::<BTreeSet<_>>()
            .len();
    each.extend(
        newest
            .into_iter()
            .map(|(cid, (models, first))| (cid, models.into_values().collect(), first)),
    );
    let outcomes: Vec<_> = stream::iter(each)
        .map(|(cid, results, first)| async move {
            let outcome = table.upsert_newer(&cid, &results).await;
            (cid, results.len(), first, outcome)
        })
        .buffered(aggregation.concurrency(DEFAULT_CONCURRENCY))
        .collect()
        .await;
    for (cid, offered, first, outcome) in outcomes {
        match outcome {
            Ok(stored) => {
                report.writes += 1;
                report.published += stored;
                report.conflicts += offered - stored;
            }
            Err(e) => report.fail(&first, format!("results of {cid} not stored: {e}")),
        }
    }
    report
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use tally_engine::testing::kinesis_sequence;
    use tally_engine::StoredState;

    use super::*;
    use crate::gender::model::TopGenderModel;
    use crate::gender::Cid;

    fn record(data: Vec<u8>) -> StreamRecord {
        StreamRecord {
            shard_id: "shardId-000000000000".into(),
            sequence_number: kinesis_sequence(1),
            partition_key: "C1".into(),
            data,
            arrival: Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 0).unwrap(),
        }
    }

    #[test]
    fn results_pass_the_checks_every_record_passes_and_oversized_ones_are_rejected() {
        let now = Utc.with_ymd_and_hms(2026, 11, 22, 12, 0, 0).unwrap();
        let stored = StoredState {
            rev: 3,
            counters: [("all_male".to_string(), 2)].into(),
            ..Default::default()
        };
        let result =
            GenderResult::from_state(&TopGenderModel, &Cid::parse("C1").unwrap(), &stored, now);
        let mut body = serde_json::to_value(&result).unwrap();
        let decoded = decode_result(&record(serde_json::to_vec(&body).unwrap())).unwrap();
        assert_eq!((decoded.rev, decoded.male), (3, Some(2)));
        body["padding"] = serde_json::Value::String("x".repeat(MAX_RESULT_BYTES));
        let err = decode_result(&record(serde_json::to_vec(&body).unwrap())).unwrap_err();
        assert_eq!(err.code(), "oversized", "{err}");
        assert!(err.to_string().contains("the limit is 65536"), "{err}");
        for (data, code) in [
            (b"\xff".to_vec(), "not_utf8"),
            (b"[1]".to_vec(), "not_an_object"),
            (b"{".to_vec(), "malformed_json"),
        ] {
            assert_eq!(decode_result(&record(data)).unwrap_err().code(), code);
        }
    }
}
