//! Logs and metrics. Metrics use CloudWatch's Embedded Metric Format: one JSON log line, no API call.

use tally_engine::BatchReport;

pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("RUST_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_target(false)
        .without_time()
        .try_init();
}

/// One EMF line: named counts of one invocation, with the function as the dimension.
pub fn emf_line(function: &str, counts: &[(String, u64)]) -> serde_json::Value {
    let mut line = serde_json::json!({ "Function": function });
    for (name, n) in counts {
        line[name.as_str()] = serde_json::json!(n);
    }
    line["_aws"] = serde_json::json!({
        "Timestamp": chrono::Utc::now().timestamp_millis(),
        "CloudWatchMetrics": [{
            "Namespace": "tally",
            "Dimensions": [["Function"]],
            "Metrics": counts.iter().map(|(m, _)| serde_json::json!({"Name": m, "Unit": "Count"})).collect::<Vec<_>>(),
        }],
    });
    line
}

/// The EMF line for one stream invocation: records, rejections (total and per reason), writes,
/// conflicts, published records and retried batches.
pub fn metrics_line(function: &str, report: &BatchReport) -> serde_json::Value {
    let mut counts: Vec<(String, u64)> = [
        ("Records", report.records as u64),
        ("Rejected", report.rejected.values().sum()),
        ("Skipped", report.skipped as u64),
        ("Writes", report.writes as u64),
        ("Conflicts", report.conflicts as u64),
        ("Published", report.published as u64),
        ("PublishedBefore", report.published_before as u64),
        ("RetriedBatches", u64::from(report.retry_from.is_some())),
    ]
    .map(|(m, n)| (m.to_string(), n))
    .to_vec();
    counts.extend(
        report
            .rejected
            .iter()
            .map(|(code, n)| (format!("Rejected.{code}"), *n)),
    );
    counts.extend(
        report
            .counted
            .iter()
            .map(|(name, n)| (format!("Counted.{name}"), *n)),
    );
    emf_line(function, &counts)
}

pub fn emit_metrics(function: &str, report: &BatchReport) {
    println!("{}", metrics_line(function, report));
    for e in &report.errors {
        tracing::warn!(function, error = %e, "record will be retried");
    }
}
