//! Figures of the running pipelines: DynamoDB requests per event (counted at the edge), sustained
//! throughput with freshness probes, and the emulators' own capacity on this machine.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tally_cloud::clients::failed;

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_kinesis::primitives::Blob;
use serde::Serialize;

use anyhow::{anyhow, bail, Result};

use super::workload::Event;
use tally_cloud::cloud::LocalCloud;
use tally_cloud::http::http_get;
use tally_cloud::kinesis::{put_all, read_stream};

/// Puts `events` as the CLI's put does; returns the PutRecords calls made.
pub async fn put_events(
    kinesis: &aws_sdk_kinesis::Client, stream: &str, events: &[Event],
) -> Result<u64> {
    let entries: Vec<(String, &[u8])> = events
        .iter()
        .map(|e| (e.partition_key.clone(), e.data.as_bytes()))
        .collect();
    let outcome = put_all(kinesis, stream, &entries, |_| {}).await;
    if outcome.refused > 0 {
        bail!("{stream} kept refusing {} records", outcome.refused);
    }
    Ok(outcome.calls)
}

/// Records the mappings reading `stream` have finished with, in all.
fn completed_from(cloud: &LocalCloud, stream: &str) -> u64 {
    cloud
        .mappings
        .iter()
        .filter(|m| m.spec.stream_name == stream)
        .map(|m| m.stats.lock().unwrap().completed)
        .min()
        .unwrap_or(0)
}

