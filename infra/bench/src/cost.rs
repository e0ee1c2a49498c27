//! Cost per million events on AWS from the measured figures and AWS's list prices.

use serde::Serialize;

/// AWS list prices, us-east-1, as known on the date below. This machine cannot reach aws.amazon.com,
/// so they were not re-read for this run: check the pages before quoting a bill.
#[derive(Debug, Clone, Serialize)]
pub struct Prices {
    pub as_of: &'static str,
    pub region: &'static str,
    pub lambda_arm64_per_gb_s: f64,
    pub lambda_per_million_requests: f64,
    pub dynamodb_per_million_write_units: f64,
    pub dynamodb_per_million_read_units: f64,
    pub kinesis_per_shard_hour: f64,
    pub kinesis_per_million_put_payload_units: f64,
    pub firehose_per_gb_ingested: f64,
    /// API Gateway HTTP APIs, the first 300 million requests a month.
    pub api_gateway_http_per_million_requests: f64,
    pub sources: Vec<&'static str>,
}

pub fn prices() -> Prices {
    Prices {
        as_of: "2026-11-22 (list prices in effect since the DynamoDB on-demand reduction of 2024-11-01)",
        region: "us-east-1",
        lambda_arm64_per_gb_s: 0.000_013_333_4,
        lambda_per_million_requests: 0.20,
        dynamodb_per_million_write_units: 0.625,
        dynamodb_per_million_read_units: 0.125,
        kinesis_per_shard_hour: 0.015,
        kinesis_per_million_put_payload_units: 0.014,
        firehose_per_gb_ingested: 0.029,
        api_gateway_http_per_million_requests: 1.00,
        sources: vec![
            "https://aws.amazon.com/lambda/pricing/",
            "https://aws.amazon.com/dynamodb/pricing/on-demand/",
            "https://aws.amazon.com/kinesis/data-streams/pricing/",
            "https://aws.amazon.com/firehose/pricing/",
            "https://aws.amazon.com/api-gateway/pricing/",
        ],
    }
}

/// What one pipeline uses per event, measured.
#[derive(Debug, Clone)]
pub struct Usage {
    pub write_requests_per_event: f64,
    pub read_requests_per_event: f64,
    /// Records put on Kinesis per event: the event itself and what the functions published.
    pub kinesis_records_per_event: f64,
    pub lambda_invocations_per_event: f64,
    pub lambda_ms_per_event: f64,
    pub memory_mb: f64,
    /// Streams that carry the pipeline's records, for the shard hours at `rate`.
    pub streams: usize,
    /// HTTP API requests per event (`/collect`: one per SDK batch).
    pub api_requests_per_event: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Cost {
    pub pipeline: String,
    pub mode: String,
    pub dynamodb_usd: f64,
    pub lambda_usd: f64,
    pub kinesis_usd: f64,
    pub firehose_usd: f64,
    pub api_usd: f64,
    pub total_usd_per_million_events: f64,
    pub assumptions: String,
}

/// Dollars per million events at a steady `rate` events/s.
pub fn per_million(pipeline: &str, mode: &str, u: &Usage, rate: f64, p: &Prices) -> Cost {
    let m = 1e6;
    // Items stay under 1 KB: one write unit per write, one read unit per strongly consistent read.
    let dynamodb = u.write_requests_per_event * p.dynamodb_per_million_write_units
        + u.read_requests_per_event * p.dynamodb_per_million_read_units;
    let gb_s = u.lambda_ms_per_event / 1e3 * u.memory_mb / 1024.0 * m;
    let lambda = gb_s * p.lambda_arm64_per_gb_s
        + u.lambda_invocations_per_event * p.lambda_per_million_requests;
    // A shard takes 1,000 records/s; a million events at `rate` last 1e6 / rate seconds.
    let hours = m / rate / 3600.0;
    let shards = (rate * u.kinesis_records_per_event / u.streams.max(1) as f64 / 1000.0)
        .ceil()
        .max(1.0)
        * u.streams as f64;
    let kinesis = shards * hours * p.kinesis_per_shard_hour
        + u.kinesis_records_per_event * p.kinesis_per_million_put_payload_units;
    // Firehose bills each record rounded up to 5 KB.
    let firehose = m * 5.0 / (1024.0 * 1024.0) * p.firehose_per_gb_ingested;
    let api = u.api_requests_per_event * p.api_gateway_http_per_million_requests;
    Cost {
        pipeline: pipeline.into(),
        mode: mode.into(),
        dynamodb_usd: dynamodb,
        lambda_usd: lambda,
        kinesis_usd: kinesis,
        firehose_usd: firehose,
        api_usd: api,
        total_usd_per_million_events: dynamodb + lambda + kinesis + firehose + api,
        assumptions: format!(
            "{rate:.0} events/s steady; {:.2} writes and {:.2} reads per event; {:.2} Kinesis records per event over {} streams ({shards:.0} shards); Lambda {:.3} ms per event at {} MB (arm64), measured on the local cloud",
            u.write_requests_per_event, u.read_requests_per_event, u.kinesis_records_per_event, u.streams, u.lambda_ms_per_event, u.memory_mb
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_million_single_write_events_cost_the_listed_write_price_plus_the_rest() {
        let p = prices();
        let u = Usage {
            write_requests_per_event: 1.0,
            read_requests_per_event: 0.0,
            kinesis_records_per_event: 1.0,
            lambda_invocations_per_event: 0.0,
            lambda_ms_per_event: 0.0,
            memory_mb: 256.0,
            streams: 1,
            api_requests_per_event: 0.0,
        };
        let c = per_million("x", "y", &u, 1000.0, &p);
        assert!((c.dynamodb_usd - 0.625).abs() < 1e-9);
        // One shard for 1e6 / 1000 s = 0.2778 h, plus a million PUT payload units.
        assert!((c.kinesis_usd - (0.015 * 1e6 / 1000.0 / 3600.0 + 0.014)).abs() < 1e-9);
        assert!((c.firehose_usd - 0.029 * 5.0 * 1e6 / 1048576.0).abs() < 1e-9);
    }
}
