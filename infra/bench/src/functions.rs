//! Figures of the function binaries themselves: zipped size, init time (process start to the first
//! `/next`, SDK clients built), warm time of a 100-record batch; and the HTTP API under load.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};
use tally_cloud::clients::failed;

use serde::Serialize;

use anyhow::{anyhow, Result};

use super::pipeline::Percentiles;
use super::workload::{interactions, today, visits, Skew};
use tally_cloud::cloud::LocalCloud;
use tally_cloud::esm::kinesis_event;
use tally_cloud::http::http_get;
use tally_cloud::kinesis::{read_stream, ShardRecord};

#[derive(Debug, Clone, Serialize)]
pub struct FunctionFigure {
    pub function: String,
    pub binary_bytes: u64,
    pub zip_bytes: u64,
    pub cold_starts: usize,
    pub init_ms_p50: f64,
    pub init_ms_max: f64,
    /// The batch the warm time is for ("100 records", or one API request).
    pub warm_event: String,
    pub warm: Option<Percentiles>,
}

/// The Lambda artefact: the binary as `bootstrap` in a zip, deflated as `cargo lambda build
/// --output-format zip` does. Python's zipfile makes it (Python is on every machine of this kind).
pub fn zip_size(binary: &Path, scratch: &Path) -> Result<u64> {
    std::fs::create_dir_all(scratch)?;
    let zip = scratch.join(format!(
        "{}.zip",
        binary.file_name().unwrap_or_default().to_string_lossy()
    ));
    let status = std::process::Command::new("python3")
        .args([
            "-c",
            "import sys, zipfile\n\
             with zipfile.ZipFile(sys.argv[2], 'w', zipfile.ZIP_DEFLATED, compresslevel=9) as z:\n\
             \x20   z.write(sys.argv[1], 'bootstrap')",
        ])
        .arg(binary)
        .arg(&zip)
        .status()
        .map_err(|e| anyhow!("python3 for the zip size: {e}"))?;
    if !status.success() {
        return Err(anyhow!("zipping {} failed", binary.display()));
    }
    Ok(std::fs::metadata(&zip)?.len())
}

fn sequence(n: u64) -> String {
    format!("4959033827149025660855969253836157109592157598{n:010}")
}

fn shard_records(
    events: impl IntoIterator<Item = (String, String)>, first: u64,
) -> Vec<ShardRecord> {
    let arrival = chrono::Utc::now().timestamp_millis() as f64 / 1e3;
    events
        .into_iter()
        .enumerate()
        .map(|(i, (partition_key, data))| ShardRecord {
            shard_id: "shardId-000000000000".into(),
            sequence_number: sequence(first + i as u64),
            partition_key,
            data: data.into_bytes(),
            arrival,
        })
        .collect()
}

