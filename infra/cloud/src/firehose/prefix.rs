//! Firehose's S3 prefixes: `!{timestamp:..}`, `!{firehose:..}` and `!{partitionKeyFromLambda:..}`.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

/// The `!{...}` expressions of a prefix.
pub fn expressions(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = s;
    while let Some(i) = rest.find("!{") {
        let Some(end) = rest[i..].find('}') else {
            break;
        };
        out.push(rest[i + 2..i + end].to_string());
        rest = &rest[i + end + 1..];
    }
    out
}

/// Java `DateTimeFormatter` patterns as Firehose uses them (`yyyy-MM-dd`, `HH`, ...).
fn java_format(t: DateTime<Utc>, pattern: &str) -> String {
    let f = pattern
        .replace("yyyy", "%Y")
        .replace("MM", "%m")
        .replace("dd", "%d")
        .replace("HH", "%H")
        .replace("mm", "%M")
        .replace("ss", "%S");
    t.format(&f).to_string()
}

/// Evaluates a prefix for a record arriving at `t` with `keys` from a transform Lambda.
pub fn evaluate_prefix(
    prefix: &str, t: DateTime<Utc>, keys: &BTreeMap<String, String>, error_type: Option<&str>,
) -> Result<String, String> {
    if prefix.is_empty() || !prefix.contains("!{") {
        // Without expressions Firehose appends the UTC hour path.
        return Ok(format!("{prefix}{}", t.format("%Y/%m/%d/%H/")));
    }
    let mut out = String::new();
    let mut rest = prefix;
    while let Some(i) = rest.find("!{") {
        out.push_str(&rest[..i]);
        let end = rest[i..].find('}').ok_or("unclosed !{ in prefix")? + i;
        let expr = &rest[i + 2..end];
        let value = if let Some(p) = expr.strip_prefix("timestamp:") {
            java_format(t, p)
        } else if expr == "firehose:random-string" {
            uuid::Uuid::new_v4().simple().to_string()[..11].to_string()
        } else if expr == "firehose:error-output-type" {
            error_type
                .ok_or("firehose:error-output-type outside the error prefix")?
                .to_string()
        } else if let Some(k) = expr.strip_prefix("partitionKeyFromLambda:") {
            keys.get(k)
                .cloned()
                .ok_or_else(|| format!("the transform Lambda gave no partition key {k}"))?
        } else {
            return Err(format!("unsupported expression !{{{expr}}}"));
        };
        out.push_str(&value);
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn prefixes_evaluate_like_firehose() {
        let t = Utc.with_ymd_and_hms(2026, 11, 22, 7, 5, 9).unwrap();
        let keys = BTreeMap::from([("event".to_string(), "Interaction".to_string())]);
        assert_eq!(
            evaluate_prefix("raw/visits/dt=!{timestamp:yyyy-MM-dd}/", t, &keys, None).unwrap(),
            "raw/visits/dt=2026-11-22/"
        );
        assert_eq!(
            evaluate_prefix(
                "raw/!{partitionKeyFromLambda:event}/h=!{timestamp:HH}/",
                t,
                &keys,
                None
            )
            .unwrap(),
            "raw/Interaction/h=07/"
        );
        assert_eq!(
            evaluate_prefix(
                "errors/!{firehose:error-output-type}/",
                t,
                &keys,
                Some("processing-failed")
            )
            .unwrap(),
            "errors/processing-failed/"
        );
        assert_eq!(
            evaluate_prefix("plain/", t, &keys, None).unwrap(),
            "plain/2026/11/22/07/"
        );
        assert!(evaluate_prefix("x/!{partitionKeyFromLambda:missing}/", t, &keys, None).is_err());
    }
}
