//! Figures of the mobile events platform: `/collect`'s events a second and latency at a fixed
//! concurrency, DynamoDB requests per event of the live metrics against the per-record baseline,
//! the metrics' freshness (a `/collect` acknowledgement to the metrics API counting the event),
//! and the cost per million events beside what AWS's Clickstream Analytics publishes for its own
//! ingestion.

use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use futures_util::StreamExt;
use serde::Serialize;
use serde_json::{json, Value};

use super::pipeline::{self, Percentiles, RequestCount};
use super::workload::Event;
use tally_cloud::cloud::LocalCloud;
use tally_cloud::http::http_get;
use tally_gen::mobile::{batches, Fleet, SendReport, Sender};

#[derive(Debug, Clone, Serialize)]
pub struct CollectLoad {
    pub concurrency: usize,
    pub events_per_request: usize,
    pub requests: usize,
    pub events: u64,
    pub seconds: f64,
    pub events_per_s: f64,
    pub requests_per_s: f64,
    pub latency: Option<Percentiles>,
    /// Requests answered other than 200 after every retry.
    pub failed: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct EventFigures {
    /// The same events through the per-key mode and the per-record baseline.
    pub requests: Vec<RequestCount>,
    pub collect: CollectLoad,
    /// A `/collect` 200 to the metrics API counting the event, one probe at a time during the load.
    pub freshness: Option<Percentiles>,
    pub freshness_unanswered: usize,
    /// Events per request of the generated fleet's SDK batches (for the per-request costs).
    pub fleet_events_per_request: f64,
}

/// A generated fleet's events as `/collect` would put them (stamped with an app and the time),
/// keyed by device as the template keys `EventsStream`.
pub fn stamped_events(devices: u64, seed: u64) -> Vec<Event> {
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    batches(&Fleet::new(devices, 30, seed))
        .into_iter()
        .flat_map(|b| b.events)
        .filter(|e| e["device"]["id"].is_string())
        .map(|mut e| {
            e["app_id"] = json!("bench-app");
            e["app_name"] = json!("Bench");
            e["server_time"] = json!(now);
            Event {
                partition_key: e["device"]["id"].as_str().unwrap_or_default().to_string(),
                data: e.to_string(),
            }
        })
        .collect()
}

/// DynamoDB requests per event of the live metrics on a running cloud, as figure 1 counts them.
pub async fn requests(cloud: &LocalCloud, mode: &str, n: usize) -> Result<RequestCount> {
    let mut events = stamped_events(n as u64 / 30 + 1, 11);
    events.truncate(n);
    pipeline::count_requests(
        cloud,
        "events",
        "fleet",
        mode,
        &cloud.template.physical_name("EventsStream"),
        &[],
        &events,
    )
    .await
}

/// Registers an app in the cloud's `AppsTable`; returns a sender with its key.
async fn sender(cloud: &LocalCloud, name: &str) -> Result<Sender> {
    use tally_events::collect::{key_hash, App};
    let key = tally_aws::new_app_key()?;
    tally_aws::DynamoAppKeys::on(tally_aws::DynamoTable::new(
        cloud.clients.dynamodb.clone(),
        cloud.template.physical_name("AppsTable"),
    ))
    .register(
        &key_hash(&key),
        &App {
            app_id: name.into(),
            name: name.into(),
            origins: Vec::new(),
        },
    )
    .await
    .map_err(|e| anyhow::anyhow!("registering {name}: {e}"))?;
    Ok(Sender {
        url: format!("{}/collect", cloud.api_url),
        key,
        gzip: true,
        max_attempts: 5,
    })
}

/// One probe after another while the load runs: post one event of the probe app, then poll the
/// metrics API until its count of the probe app reaches the probes sent.
async fn probe_freshness(cloud: &LocalCloud, probes: Sender, until: Instant) -> (Vec<f64>, usize) {
    let (mut samples, mut unanswered) = (Vec::new(), 0);
    let url = format!(
        "{}/api/v1/events/metrics?minutes=60&app_id=bench-probe",
        cloud.api_url
    );
    let mut n = 0u64;
    while Instant::now() < until {
        n += 1;
        let event = json!({"event_id": uuid::Uuid::new_v4().to_string(), "event_type": "app_open",
            "client_time": chrono::Utc::now().timestamp_millis(), "device": {"id": format!("probe-{n}")}});
        let r = probes.send(&[event]).await;
        if r.accepted != 1 {
            unanswered += 1;
            continue;
        }
        let acked = Instant::now();
        let deadline = acked + Duration::from_secs(30);
        let mut seen = false;
        while Instant::now() < deadline {
            if let Ok((200, body)) = http_get(&url).await {
                let counted = serde_json::from_str::<Value>(&body)
                    .ok()
                    .and_then(|v| v["events"].as_u64());
                if counted >= Some(n) {
                    samples.push(acked.elapsed().as_secs_f64() * 1000.0);
                    seen = true;
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if !seen {
            unanswered += 1;
            // Later probes would only wait on this one: stop probing.
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    (samples, unanswered)
}

/// `/collect` loaded by `concurrency` SDKs sending `per_request` events a request for `seconds`,
/// with freshness probes meanwhile.
pub async fn load(
    cloud: &LocalCloud, concurrency: usize, per_request: usize, seconds: f64,
) -> Result<(CollectLoad, Option<Percentiles>, usize, f64)> {
    let load = sender(cloud, "bench-load").await?;
    let probes = sender(cloud, "bench-probe").await?;
    let fleet = batches(&Fleet::new(2_000, 60, 12));
    let fleet_per_request =
        fleet.iter().map(|b| b.events.len()).sum::<usize>() as f64 / fleet.len().max(1) as f64;
    let events: Vec<Value> = fleet.into_iter().flat_map(|b| b.events).collect();
    let requests: Vec<Vec<Value>> = events.chunks(per_request).map(<[Value]>::to_vec).collect();
    if requests.is_empty() {
        bail!("the generated fleet sent nothing");
    }
    let started = Instant::now();
    let until = started + Duration::from_secs_f64(seconds);
    let probing = probe_freshness(cloud, probes, until);
    let mut report = SendReport::default();
    let sending = async {
        let mut stream = futures_util::stream::iter(requests.iter().cycle())
            .take_while(|_| futures_util::future::ready(Instant::now() < until))
            .map(|r| load.send(r))
            .buffer_unordered(concurrency);
        while let Some(r) = stream.next().await {
            report.add(r);
        }
    };
    let ((samples, unanswered), ()) = tokio::join!(probing, sending);
    let secs = started.elapsed().as_secs_f64();
    let figures = CollectLoad {
        concurrency,
        events_per_request: per_request,
        requests: report.batches as usize,
        events: report.accepted,
        seconds: secs,
        events_per_s: report.accepted as f64 / secs,
        requests_per_s: report.batches as f64 / secs,
        latency: Percentiles::of(report.latencies_ms.clone()),
        failed: report.failed.len(),
    };
    Ok((
        figures,
        Percentiles::of(samples),
        unanswered,
        fleet_per_request,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamped_events_are_valid_keyed_by_device_and_of_one_app() {
        let events = stamped_events(5, 3);
        assert!(events.len() > 20);
        let decoder = tally_events::EventDecoder::default();
        let valid = events
            .iter()
            .filter(|e| {
                decoder
                    .decode_bytes(e.data.as_bytes(), chrono::DateTime::<chrono::Utc>::MAX_UTC)
                    .is_ok()
            })
            .count();
        // The fleet's own invalid share stays (0.5%): the metrics dead-letter them as in life.
        assert!(
            valid * 100 >= events.len() * 95,
            "{valid} of {}",
            events.len()
        );
        for e in &events {
            let v: Value = serde_json::from_str(&e.data).unwrap();
            assert_eq!(v["device"]["id"], e.partition_key.as_str());
            assert_eq!(v["app_id"], "bench-app");
        }
    }
}