/// Waits until every mapping of `sources` has finished `targets` records and then every mapping
/// of the cloud stays caught up for 500 ms. Returns when that quiet period began, or `None`
/// after `timeout`.
pub async fn wait_settled(
    cloud: &LocalCloud, targets: &[(String, u64)], timeout: Duration,
) -> Option<Instant> {
    let deadline = Instant::now() + timeout;
    let mut quiet_since: Option<Instant> = None;
    while Instant::now() < deadline {
        let fed = targets
            .iter()
            .all(|(stream, n)| completed_from(cloud, stream) >= *n);
        if fed && cloud.caught_up() {
            let since = *quiet_since.get_or_insert_with(Instant::now);
            if since.elapsed() >= Duration::from_millis(500) {
                return Some(since);
            }
        } else {
            quiet_since = None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    None
}

#[derive(Debug, Clone, Serialize)]
pub struct RequestCount {
    pub pipeline: String,
    pub workload: String,
    pub mode: String,
    pub events: usize,
    /// DynamoDB requests by operation (functions only: the bench itself makes none meanwhile).
    pub dynamodb: BTreeMap<String, u64>,
    pub dynamodb_per_event: f64,
    /// PutRecords calls of the functions (results, alerts), per event.
    pub kinesis_puts_per_event: f64,
    /// Records the functions published (results or alerts), per event.
    pub published_per_event: f64,
}

/// Puts `events` on `stream`, waits for every function downstream, and counts what they asked of
/// DynamoDB and Kinesis at the edge.
pub async fn count_requests(
    cloud: &LocalCloud, pipeline: &str, workload: &str, mode: &str, stream: &str,
    published_streams: &[String], events: &[Event],
) -> Result<RequestCount> {
    let kinesis = &cloud.clients.kinesis;
    let before: u64 = completed_from(cloud, stream);
    let published_before = published_records(cloud, published_streams).await?;
    cloud.router.reset_counts();
    let producer_calls = put_events(kinesis, stream, events).await?;
    let target = before + events.len() as u64;
    wait_settled(
        cloud,
        &[(stream.to_string(), target)],
        Duration::from_secs(600),
    )
    .await
    .ok_or_else(|| {
        anyhow!(
            "{pipeline} ({mode}) did not finish {} events in 10 minutes",
            events.len()
        )
    })?;
    let counts = cloud.router.counts();
    let n = events.len() as f64;
    let dynamodb: BTreeMap<String, u64> = counts
        .iter()
        .filter(|(op, _)| op.starts_with("dynamodb:"))
        .map(|(op, c)| (op.trim_start_matches("dynamodb:").to_string(), *c))
        .collect();
    let puts = counts.get("kinesis:PutRecords").copied().unwrap_or(0);
    let published = published_records(cloud, published_streams).await? - published_before;
    Ok(RequestCount {
        pipeline: pipeline.into(),
        workload: workload.into(),
        mode: mode.into(),
        events: events.len(),
        dynamodb_per_event: dynamodb.values().sum::<u64>() as f64 / n,
        dynamodb,
        kinesis_puts_per_event: puts.saturating_sub(producer_calls) as f64 / n,
        published_per_event: published as f64 / n,
    })
}

/// Records on `streams` so far (results, alerts), read back from the streams.
async fn published_records(cloud: &LocalCloud, streams: &[String]) -> Result<u64> {
    let mut n = 0;
    for s in streams {
        n += read_stream(&cloud.clients.kinesis, s).await?.len() as u64;
    }
    Ok(n)
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Percentiles {
    pub samples: usize,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl Percentiles {
    pub fn of(mut ms: Vec<f64>) -> Option<Self> {
        if ms.is_empty() {
            return None;
        }
        ms.sort_by(f64::total_cmp);
        let at = |q: f64| ms[((ms.len() as f64 * q).ceil() as usize).clamp(1, ms.len()) - 1];
        Some(Percentiles {
            samples: ms.len(),
            p50_ms: at(0.50),
            p95_ms: at(0.95),
            p99_ms: at(0.99),
            max_ms: *ms.last().unwrap(),
        })
    }
}

/// One stream fed at a fixed rate during a throughput run.
pub struct Feed {
    pub pipeline: &'static str,
    pub stream: String,
    pub events: Vec<Event>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Throughput {
    pub pipelines: String,
    pub target_events_per_s: f64,
    pub seconds: f64,
    pub events: usize,
    /// The rate the producer reached (PutRecords acknowledgements).
    pub offered_events_per_s: f64,
    /// Events divided by the time from the first acknowledgement to every result written.
    pub events_per_s: f64,
    /// Whether every function caught up within the drain limit after the producer stopped.
    pub settled: bool,
    pub drain_seconds: f64,
    /// The most events acknowledged but not yet consumed by the first stage, seen each second.
    pub max_backlog: u64,
    pub freshness: Option<Percentiles>,
    /// Probes whose result the API had not answered when the run ended.
    pub freshness_unanswered: usize,
    pub nothing_lost: Option<bool>,
    pub check: String,
    /// DynamoDB requests per second the run drove (counted at the edge, first acknowledgement to
    /// settled), and that against the emulator's measured conditional-write capacity.
    pub dynamodb_requests_per_s: f64,
    pub dynamodb_utilisation: Option<f64>,
    /// Cores each kind of process used during the run.
    pub cpu: super::profile::CpuProfile,
}

/// What a freshness probe puts, and how the API shows it was counted.
#[derive(Debug, Clone)]
pub enum Probe {
    /// A visit of a new cid to this stream; answered once MODEL2 has a result for the cid.
    Gender { stream: String },
    /// An RSVP to this stream whose `mtime` is in a minute of its own after every other RSVP's
    /// (minutes of 2100: on a fresh cloud); answered once the stats' window ends after that
    /// minute. `template` is an RSVP line to copy the shape from.
    Rsvp { stream: String, template: String },
}

/// One probe: what to put, and where and how the API shows it counted.
struct ProbeRecord {
    partition_key: String,
    data: String,
    path: String,
    answered: Box<dyn Fn(&str) -> bool + Send>,
}

impl Probe {
    /// The `n`th probe of a run.
    fn nth(&self, run: i64, n: i64) -> ProbeRecord {
        match self {
            Probe::Gender { .. } => {
                let cid = format!("F{run}x{n}");
                let data = format!(r#"{{"cid":"{cid}","gndr":"female"}}"#);
                ProbeRecord {
                    path: format!("/api/v1/getGender/{cid}?model=MODEL2"),
                    partition_key: cid,
                    data,
                    answered: Box::new(|_| true),
                }
            }
            Probe::Rsvp { template, .. } => {
                // Minutes of 2100, one per probe: each ends the stats' window when counted.
                let minute = 4_102_444_800_000_i64 + n * 60_000;
                let mut v: serde_json::Value = serde_json::from_str(template).unwrap_or_default();
                v["rsvp_id"] = serde_json::json!(9_000_000_000_000_i64 + run * 100_000 + n);
                v["mtime"] = serde_json::json!(minute);
                let key = v["event"]["event_id"]
                    .as_str()
                    .unwrap_or("probe")
                    .to_string();
                let end = chrono::DateTime::from_timestamp_millis(minute + 60_000)
                    .unwrap_or_default()
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
                let answered = move |body: &str| {
                    serde_json::from_str::<serde_json::Value>(body)
                        .ok()
                        .and_then(|b| b["window_end"].as_str().map(|e| e >= end.as_str()))
                        .unwrap_or(false)
                };
                ProbeRecord {
                    partition_key: key,
                    data: v.to_string(),
                    path: "/api/v1/rsvp/stats".into(),
                    answered: Box::new(answered),
                }
            }
        }
    }

    fn stream(&self) -> &str {
        match self {
            Probe::Gender { stream } | Probe::Rsvp { stream, .. } => stream,
        }
    }
}

/// Feeds every stream at `rate` events/s for its events, probes freshness through the API when
/// `probe` is set, waits for the functions to catch up and reports the sustained rate.
pub async fn sustained(
    cloud: &LocalCloud, feeds: Vec<Feed>, rate: f64, probe: Option<Probe>, drain_limit: Duration,
) -> Result<Throughput> {
    let started = Instant::now();
    let dynamodb_before = dynamodb_requests(cloud);
    let cpu_before = super::profile::snapshot();
    let first_ack: Arc<Mutex<Option<Instant>>> = Arc::default();
    let acked = Arc::new(AtomicU64::new(0));
    let total: usize = feeds.iter().map(|f| f.events.len()).sum();
    let pipelines = feeds
        .iter()
        .map(|f| f.pipeline)
        .collect::<Vec<_>>()
        .join(" + ");
    let mut targets = Vec::new();
    let mut producers = Vec::new();
    for feed in feeds {
        targets.push((
            feed.stream.clone(),
            completed_from(cloud, &feed.stream) + feed.events.len() as u64,
        ));
        let (kinesis, first_ack, acked) = (
            cloud.clients.kinesis.clone(),
            first_ack.clone(),
            acked.clone(),
        );
        producers.push(tokio::spawn(async move {
            // Every 100 ms, what the rate allows by then: the producer catches up after a slow call.
            let mut sent = 0usize;
            let begin = Instant::now();
            while sent < feed.events.len() {
                let due = ((begin.elapsed().as_secs_f64() * rate) as usize).min(feed.events.len());
                if due > sent {
                    put_events(&kinesis, &feed.stream, &feed.events[sent..due]).await?;
                    first_ack.lock().unwrap().get_or_insert_with(Instant::now);
                    acked.fetch_add((due - sent) as u64, Ordering::Relaxed);
                    sent = due;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Ok::<_, anyhow::Error>(())
        }));
    }
    let source_streams: Vec<String> = targets.iter().map(|(s, _)| s.clone()).collect();
    let baseline: Vec<u64> = source_streams
        .iter()
        .map(|s| completed_from(cloud, s))
        .collect();
    let producers_done = Arc::new(AtomicBool::new(false));
    let probes = probe.map(|probe| {
        let (kinesis, api) = (cloud.clients.kinesis.clone(), cloud.api_url.clone());
        tokio::spawn(freshness_probes(
            kinesis,
            probe,
            api,
            producers_done.clone(),
        ))
    });
    let mut max_backlog = 0;
    while producers.iter().any(|p| !p.is_finished()) {
        let consumed: u64 = source_streams
            .iter()
            .zip(&baseline)
            .map(|(s, b)| completed_from(cloud, s) - b)
            .sum();
        max_backlog = max_backlog.max(acked.load(Ordering::Relaxed).saturating_sub(consumed));
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    for p in producers {
        p.await??;
    }
    producers_done.store(true, Ordering::Relaxed);
    let produced_at = Instant::now();
    let first = first_ack.lock().unwrap().unwrap_or(started);
    let offered = total as f64 / produced_at.duration_since(first).as_secs_f64().max(1e-3);
    let settled_at = wait_settled(cloud, &targets, drain_limit).await;
    let (freshness, unanswered) = match probes {
        Some(p) => p.await?,
        None => (Vec::new(), 0),
    };
    let end = settled_at.unwrap_or_else(Instant::now);
    let consumed: u64 = source_streams
        .iter()
        .zip(&baseline)
        .map(|(s, b)| completed_from(cloud, s) - b)
        .sum();
    let done = if settled_at.is_some() {
        total as u64
    } else {
        consumed
    };
    let dynamodb = dynamodb_requests(cloud) - dynamodb_before;
    let cpu = cpu_before.until(&super::profile::snapshot());
    Ok(Throughput {
        cpu,
        dynamodb_requests_per_s: dynamodb as f64
            / end.duration_since(first).as_secs_f64().max(1e-3),
        dynamodb_utilisation: None,
        pipelines,
        target_events_per_s: rate,
        seconds: produced_at.duration_since(first).as_secs_f64(),
        events: total,
        offered_events_per_s: offered,
        events_per_s: done as f64 / end.duration_since(first).as_secs_f64().max(1e-3),
        settled: settled_at.is_some(),
        drain_seconds: end.saturating_duration_since(produced_at).as_secs_f64(),
        max_backlog,
        freshness: Percentiles::of(freshness),
        freshness_unanswered: unanswered,
        nothing_lost: None,
        check: String::new(),
    })
}

/// DynamoDB requests through the edge so far.
fn dynamodb_requests(cloud: &LocalCloud) -> u64 {
    cloud
        .router
        .counts()
        .iter()
        .filter(|(op, _)| op.starts_with("dynamodb:"))
        .map(|(_, n)| n)
        .sum()
}

/// Every 250 ms while the producers run, one probe; each is polled at the API every 20 ms until
/// the API shows it. Returns the delays from acknowledgement to answer, and the unanswered.
async fn freshness_probes(
    kinesis: aws_sdk_kinesis::Client, probe: Probe, api: String, producers_done: Arc<AtomicBool>,
) -> (Vec<f64>, usize) {
    let run = chrono::Utc::now().timestamp_millis() % 1_000_000_000;
    let mut polls = Vec::new();
    let mut n = 0;
    // The probes' polls share one budget: the API and DynamoDB Local serve the pipelines too, and
    // a backlog of unanswered probes polling on their own would load them more than the pipelines
    // (each poll waits its turn; with few probes outstanding each still polls every 20 ms).
    let budget = Arc::new(tokio::sync::Semaphore::new(0));
    let refill = {
        let budget = budget.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(1000 / POLLS_PER_S));
            loop {
                tick.tick().await;
                if budget.available_permits() < 4 {
                    budget.add_permits(1);
                }
            }
        })
    };
    let mut ticker = tokio::time::interval(Duration::from_millis(250));
    while !producers_done.load(Ordering::Relaxed) {
        ticker.tick().await;
        n += 1;
        let ProbeRecord {
            partition_key,
            data,
            path,
            answered,
        } = probe.nth(run, n);
        let put = kinesis
            .put_record()
            .stream_name(probe.stream())
            .partition_key(&partition_key)
            .data(Blob::new(data.into_bytes()))
            .send()
            .await;
        if put.is_err() {
            continue;
        }
        let acked = Instant::now();
        let url = format!("{api}{path}");
        let budget = budget.clone();
        polls.push(tokio::spawn(async move {
            let deadline = acked + Duration::from_secs(30);
            while Instant::now() < deadline {
                if let Ok(permit) = budget.acquire().await {
                    permit.forget();
                }
                if let Ok((200, body)) = http_get(&url).await {
                    if answered(&body) {
                        return Some(acked.elapsed().as_secs_f64() * 1e3);
                    }
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            None
        }));
    }
    let mut delays = Vec::new();
    let mut unanswered = 0;
    for p in polls {
        match p.await.ok().flatten() {
            Some(ms) => delays.push(ms),
            None => unanswered += 1,
        }
    }
    refill.abort();
    (delays, unanswered)
}

/// API polls per second all freshness probes together may make.
const POLLS_PER_S: u64 = 50;

/// Sum of MODEL2's counts over the cids starting with `tag`: every valid visit counts once.
pub async fn model2_total(cloud: &LocalCloud, table: &str, tag: &str) -> Result<u64> {
    let mut total = 0;
    let mut start: Option<HashMap<String, AttributeValue>> = None;
    loop {
        let out = cloud
            .clients
            .dynamodb
            .scan()
            .table_name(table)
            .filter_expression("attribute_exists(#b) AND begins_with(cid, :tag)")
            .expression_attribute_names("#b", "body_MODEL2")
            .expression_attribute_values(":tag", AttributeValue::S(tag.into()))
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(failed(format!("scan of {table}")))?;
        for item in out.items() {
            let body: serde_json::Value = item
                .get("body_MODEL2")
                .and_then(|b| b.as_s().ok())
                .and_then(|b| serde_json::from_str(b).ok())
                .unwrap_or_default();
            total += body["male"].as_u64().unwrap_or(0) + body["female"].as_u64().unwrap_or(0);
        }
        start = out.last_evaluated_key().cloned();
        if start.is_none() {
            return Ok(total);
        }
    }
}

/// Distinct alert ids, and all alert records, on `streams` for users or properties above `offset`.
pub async fn alerts_above(
    cloud: &LocalCloud, streams: &[String], offset: u64,
) -> Result<(usize, usize)> {
    let mut ids = std::collections::BTreeSet::new();
    let mut records = 0;
    for s in streams {
        for r in read_stream(&cloud.clients.kinesis, s).await? {
            let v: serde_json::Value = serde_json::from_slice(&r.data).unwrap_or_default();
            let key = ["user", "property", "user_id"]
                .iter()
                .find_map(|k| v[*k].as_u64())
                .unwrap_or(0);
            if key > offset && key <= offset + super::workload::KEYS as u64 {
                records += 1;
                ids.insert(v["alert_id"].as_str().unwrap_or_default().to_string());
            }
        }
    }
    Ok((ids.len(), records))
}

#[derive(Debug, Clone, Serialize)]
pub struct Capacity {
    pub conditional_update_item_per_s: f64,
    pub update_item_concurrency: usize,
    pub put_records_records_per_s: f64,
    pub put_records_concurrency: usize,
    pub seconds_each: f64,
}

/// The emulators' own rate on this machine, through the same edge endpoint the functions use.
pub async fn capacity(cloud: &LocalCloud, seconds: f64) -> Result<Capacity> {
    let ddb = &cloud.clients.dynamodb;
    let table = "tally-bench-capacity";
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
    };
    let _ = ddb
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("pk")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .expect("complete"),
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("pk")
                .key_type(KeyType::Hash)
                .build()
                .expect("complete"),
        )
        .send()
        .await;
    let span = Duration::from_secs_f64(seconds);
    let ops = Arc::new(AtomicU64::new(0));
    let concurrency = 16;
    let begin = Instant::now();
    let workers: Vec<_> = (0..concurrency)
        .map(|w| {
            let (ddb, ops) = (ddb.clone(), ops.clone());
            tokio::spawn(async move {
                let mut i: u64 = 0;
                while begin.elapsed() < span {
                    i += 1;
                    let ok = ddb
                        .update_item()
                        .table_name(table)
                        .key("pk", AttributeValue::S(format!("k{}", (i * 31 + w) % 1000)))
                        .update_expression("ADD n :one SET w = :w")
                        .condition_expression("attribute_not_exists(w) OR w < :w")
                        .expression_attribute_values(":one", AttributeValue::N("1".into()))
                        .expression_attribute_values(
                            ":w",
                            AttributeValue::N((begin.elapsed().as_nanos() as u64).to_string()),
                        )
                        .send()
                        .await
                        .is_ok();
                    // A failed condition is a served request too (the keys' `w` race by design).
                    let _ = ok;
                    ops.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for w in workers {
        let _ = w.await;
    }
    let update_rate = ops.load(Ordering::Relaxed) as f64 / begin.elapsed().as_secs_f64();

    let kinesis = &cloud.clients.kinesis;
    let stream = "tally-bench-capacity";
    let _ = kinesis
        .create_stream()
        .stream_name(stream)
        .shard_count(2)
        .send()
        .await;
    for _ in 0..100 {
        let active = kinesis
            .describe_stream_summary()
            .stream_name(stream)
            .send()
            .await
            .ok()
            .and_then(|d| {
                d.stream_description_summary()
                    .map(|s| s.stream_status().as_str() == "ACTIVE")
            })
            .unwrap_or(false);
        if active {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let records = Arc::new(AtomicU64::new(0));
    let put_concurrency = 4;
    let begin = Instant::now();
    let workers: Vec<_> = (0..put_concurrency)
        .map(|w| {
            let (kinesis, records) = (kinesis.clone(), records.clone());
            tokio::spawn(async move {
                let batch: Vec<Event> = (0..500)
                    .map(|i| Event {
                        partition_key: format!("C{w}-{i}"),
                        data: format!(
                            r#"{{"cid":"C{w}-{i}","gndr":"male","ts":"2026-11-22T10:00:00Z"}}"#
                        ),
                    })
                    .collect();
                while begin.elapsed() < span {
                    if put_events(&kinesis, stream, &batch).await.is_ok() {
                        records.fetch_add(batch.len() as u64, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    for w in workers {
        let _ = w.await;
    }
    let put_rate = records.load(Ordering::Relaxed) as f64 / begin.elapsed().as_secs_f64();
    let _ = kinesis.delete_stream().stream_name(stream).send().await;
    Ok(Capacity {
        conditional_update_item_per_s: update_rate,
        update_item_concurrency: concurrency as usize,
        put_records_records_per_s: put_rate,
        put_records_concurrency: put_concurrency,
        seconds_each: seconds,
    })
}
