//! The soak (`tally bench --only soak [--seconds N] [--rate R]`): all four pipelines fed at once,
//! steadily, for ten minutes by default, at half the rate every pipeline sustained together in
//! the last full bench. It says what a long run would hide from the other figures: a record lost,
//! a backlog that only grows, a process whose memory only grows. Every record fed has a key of its
//! own, so what each pipeline counted is exact: visits are cids in the results table,
//! interactions users in the rules' state, RSVPs the stats' distinct ids, app events (through
//! `/collect`) the metrics' count of a fresh app.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tally_cloud::clients::failed;

use anyhow::{anyhow, Context as _, Result};
use aws_sdk_dynamodb::types::{AttributeValue, Select};
use serde::Serialize;
use serde_json::{json, Value};

use super::{cloud_options, BenchOptions};
use tally_cloud::cloud::LocalCloud;
use tally_cloud::http::http_get;
use tally_cloud::kinesis::put_all;
use tally_gen::mobile::sender::Sender;

/// What the soak measured (`bench/report.json` key `soak`).
#[derive(Debug, Clone, Serialize)]
pub struct SoakFigures {
    pub seconds: f64,
    /// Records fed, all pipelines.
    pub events: u64,
    /// Fed and never counted, once every pipeline settled (or the wait ran out).
    pub lost: u64,
    /// From the last record fed until every pipeline had counted everything.
    pub lag_seconds: f64,
    /// Resident memory at the end against just after the warm-up fifth of the run, per kind of
    /// process (functions: per instance).
    pub rss_growth_percent: BTreeMap<String, f64>,
    /// The same over the second half of the run alone: memory that only warms up grows in the
    /// first half; a leak, or data kept per record, grows in both.
    pub rss_growth_second_half_percent: BTreeMap<String, f64>,
    /// Resident MB per kind of process after the warm-up fifth, at half time and at the end.
    pub rss_mb: BTreeMap<String, (f64, f64, f64)>,
    pub rate_events_per_s: f64,
    pub offered_events_per_s: f64,
    /// Per pipeline: (fed, counted).
    pub pipelines: BTreeMap<String, (u64, u64)>,
    /// Which build the functions were (the soak's figures are of that build).
    pub build: String,
}

/// Resident memory per kind of process (MB), and how many processes of the kind.
fn resident() -> BTreeMap<String, (f64, u32)> {
    let mut out: BTreeMap<String, (f64, u32)> = BTreeMap::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        if entry.file_name().to_string_lossy().parse::<u32>().is_err() {
            continue;
        }
        let Ok(status) = std::fs::read_to_string(entry.path().join("status")) else {
            continue;
        };
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .map(|v| v.trim().to_string())
        };
        let (Some(comm), Some(rss)) = (field("Name:"), field("VmRSS:")) else {
            continue;
        };
        let kb: f64 = rss
            .split_whitespace()
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or(0.0);
        let cmdline = std::fs::read(entry.path().join("cmdline"))
            .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
            .unwrap_or_default();
        let kind = super::profile::kind(&comm, &cmdline);
        let e = out.entry(kind).or_default();
        e.0 += kb / 1024.0;
        e.1 += 1;
    }
    out
}

/// Scans `table` for items whose `pk` starts with `prefix` (all when empty): their count.
async fn count_items(cloud: &LocalCloud, table: &str, prefix: &str) -> Result<u64> {
    let mut count = 0;
    let mut start = None;
    loop {
        let mut scan = cloud
            .clients
            .dynamodb
            .scan()
            .table_name(table)
            .select(Select::Count)
            .set_exclusive_start_key(start);
        if !prefix.is_empty() {
            scan = scan
                .filter_expression("begins_with(pk, :p)")
                .expression_attribute_values(":p", AttributeValue::S(prefix.into()));
        }
        let page = scan
            .send()
            .await
            .map_err(failed(format!("scanning {table}")))?;
        count += page.count() as u64;
        start = page.last_evaluated_key().cloned();
        if start.is_none() {
            return Ok(count);
        }
    }
}

/// What each pipeline has counted of what the soak fed it.
async fn counted(cloud: &LocalCloud, app: &str) -> Result<BTreeMap<String, u64>> {
    let t = &cloud.template;
    let mut out = BTreeMap::new();
    out.insert(
        "gender".into(),
        count_items(cloud, &t.physical_name("GenderResultsTable"), "").await?,
    );
    out.insert(
        "rules".into(),
        count_items(cloud, &t.physical_name("RuleStateTable"), "paid_user#").await?,
    );
    let (_, body) = http_get(&format!("{}/api/v1/rsvp/stats", cloud.api_url)).await?;
    let stats: Value = serde_json::from_str(&body).unwrap_or_default();
    out.insert(
        "rsvp".into(),
        stats["totals"]["rsvps"].as_u64().unwrap_or(0),
    );
    let url = format!(
        "{}/api/v1/events/metrics?app_id={app}&minutes=1440",
        cloud.api_url
    );
    let (_, body) = http_get(&url).await?;
    let metrics: Value = serde_json::from_str(&body).unwrap_or_default();
    out.insert("events".into(), metrics["events"].as_u64().unwrap_or(0));
    Ok(out)
}