/// The `i`-th warm event of a function: 100 new records of its stream (a request for an API, the
/// events/ file's notifications for the lake writer).
async fn event_for(
    cloud: &LocalCloud, root: &Path, function: &str, i: u64, results: &[ShardRecord],
) -> Result<(String, Vec<u8>)> {
    let template = &cloud.template;
    let arn = |stream: &str| template.arn(stream);
    let hundred = |events: Vec<(String, String)>, stream: &str| -> Result<Vec<u8>> {
        let records = shard_records(events, 1_000 + i * 100);
        Ok(kinesis_event(&arn(stream)?, &records)
            .to_string()
            .into_bytes())
    };
    let event_file = |name: &str| {
        std::fs::read_to_string(root.join("events").join(name))
            .map_err(|e| anyhow!("events/{name}: {e}"))
    };
    Ok(match function {
        "GenderApiFunction" => (
            "one GET /api/v1/getGender".into(),
            event_file("GenderApiFunction.json")?
                .replace("C124", "S1")
                .into_bytes(),
        ),
        "LiveApiFunction" => (
            "one GET /api/v1/rsvp/stats".into(),
            event_file("LiveApiFunction.json")?.into_bytes(),
        ),
        // Notifications of objects this cloud does not hold: the queue path, no conversion.
        "LakeWriterFunction" => (
            "2 S3 notifications (absent objects)".into(),
            event_file("LakeWriterFunction.json")?.into_bytes(),
        ),
        "CollectFunction" => {
            // The sample's key, registered once (a second registration is refused: fine).
            let _ = tally_aws::DynamoAppKeys::on(tally_aws::DynamoTable::new(
                cloud.clients.dynamodb.clone(),
                template.physical_name("AppsTable"),
            ))
            .register(
                &tally_events::collect::key_hash("tk_sample_key_registered_by_the_test"),
                &tally_events::collect::App {
                    app_id: "bench-sample".into(),
                    name: "Bench sample".into(),
                    origins: Vec::new(),
                },
            )
            .await;
            (
                "one POST /collect of 3 events".into(),
                event_file("CollectFunction.json")?.into_bytes(),
            )
        }
        "EventsRouterFunction" => (
            "a Firehose transformation of 3 records".into(),
            event_file("EventsRouterFunction.json")?.into_bytes(),
        ),
        "EventsMetricsFunction" => {
            let mut events = super::events::stamped_events(10, 70 + i);
            events.truncate(100);
            let events = events
                .into_iter()
                .map(|e| (e.partition_key, e.data))
                .collect();
            ("100 app events".into(), hundred(events, "EventsStream")?)
        }
        "RsvpStatsFunction" => {
            let events = super::rsvp::rsvp_events(100, 60 + i, 1667.0)
                .into_iter()
                .map(|e| (e.partition_key, e.data))
                .collect();
            ("100 RSVPs".into(), hundred(events, "RsvpStream")?)
        }
        "ResultsWriterFunction" | "DashboardFeedFunction" => {
            let start = (i as usize * 100) % results.len().max(1);
            let slice: Vec<(String, String)> = results
                .iter()
                .cycle()
                .skip(start)
                .take(100)
                .map(|r| {
                    (
                        r.partition_key.clone(),
                        String::from_utf8_lossy(&r.data).into_owned(),
                    )
                })
                .collect();
            ("100 results".into(), hundred(slice, "GenderResultsStream")?)
        }
        f if f.starts_with("Model") || f == "GenderModelsFunction" => {
            let v = visits(&format!("W{i}x"), 100, Skew::Zipf, 40 + i, today(), 1667.0);
            let events = v.into_iter().map(|e| (e.partition_key, e.data)).collect();
            ("100 visits".into(), hundred(events, "VisitsStream")?)
        }
        _ => {
            let v = interactions(
                900_000_000 + i * 10_000,
                100,
                Skew::Zipf,
                50 + i,
                today(),
                1667.0,
            );
            let events = v
                .iter()
                .map(|x| x.event())
                .map(|e| (e.partition_key, e.data))
                .collect();
            (
                "100 interactions".into(),
                hundred(events, "InteractionsStream")?,
            )
        }
    })
}

/// Cold starts (`cold` per function, each a new process) and `warm` timed invocations.
pub async fn function_figures(
    cloud: &LocalCloud, root: &Path, scratch: &Path, cold: usize, warm: usize,
) -> Result<Vec<FunctionFigure>> {
    let results_stream = cloud.template.physical_name("GenderResultsStream");
    let results = read_stream(&cloud.clients.kinesis, &results_stream).await?;
    let mut out = Vec::new();
    // Each cold start once the pipelines are idle, so that its init time is its own: the previous
    // invocation's results (a model's to the results writer and the dashboard feed, `/collect`'s
    // to the metrics) would otherwise run beside it on these 2 cores, as they never do on AWS.
    // (A cloud that does not settle in 10 s is measured as it is.)
    let settle = || async {
        let _ = cloud.wait_idle(Duration::from_secs(10)).await;
    };
    for (id, host) in &cloud.functions {
        let binary = &host.spec().binary;
        let binary_bytes = std::fs::metadata(binary)?.len();
        let zip_bytes = zip_size(binary, scratch)?;
        let mut inits = Vec::new();
        let mut label = String::new();
        let mut n = 0;
        for _ in 0..cold {
            settle().await;
            host.recycle().await;
            let (l, event) = event_for(cloud, root, id, n, &results).await?;
            n += 1;
            label = l;
            host.invoke(event)
                .await
                .map_err(|e| anyhow!("{id}: cold invocation failed: {e}"))?;
            inits.push(host.stats().init_ms_last);
        }
        let mut times = Vec::new();
        for _ in 0..warm {
            let (_, event) = event_for(cloud, root, id, n, &results).await?;
            n += 1;
            let t = Instant::now();
            host.invoke(event)
                .await
                .map_err(|e| anyhow!("{id}: warm invocation failed: {e}"))?;
            times.push(t.elapsed().as_secs_f64() * 1e3);
        }
        let init = Percentiles::of(inits).unwrap_or_default();
        out.push(FunctionFigure {
            function: id.clone(),
            binary_bytes,
            zip_bytes,
            cold_starts: cold,
            init_ms_p50: init.p50_ms,
            init_ms_max: init.max_ms,
            warm_event: label,
            warm: Percentiles::of(times),
        });
    }
    Ok(out)
}

