//! The results writer: `GenderResultsStream` records into the results table, newest revision wins.
//! Publishing is at-least-once and may reorder across retries; the revision makes the upsert
//! idempotent and order-independent.

use std::collections::BTreeMap;

use futures::stream::{self, StreamExt};

use crate::dispatch::{dead_letter_all, Aggregation, DispatchReport, DEFAULT_CONCURRENCY};
use crate::ports::{DeadLetterSink, ResultsUpsert};
use crate::record::{Rejection, StreamRecord};
use crate::result::GenderResult;
use crate::sequence::SequenceNumber;

pub const SOURCE: &str = "results-writer";

/// Decodes one `GenderResultsStream` record.
pub fn decode_result(record: &StreamRecord) -> Result<GenderResult, Rejection> {
    let text = std::str::from_utf8(&record.data).map_err(|e| Rejection::NotUtf8 {
        at: e.valid_up_to(),
    })?;
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| Rejection::MalformedJson(e.to_string()))?;
    if !value.is_object() {
        return Err(Rejection::NotAnObject);
    }
    let result: GenderResult =
        serde_json::from_value(value).map_err(|e| Rejection::InvalidField {
            field: "result",
            reason: e.to_string(),
        })?;
    let expected = crate::result::result_id(&result.cid, &result.model);
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

/// Stores a batch of results: per key, only the newest revision of the batch is written; in
/// per-record mode (the benchmarks' baseline) every record is, in order.
pub async fn write_results<U: ResultsUpsert, D: DeadLetterSink>(
    table: &U,
    dead_letters: &D,
    records: &[StreamRecord],
    aggregation: Aggregation,
) -> DispatchReport {
    let mut report = DispatchReport {
        records: records.len(),
        ..Default::default()
    };
    // Newest revision per _id; remember the first record of each id for retries.
    let mut newest: BTreeMap<String, (GenderResult, SequenceNumber)> = BTreeMap::new();
    let mut each: Vec<(GenderResult, SequenceNumber)> = Vec::new();
    let mut rejected = Vec::new();
    for r in records {
        match decode_result(r) {
            Ok(result) if aggregation == Aggregation::PerRecord => {
                report.valid += 1;
                each.push((result, r.sequence_number.clone()));
            }
            Ok(result) => {
                report.valid += 1;
                match newest.get_mut(&result.id) {
                    Some((kept, first)) => {
                        if result.rev > kept.rev
                            || (result.rev == kept.rev && result.as_of > kept.as_of)
                        {
                            *kept = result;
                        }
                        if r.sequence_number < *first {
                            *first = r.sequence_number.clone();
                        }
                    }
                    None => {
                        newest.insert(result.id.clone(), (result, r.sequence_number.clone()));
                    }
                }
            }
            Err(why) => rejected.push((r, why)),
        }
    }
    dead_letter_all(dead_letters, SOURCE, rejected, &mut report).await;
    report.keys = newest.len()
        + each
            .iter()
            .map(|(r, _)| &r.id)
            .collect::<std::collections::BTreeSet<_>>()
            .len();
    each.extend(newest.into_values());
    let outcomes: Vec<_> = stream::iter(each)
        .map(|(result, first)| async move {
            let outcome = table.upsert_if_newer(&result).await;
            (result, first, outcome)
        })
        .buffered(aggregation.concurrency(DEFAULT_CONCURRENCY))
        .collect()
        .await;
    for (result, first, outcome) in outcomes {
        report.writes += 1;
        match outcome {
            Ok(true) => report.published += 1,
            Ok(false) => report.conflicts += 1,
            Err(e) => report.fail(&first, format!("result {} not stored: {e}", result.id)),
        }
    }
    report
}
