//! Posting events to `/collect` as a mobile SDK does: a device's events in one gzip batch, the
//! same batch (same `event_id`s) sent again after a 429, a 503 or a lost connection, waiting as
//! `Retry-After` says (else backing off), at a steady rate when asked.

use std::collections::BTreeMap;
use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use serde_json::Value;

use tally_cloud::http::http_send;

#[derive(Debug, Clone)]
pub struct Sender {
    /// `http://127.0.0.1:5000/collect`.
    pub url: String,
    pub key: String,
    pub gzip: bool,
    /// How often one batch is tried before the sender gives up on it (and says so).
    pub max_attempts: u32,
}

/// What sending did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SendReport {
    pub batches: u64,
    pub events: u64,
    pub accepted: u64,
    /// Rejected events by reason code.
    pub rejected: BTreeMap<String, u64>,
    /// Requests sent again (429, 503, connection errors).
    pub retries: u64,
    /// Batches given up on after every attempt: the one-line reasons.
    pub failed: Vec<String>,
    /// Whether the API was never reached (nothing listening).
    pub unreachable: bool,
    /// Latency of each answered request, ms.
    pub latencies_ms: Vec<f64>,
}

impl SendReport {
    /// The rejections as "3 bad_json, 1 too_large", or "none".
    pub fn rejections(&self) -> String {
        let all: Vec<String> = self
            .rejected
            .iter()
            .map(|(code, n)| format!("{n} {code}"))
            .collect();
        if all.is_empty() {
            "none".to_string()
        } else {
            all.join(", ")
        }
    }

    pub fn add(&mut self, other: SendReport) {
        self.batches += other.batches;
        self.events += other.events;
        self.accepted += other.accepted;
        for (k, v) in other.rejected {
            *self.rejected.entry(k).or_default() += v;
        }
        self.retries += other.retries;
        self.failed.extend(other.failed);
        self.unreachable |= other.unreachable;
        self.latencies_ms.extend(other.latencies_ms);
    }
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let _ = gz.write_all(data);
    gz.finish().unwrap_or_default()
}

impl Sender {
    /// Sends one batch until it is answered for good; a 401/403/413/400 is final.
    pub async fn send(&self, events: &[Value]) -> SendReport {
        let mut report = SendReport {
            batches: 1,
            events: events.len() as u64,
            ..Default::default()
        };
        let json = serde_json::to_vec(events).unwrap_or_default();
        let (body, encoding) = if self.gzip {
            (gzip(&json), Some("gzip"))
        } else {
            (json, None)
        };
        let mut headers = vec![
            ("x-api-key", self.key.as_str()),
            ("content-type", "application/json"),
        ];
        if let Some(e) = encoding {
            headers.push(("content-encoding", e));
        }
        let mut pause = Duration::from_millis(100);
        let mut answered = false;
        for attempt in 1..=self.max_attempts {
            let started = Instant::now();
            let outcome = http_send(hyper::Method::POST, &self.url, &headers, body.clone()).await;
            answered |= outcome.is_ok();
            let wait = match outcome {
                Ok(r) if r.status == 200 => {
                    report
                        .latencies_ms
                        .push(started.elapsed().as_secs_f64() * 1000.0);
                    let v: Value = serde_json::from_str(&r.body).unwrap_or_default();
                    report.accepted += v["accepted"].as_u64().unwrap_or(0);
                    for rej in v["rejected"].as_array().into_iter().flatten() {
                        let code = rej["code"].as_str().unwrap_or("unknown").to_string();
                        *report.rejected.entry(code).or_default() += 1;
                    }
                    return report;
                }
                Ok(r) if r.status == 429 || r.status >= 500 => {
                    report
                        .latencies_ms
                        .push(started.elapsed().as_secs_f64() * 1000.0);
                    r.headers
                        .get("retry-after")
                        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
                        .map(Duration::from_secs)
                        .unwrap_or(pause)
                }
                Ok(r) => {
                    let why: Value = serde_json::from_str(&r.body).unwrap_or_default();
                    report.failed.push(format!(
                        "{}: {}",
                        r.status,
                        why["error"].as_str().unwrap_or(&r.body)
                    ));
                    return report;
                }
                Err(_) => pause,
            };
            if attempt < self.max_attempts {
                report.retries += 1;
                tokio::time::sleep(wait).await;
                pause = (pause * 2).min(Duration::from_secs(5));
            }
        }
        report.unreachable = !answered;
        report.failed.push(format!(
            "gave up after {} attempts: {}",
            self.max_attempts, self.url
        ));
        report
    }
}

/// Lines of NDJSON as SDK batches: consecutive events of one device, at most `max` a batch. A line
/// that is not JSON is sent as a string (and rejected by its index), as a broken SDK would.
pub fn sdk_batches(text: &str, max: usize) -> Result<Vec<Vec<Value>>> {
    if max == 0 || max > 1000 {
        bail!("--batch must be from 1 to 1000 events");
    }
    let mut out: Vec<Vec<Value>> = Vec::new();
    let mut device: Option<String> = None;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let v: Value = serde_json::from_str(line).unwrap_or_else(|_| Value::String(line.into()));
        let d = v["device"]["id"].as_str().map(String::from);
        match out.last_mut() {
            Some(last) if d == device && last.len() < max => last.push(v),
            _ => out.push(vec![v]),
        }
        device = d;
    }
    Ok(out)
}
