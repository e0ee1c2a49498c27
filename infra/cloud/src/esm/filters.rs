//! Lambda's event filtering (`FilterCriteria`): event patterns over a record's metadata and its
//! data decoded from JSON.

use serde_json::Value as Json;

use crate::kinesis::ShardRecord;

/// The patterns the local cloud can evaluate; anything else is refused when the cloud starts.
pub fn check_pattern(p: &Json) -> Result<(), String> {
    match p {
        Json::Object(m) => m.values().try_for_each(check_pattern),
        Json::Array(items) => items.iter().try_for_each(|i| match i {
            Json::Object(op) => {
                for k in op.keys() {
                    if !["prefix", "exists", "anything-but", "numeric"].contains(&k.as_str()) {
                        return Err(format!("filter operator {k:?}"));
                    }
                }
                Ok(())
            }
            _ => Ok(()),
        }),
        _ => Err("filter pattern values must be arrays".into()),
    }
}

/// Whether `value` (absent: `None`) matches one of `matchers` (an event pattern's array).
fn matches_values(matchers: &[Json], value: Option<&Json>) -> bool {
    matchers.iter().any(|m| match m {
        Json::Object(op) => op.iter().all(|(k, arg)| match k.as_str() {
            "exists" => arg.as_bool() == Some(value.is_some()),
            "prefix" => matches!((value, arg), (Some(Json::String(v)), Json::String(p)) if v.starts_with(p.as_str())),
            "anything-but" => {
                let list = arg.as_array().cloned().unwrap_or_else(|| vec![arg.clone()]);
                value.is_some_and(|v| !list.contains(v))
            }
            "numeric" => {
                let Some(v) = value.and_then(Json::as_f64) else { return false };
                let ops = arg.as_array().cloned().unwrap_or_default();
                ops.chunks(2).all(|c| {
                    let bound = c.get(1).and_then(Json::as_f64).unwrap_or(f64::NAN);
                    match c[0].as_str() {
                        Some("<") => v < bound,
                        Some("<=") => v <= bound,
                        Some("=") => v == bound,
                        Some(">") => v > bound,
                        Some(">=") => v >= bound,
                        _ => false,
                    }
                })
            }
            _ => false,
        }),
        literal => value == Some(literal) || matches!(value, Some(Json::Array(a)) if a.contains(literal)),
    })
}

/// Event-pattern matching of a record (`data` decoded from JSON, plus the record's metadata).
pub fn pattern_matches(pattern: &Json, record: &Json) -> bool {
    let Some(fields) = pattern.as_object() else {
        return false;
    };
    fields.iter().all(|(k, p)| match p {
        Json::Object(_) => record.get(k).is_some_and(|r| pattern_matches(p, r)),
        Json::Array(m) => matches_values(m, record.get(k)),
        _ => false,
    })
}

/// What a filter sees of a record: its metadata, and its data as JSON (null when it is not JSON).
pub fn filter_view(r: &ShardRecord) -> Json {
    let data = serde_json::from_slice::<Json>(&r.data).unwrap_or(Json::Null);
    serde_json::json!({
        "kinesisSchemaVersion": "1.0",
        "partitionKey": r.partition_key,
        "sequenceNumber": r.sequence_number,
        "approximateArrivalTimestamp": r.arrival,
        "data": data,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_patterns_match_like_lambda_filters() {
        let rec = serde_json::json!({"partitionKey": "1", "data": {"event": "Interaction", "user_id": 7, "tags": ["a", "b"]}});
        let p = |s: &str| serde_json::from_str::<Json>(s).unwrap();
        assert!(pattern_matches(
            &p(r#"{"data":{"event":["Interaction"]}}"#),
            &rec
        ));
        assert!(!pattern_matches(&p(r#"{"data":{"event":["View"]}}"#), &rec));
        assert!(pattern_matches(
            &p(r#"{"data":{"event":[{"prefix":"Inter"}]}}"#),
            &rec
        ));
        assert!(pattern_matches(
            &p(r#"{"data":{"user_id":[{"numeric":[">",5,"<=",7]}]}}"#),
            &rec
        ));
        assert!(pattern_matches(
            &p(r#"{"data":{"missing":[{"exists":false}]}}"#),
            &rec
        ));
        assert!(pattern_matches(
            &p(r#"{"data":{"event":[{"anything-but":["View"]}]}}"#),
            &rec
        ));
        assert!(pattern_matches(&p(r#"{"data":{"tags":["b"]}}"#), &rec));
        assert!(pattern_matches(&p(r#"{"partitionKey":["1"]}"#), &rec));
    }
}