#[derive(Debug, Clone, Serialize)]
pub struct WrkRun {
    pub connections: usize,
    pub seconds: u64,
    pub requests_per_s: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub non_2xx: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ApiFigures {
    /// wrk at fixed concurrency (closed loop), over cids the skewed run stored.
    pub wrk: Vec<WrkRun>,
    pub wrk_missing: Option<String>,
    /// Our own open-loop client at a fixed rate; latency from each request's scheduled start.
    pub paced_rate: f64,
    /// Latency of every answer: 200s, and 404s (the API's documented answer for an unknown cid).
    pub paced: Option<Percentiles>,
    /// Answers by HTTP status.
    pub paced_answers: BTreeMap<u16, usize>,
    /// Real failures apart, by kind (`5xx`, `timeout`, `connection`, other 4xx as `4xx`).
    pub paced_failures: BTreeMap<String, usize>,
    /// The (cid, model) pairs asked for: stored by the skewed run.
    pub stored_keys: usize,
}

fn millis(s: &str) -> Option<f64> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| c.is_alphabetic())?);
    let v: f64 = num.parse().ok()?;
    Some(match unit {
        "us" => v / 1e3,
        "ms" => v,
        "s" => v * 1e3,
        "m" => v * 60e3,
        _ => return None,
    })
}

/// Parses wrk's `--latency` report.
pub fn parse_wrk(text: &str) -> Option<(f64, f64, f64, u64)> {
    let mut p50 = None;
    let mut p99 = None;
    let mut rps = None;
    let mut non_2xx = 0;
    for line in text.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("50%") {
            p50 = millis(rest);
        } else if let Some(rest) = line.strip_prefix("99%") {
            p99 = millis(rest);
        } else if let Some(rest) = line.strip_prefix("Requests/sec:") {
            rps = rest.trim().parse().ok();
        } else if let Some(rest) = line.strip_prefix("Non-2xx or 3xx responses:") {
            non_2xx = rest.trim().parse().unwrap_or(0);
        }
    }
    Some((rps?, p50?, p99?, non_2xx))
}

/// Up to `limit` (cid, model) pairs the results table holds: what the API is asked for.
async fn stored_keys(cloud: &LocalCloud, limit: usize) -> Result<Vec<(String, String)>> {
    let table = cloud.template.physical_name("GenderResultsTable");
    let mut keys = Vec::new();
    let mut start = None;
    while keys.len() < limit {
        let page = cloud
            .clients
            .dynamodb
            .scan()
            .table_name(&table)
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(failed(format!("scanning {table}")))?;
        // One item per cid, a `rev_<MODEL>` per model it holds a result of.
        for item in page.items() {
            let Some(Ok(cid)) = item.get("cid").map(|v| v.as_s()) else {
                continue;
            };
            for name in item.keys() {
                if let Some(model) = name.strip_prefix("rev_") {
                    keys.push((cid.clone(), model.to_string()));
                }
            }
        }
        start = page.last_evaluated_key().cloned();
        if start.is_none() {
            break;
        }
    }
    keys.truncate(limit);
    if keys.is_empty() {
        anyhow::bail!("{table} is empty: the API figures need the skewed run's results");
    }
    Ok(keys)
}

