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

/// The EMF line for one invocation: records, rejections (total and per reason), writes, conflicts,
/// published results and retried records.
pub fn metrics_line(function: &str, report: &BatchReport) -> serde_json::Value {
    let rejected: u64 = report.rejected.values().sum();
    let mut metrics: Vec<String> = [
        "Records",
        "Rejected",
        "Skipped",
        "Writes",
        "Conflicts",
        "Published",
        "RetriedBatches",
    ]
    .map(String::from)
    .to_vec();
    let mut line = serde_json::json!({
        "Function": function,
        "Records": report.records,
        "Rejected": rejected,
        "Skipped": report.skipped,
        "Writes": report.writes,
        "Conflicts": report.conflicts,
        "Published": report.published,
        "RetriedBatches": u64::from(report.retry_from.is_some()),
    });
    for (code, n) in &report.rejected {
        let name = format!("Rejected.{code}");
        line[name.as_str()] = serde_json::json!(n);
        metrics.push(name);
    }
    line["_aws"] = serde_json::json!({
        "Timestamp": chrono::Utc::now().timestamp_millis(),
        "CloudWatchMetrics": [{
            "Namespace": "tally",
            "Dimensions": [["Function"]],
            "Metrics": metrics.iter().map(|m| serde_json::json!({"Name": m, "Unit": "Count"})).collect::<Vec<_>>(),
        }],
    });
    line
}

pub fn emit_metrics(function: &str, report: &BatchReport) {
    println!("{}", metrics_line(function, report));
    for e in &report.errors {
        tracing::warn!(function, error = %e, "record will be retried");
    }
}