/// One pipeline's feed: `per_second` records a second for `seconds`, each made by `make(n)`.
async fn feed_stream(
    cloud: &LocalCloud, logical_id: &str, per_second: f64, seconds: f64,
    make: impl Fn(u64) -> (String, String),
) -> Result<u64> {
    let stream = cloud.template.physical_name(logical_id);
    let began = Instant::now();
    let mut fed = 0u64;
    while began.elapsed().as_secs_f64() < seconds {
        let due = (began.elapsed().as_secs_f64() * per_second) as u64;
        let batch: Vec<(String, String)> = (fed..due.max(fed)).map(&make).collect();
        if !batch.is_empty() {
            let put = put_all(&cloud.clients.kinesis, &stream, &batch, |_| {}).await;
            if put.refused > 0 {
                return Err(anyhow!("{logical_id}: {} records refused", put.refused));
            }
            fed += batch.len() as u64;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(fed)
}

/// The app events' feed, through `/collect` as an SDK sends them.
async fn feed_collect(sender: &Sender, per_second: f64, seconds: f64) -> Result<u64> {
    let began = Instant::now();
    let mut fed = 0u64;
    while began.elapsed().as_secs_f64() < seconds {
        let due = (began.elapsed().as_secs_f64() * per_second) as u64;
        let events: Vec<Value> = (fed..due.max(fed))
            .map(|n| {
                json!({"event_id": format!("soak-{n}"), "event_type": "app_open", "client_time": chrono::Utc::now().to_rfc3339(), "device": {"id": format!("soak-device-{}", n % 100), "platform": "android"}})
            })
            .collect();
        for chunk in events.chunks(500) {
            let sent = sender.send(chunk).await;
            if sent.accepted != chunk.len() as u64 {
                return Err(anyhow!(
                    "/collect accepted {} of {}: {:?}",
                    sent.accepted,
                    chunk.len(),
                    sent.failed
                ));
            }
        }
        fed += events.len() as u64;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(fed)
}

/// The rate every pipeline held together in the last full bench, halved; 100 events/s without one.
pub fn default_rate(root: &std::path::Path) -> f64 {
    std::fs::read_to_string(root.join("bench/report.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<Value>(&t).ok())
        .and_then(|r| r["throughput_events_per_s"].as_f64())
        .map_or(100.0, |r| (r / 2.0).max(4.0))
}

/// Feeds all four pipelines at `rate` events/s in all for `seconds`, then waits for them.
pub async fn soak(o: &BenchOptions, seconds: f64, rate: f64) -> Result<SoakFigures> {
    let cloud = LocalCloud::start(cloud_options(o, "per-key")).await?;
    let outcome = run(&cloud, o, seconds, rate).await;
    cloud.stop().await;
    outcome
}

async fn run(cloud: &LocalCloud, o: &BenchOptions, seconds: f64, rate: f64) -> Result<SoakFigures> {
    // A fresh app, so its metrics are the soak's events alone.
    let key = format!("tk_soak_{}", uuid::Uuid::new_v4().simple());
    let app = format!("soak-{}", &key[8..16]);
    tally_aws::DynamoAppKeys::on(tally_aws::DynamoTable::new(
        cloud.clients.dynamodb.clone(),
        cloud.template.physical_name("AppsTable"),
    ))
    .register(
        &tally_events::collect::key_hash(&key),
        &tally_events::collect::App {
            app_id: app.clone(),
            name: "Soak".into(),
            origins: Vec::new(),
        },
    )
    .await
    .map_err(|e| anyhow!("registering the soak's app: {e}"))?;
    let sender = Sender {
        url: format!("{}/collect", cloud.api_url),
        key,
        gzip: true,
        max_attempts: 20,
    };
    let per = rate / 4.0;
    let rsvps = Arc::new(super::rsvp::rsvp_events(
        (per * seconds) as usize + 10,
        31,
        per,
    ));
    let samples = Arc::new(std::sync::Mutex::new(Vec::<(
        f64,
        BTreeMap<String, (f64, u32)>,
    )>::new()));
    let began = Instant::now();
    let sampler = {
        let samples = samples.clone();
        tokio::spawn(async move {
            loop {
                let at = began.elapsed().as_secs_f64();
                samples.lock().unwrap().push((at, resident()));
                tokio::time::sleep(Duration::from_secs(5)).await;
            }
        })
    };
    let today = chrono::Utc::now().format("%Y-%m-%d %H:%M:%S").to_string();
    let fed = tokio::try_join!(
        feed_stream(cloud, "VisitsStream", per, seconds, |n| {
            let g = if n % 3 == 0 { "female" } else { "male" };
            (
                format!("soak-{n}"),
                json!({"cid": format!("soak-{n}"), "gndr": g}).to_string(),
            )
        }),
        feed_stream(cloud, "InteractionsStream", per, seconds, |n| {
            let line = json!({"user_id": n + 7_000_000_000, "property_id": n + 7_000_000_000, "date": today, "event": "Interaction"});
            ((n + 7_000_000_000).to_string(), line.to_string())
        }),
        feed_stream(cloud, "RsvpStream", per, seconds, |n| {
            let e = &rsvps[(n as usize).min(rsvps.len() - 1)];
            (e.partition_key.clone(), e.data.clone())
        }),
        feed_collect(&sender, per, seconds),
    )?;
    let fed_for = began.elapsed().as_secs_f64();
    let distinct_rsvps = rsvps[..(fed.2 as usize).min(rsvps.len())]
        .iter()
        .filter_map(|e| serde_json::from_str::<Value>(&e.data).ok())
        .filter_map(|v| v["rsvp_id"].as_u64())
        .collect::<std::collections::BTreeSet<_>>()
        .len() as u64;
    let want: BTreeMap<String, u64> = [
        ("gender", fed.0),
        ("rules", fed.1),
        ("rsvp", distinct_rsvps),
        ("events", fed.3),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    // The rules' state: one `paid_user#<user>` item per interaction (a user of its own each).
    let ended = Instant::now();
    let mut got = BTreeMap::new();
    while ended.elapsed() < Duration::from_secs(300) {
        got = counted(cloud, &app).await.unwrap_or_default();
        if want.iter().all(|(k, v)| got.get(k).is_some_and(|g| g >= v)) {
            break;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    let lag_seconds = ended.elapsed().as_secs_f64();
    sampler.abort();
    let samples = samples.lock().unwrap().clone();
    // The first sample at that share of the feeding (the last one if none is that late).
    let at = |share: f64| {
        samples
            .iter()
            .find(|(at, _)| *at >= fed_for * share)
            .or(samples.last())
            .map(|(_, r)| r.clone())
            .context("no memory sample")
    };
    let (baseline, half, last) = (at(0.2)?, at(0.5)?, at(f64::INFINITY)?);
    let functions: std::collections::BTreeSet<String> = cloud
        .functions
        .values()
        .filter_map(|f| {
            f.spec()
                .binary
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
        })
        .collect();
    let mut rss_growth_percent = BTreeMap::new();
    let mut rss_growth_second_half_percent = BTreeMap::new();
    let mut rss_mb = BTreeMap::new();
    let growth = |from: f64, to: f64| ((to - from) / from * 1000.0).round() / 10.0;
    let tenth = |mb: f64| (mb * 10.0).round() / 10.0;
    for (kind, (end_mb, end_n)) in &last {
        let Some((start_mb, start_n)) = baseline.get(kind) else {
            continue;
        };
        let ours = kind.starts_with("tally") || kind.contains('(') || functions.contains(kind);
        if *start_mb < 1.0 || !ours {
            continue;
        }
        // Functions run as several instances: their memory per instance.
        let (a, c) = (start_mb / f64::from(*start_n), end_mb / f64::from(*end_n));
        let b = half
            .get(kind)
            .map_or(a, |(mb, n)| mb / f64::from((*n).max(1)));
        rss_growth_percent.insert(kind.clone(), growth(a, c));
        rss_growth_second_half_percent.insert(kind.clone(), growth(b, c));
        rss_mb.insert(kind.clone(), (tenth(a), tenth(b), tenth(c)));
    }
    let pipelines: BTreeMap<String, (u64, u64)> = want
        .iter()
        .map(|(k, v)| (k.clone(), (*v, got.get(k).copied().unwrap_or(0))))
        .collect();
    let events: u64 = fed.0 + fed.1 + fed.2 + fed.3;
    let lost = pipelines.values().map(|(w, g)| w.saturating_sub(*g)).sum();
    Ok(SoakFigures {
        seconds: fed_for,
        events,
        lost,
        lag_seconds: (lag_seconds * 10.0).round() / 10.0,
        rss_growth_percent,
        rss_growth_second_half_percent,
        rss_mb,
        rate_events_per_s: rate,
        offered_events_per_s: events as f64 / fed_for,
        pipelines,
        build: if o.bin_dir.ends_with("release") {
            "release"
        } else {
            "debug"
        }
        .into(),
    })
}