/// How a paced request ended.
enum Paced {
    Answer(u16, f64),
    Failure(&'static str),
}

pub async fn api_figures(
    cloud: &LocalCloud, scratch: &Path, seconds: u64, paced_rate: f64,
) -> Result<ApiFigures> {
    let keys = stored_keys(cloud, 2_000).await?;
    let hottest: Vec<String> = keys
        .iter()
        .take(100)
        .map(|(cid, model)| format!("\"/api/v1/getGender/{cid}?model={model}\""))
        .collect();
    let script = scratch.join("getGender.lua");
    std::fs::write(
        &script,
        // Stored (cid, model) pairs of the skewed run, at random.
        format!(
            "math.randomseed(7)\n\
             local paths = {{{}}}\n\
             request = function()\n\
             \x20 return wrk.format(\"GET\", paths[math.random(1, #paths)])\n\
             end\n",
            hottest.join(", ")
        ),
    )?;
    let mut wrk = Vec::new();
    let mut wrk_missing = None;
    for connections in [1usize, 4, 16] {
        let out = tokio::process::Command::new("wrk")
            .args([
                "-t1",
                &format!("-c{connections}"),
                &format!("-d{seconds}s"),
                "--latency",
                "-s",
            ])
            .arg(&script)
            .arg(&cloud.api_url)
            .output()
            .await;
        match out {
            Ok(o) if o.status.success() => {
                let text = String::from_utf8_lossy(&o.stdout);
                let (rps, p50, p99, non_2xx) = parse_wrk(&text)
                    .ok_or_else(|| anyhow!("could not read wrk's report:\n{text}"))?;
                wrk.push(WrkRun {
                    connections,
                    seconds,
                    requests_per_s: rps,
                    p50_ms: p50,
                    p99_ms: p99,
                    non_2xx,
                });
            }
            Ok(o) => {
                wrk_missing = Some(format!(
                    "wrk failed: {}",
                    String::from_utf8_lossy(&o.stderr).trim()
                ));
                break;
            }
            Err(e) => {
                wrk_missing = Some(format!(
                    "wrk is not installed ({e}); `make bench` installs it from Debian's packages"
                ));
                break;
            }
        }
    }

    // Open loop: request k starts at k / rate whatever the earlier ones do (no coordinated
    // omission), over the stored pairs in turn.
    let total = (paced_rate * seconds as f64) as usize;
    let begin = Instant::now();
    let mut tasks = Vec::with_capacity(total);
    for k in 0..total {
        let due = begin + Duration::from_secs_f64(k as f64 / paced_rate);
        tokio::time::sleep_until(due.into()).await;
        let (cid, model) = &keys[k % keys.len()];
        let url = format!("{}/api/v1/getGender/{cid}?model={model}", cloud.api_url);
        tasks.push(tokio::spawn(async move {
            match tokio::time::timeout(Duration::from_secs(5), http_get(&url)).await {
                Err(_) => Paced::Failure("timeout"),
                Ok(Err(_)) => Paced::Failure("connection"),
                Ok(Ok((status @ (200 | 404), _))) => {
                    Paced::Answer(status, due.elapsed().as_secs_f64() * 1e3)
                }
                Ok(Ok((status, _))) if status >= 500 => Paced::Failure("5xx"),
                Ok(Ok(_)) => Paced::Failure("4xx"),
            }
        }));
    }
    let mut latencies = Vec::new();
    let mut paced_answers = BTreeMap::new();
    let mut paced_failures = BTreeMap::new();
    for t in tasks {
        match t.await.unwrap_or(Paced::Failure("connection")) {
            Paced::Answer(status, ms) => {
                latencies.push(ms);
                *paced_answers.entry(status).or_default() += 1;
            }
            Paced::Failure(kind) => *paced_failures.entry(kind.to_string()).or_default() += 1,
        }
    }
    Ok(ApiFigures {
        wrk,
        wrk_missing,
        paced_rate,
        paced: Percentiles::of(latencies),
        paced_answers,
        paced_failures,
        stored_keys: keys.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_wrk_latency_reports() {
        let text = "Running 8s test @ http://127.0.0.1:5000\n  1 threads and 4 connections\n  Latency Distribution\n     50%  812.00us\n     75%    1.02ms\n     90%    1.31ms\n     99%    2.50ms\n  9000 requests in 8.00s, 2.1MB read\n  Non-2xx or 3xx responses: 3\nRequests/sec:   1124.88\nTransfer/sec:    270.01KB\n";
        let (rps, p50, p99, bad) = parse_wrk(text).unwrap();
        assert_eq!((rps, bad), (1124.88, 3));
        assert!((p50 - 0.812).abs() < 1e-9 && (p99 - 2.5).abs() < 1e-9);
    }
}
