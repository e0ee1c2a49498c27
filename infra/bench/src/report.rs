//! BENCHMARKS.md from a report: one table per figure, with the goal beside each.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::pipeline::Percentiles;
use super::pipeline::RequestCount;
use super::Report;

fn mb(bytes: u64) -> String {
    format!("{:.2} MB", bytes as f64 / 1_000_000.0)
}

fn opt(v: Option<f64>, digits: usize) -> String {
    v.map_or_else(|| "not measured".into(), |v| format!("{v:.digits$}"))
}

/// DynamoDB requests per event of a pipeline on a workload: per key (ours) and per record.
fn per_key_and_per_record(r: &Report, pipeline: &str, workload: &str) -> Option<(f64, f64)> {
    let per = |mode: &str| {
        r.requests
            .iter()
            .find(|c| c.pipeline == pipeline && c.workload == workload && c.mode == mode)
            .map(|c| c.dynamodb_per_event)
    };
    Some((per("per-key")?, per("per-record")?))
}

/// Probe latencies as one table cell: the percentiles, and how many probes were never answered.
fn freshness_cell(p: Option<&Percentiles>, unanswered: usize) -> String {
    format!(
        "p50 {} ms, p99 {} ms, max {} ms ({} probes, {unanswered} unanswered)",
        opt(p.map(|p| p.p50_ms), 0),
        opt(p.map(|p| p.p99_ms), 0),
        opt(p.map(|p| p.max_ms), 0),
        p.map_or(0, |p| p.samples),
    )
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "met"
    } else {
        "**not met**"
    }
}

pub fn markdown(r: &Report) -> String {
    let mut s = String::new();
    title(&mut s, r);
    summary(&mut s, r);
    requests(&mut s, r);
    throughput(&mut s, r);
    functions(&mut s, r);
    cpu_and_api(&mut s, r);
    cost(&mut s, r);
    lake(&mut s, r);
    if let Some(f) = &r.rsvp {
        s.push_str(&rsvp(f));
    }

    if let Some(d) = &r.deploy_build {
        s.push_str(&deploy_build(d));
    }

    if let Some(f) = &r.events {
        s.push_str(&app_events(f, &r.cost));
    }

    let _ = writeln!(s, "\n## Not measured, and limits\n");
    for n in &r.not_measured {
        let _ = writeln!(s, "- {n}");
    }
    s
}

/// The title and the run: machine, build, parameters changed.
fn title(s: &mut String, r: &Report) {
    let m = &r.machine;
    let _ = writeln!(s, "# Benchmarks\n");
    let _ =
        writeln!(
        s,
        "Written by `make bench` ({}), which runs everything below on the local cloud in one go; \
         the same figures are in `bench/report.json`. Machine: {} cores ({}), {} GiB, {}; {}. \
         Emulators: {}. CPU steal (time the hypervisor gave other guests) during the run: {}%. \
         Run took {:.0} s{}.\n",
        m["date"].as_str().unwrap_or(""),
        m["cores"],
        m["cpu"].as_str().unwrap_or(""),
        m["memory_gib"],
        m["arch"].as_str().unwrap_or(""),
        m["build"].as_str().unwrap_or(""),
        m["emulators"].as_str().unwrap_or(""),
        m["cpu_steal_percent_during_run"],
        r.run_seconds,
        if r.quick { " (**quick mode: short runs, figures not comparable**)" } else { "" }
    );
    if !r.params.is_empty() {
        let set: Vec<String> = r.params.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let _ = writeln!(
            s,
            "Template parameters changed from their defaults: {}.\n",
            set.join(", ")
        );
    }
}

/// The summary table: each goal and whether it was met.
fn summary(s: &mut String, r: &Report) {
    let _ = writeln!(s, "## Summary\n");
    let _ = writeln!(s, "| figure | measured | goal | |\n|---|---|---|---|");
    // Requests per event against per-record, per pipeline, on its reference workload.
    for (pipeline, workload, goal) in [
        ("gender", "skewed", 5.0),
        ("rules", "skewed", 5.0),
        ("rsvp", "meetup", 3.0),
        ("events", "fleet", 3.0),
    ] {
        if let Some((ours, base)) = per_key_and_per_record(r, pipeline, workload) {
            let ratio = base / ours.max(1e-9);
            let _ = writeln!(
                s,
                "| DynamoDB requests per event, {pipeline} ({workload}) | {ours:.3} vs {base:.3} per-record: {ratio:.2}x fewer | {goal:.0}x fewer | {} |",
                verdict(ratio >= goal)
            );
        }
    }
    for pipeline in ["gender", "rules", "events"] {
        let cost = |mode: &str| {
            r.cost
                .iter()
                .find(|c| c.pipeline == pipeline && c.mode == mode)
                .map(|c| c.total_usd_per_million_events)
        };
        if let (Some(ours), Some(base)) = (cost("per-key"), cost("per-record")) {
            let share = ours / base.max(1e-9);
            let _ = writeln!(
                s,
                "| cost per million events, {pipeline} | ${ours:.3} vs ${base:.3} per-record: {:.0}% | <= 25% | {} |",
                share * 100.0,
                verdict(share <= 0.25)
            );
        }
    }
    let _ = writeln!(
        s,
        "| DynamoDB requests/s the busiest sustained run drove, of DynamoDB Local's conditional UpdateItem/s | {:.0}% ({:.0} of {:.0}) | >= 80% | {} |",
        r.dynamodb_utilisation * 100.0,
        r.dynamodb_utilisation * r.capacity.conditional_update_item_per_s,
        r.capacity.conditional_update_item_per_s,
        verdict(r.dynamodb_utilisation >= 0.8)
    );
    let _ = writeln!(
        s,
        "| sustained events/s every pipeline held (offered 1,667/s each) | {:.0} | - | |",
        r.throughput_events_per_s
    );
    let _ = writeln!(
        s,
        "| freshness p99 (PutRecords ack to API answer) at half that rate ({:.0} events/s per pipeline) | {} ms | < 2,000 ms | {} |",
        r.freshness_half_rate.target_events_per_s,
        opt(r.freshness_p99_ms, 0),
        verdict(r.freshness_p99_ms.is_some_and(|v| v < 2_000.0))
    );
    let _ = writeln!(
        s,
        "| API p99 at {:.0} requests/s open loop, stored keys | {} ms | < 10 ms | {} |",
        r.api.paced_rate,
        opt(r.api_p99_ms, 2),
        verdict(r.api_p99_ms.is_some_and(|v| v < 10.0))
    );
    let cold = r.functions.iter().map(|f| f.cold_starts).min().unwrap_or(0);
    let _ = writeln!(
        s,
        "| init, slowest function, p99 of {cold} cold starts (the slowest start) | {:.1} ms | < 20 ms | {} |",
        r.init_ms_max,
        verdict(r.init_ms_max < 20.0)
    );
    let _ = writeln!(
        s,
        "| zipped artefact, largest | {} | < 5 MB | {} |\n",
        mb(r.zip_bytes_max),
        verdict(r.zip_bytes_max < 5_000_000)
    );
}

/// 1. DynamoDB requests per event.
fn requests(s: &mut String, r: &Report) {
    let _ = writeln!(s, "## 1. DynamoDB requests per event\n");
    let _ = writeln!(
        s,
        "Counted at the edge endpoint by operation while the pipeline drains the workload; the \
         per-record mode is the seed's layout (`GenderDeployment=per-model`: a function and a \
         state item per model) with `Aggregation=per-record` (one conditional write per record \
         per model or rule, no in-batch aggregation, nothing skipped); per-key is the default \
         deployment (the three models on one item per cid, the results table one item per cid). \
         {}. Every function downstream counts too: `DashboardFeedFunction` reads \
         `GenderResultsStream` and the alert streams, one write per result or alert in \
         per-record mode (3 per visit), one per minute and stream per batch in per-key mode, so \
         the gender baseline is 9 requests per visit.\n",
        r.requests_per_event["workload"].as_str().unwrap_or("")
    );
    let _ = writeln!(
        s,
        "| pipeline | workload | mode | events | DynamoDB requests/event | by operation | Kinesis PutRecords calls/event | records published/event |\n|---|---|---|---|---|---|---|---|"
    );
    for c in &r.requests {
        let ops = c
            .dynamodb
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect::<Vec<_>>()
            .join(", ");
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {:.3} | {} | {:.4} | {:.3} |",
            c.pipeline,
            c.workload,
            c.mode,
            c.events,
            c.dynamodb_per_event,
            ops,
            c.kinesis_puts_per_event,
            c.published_per_event
        );
    }
    let _ = writeln!(s);
    for (p, workloads) in [
        ("gender", &["skewed", "uniform"][..]),
        ("rules", &["skewed", "uniform"][..]),
        ("rsvp", &["meetup"][..]),
    ] {
        for &w in workloads {
            if let Some((a, b)) = per_key_and_per_record(r, p, w) {
                let _ = writeln!(
                    s,
                    "- {p}, {w}: {:.2}x fewer requests than per-record",
                    b / a.max(1e-9)
                );
            }
        }
    }
    let _ = writeln!(s);
}

/// 2. Sustained throughput, and 3. freshness.
fn throughput(s: &mut String, r: &Report) {
    let _ = writeln!(s, "## 2. Sustained throughput, and 3. freshness\n");
    let _ = writeln!(
        s,
        "Each run on a fresh cloud warmed for 30 s first (the same pipelines at up to 250 events/s \
         each: DynamoDB Local is a JVM, slow and busy compiling for its first half minute, which \
         DynamoDB never is). Each pipeline fed at 1,667 events/s (skewed keys) by one producer \
         (PutRecords every 100 ms), then both at half the lowest rate any pipeline held (the last row, where freshness is \
         measured against its goal); the rate is events divided by the time from the first \
         acknowledgement to every function caught up. Freshness: every 250 ms a visit of a new \
         cid; delay from its PutRecord acknowledgement to `GET /api/v1/getGender/{{cid}}?model=MODEL2` \
         answering 200 (polled every 20 ms). DynamoDB: requests per second through the edge \
         during the run, and that against the emulator's conditional UpdateItem/s below.\n"
    );
    let _ = writeln!(
        s,
        "| pipelines | seconds | events | offered/s | sustained events/s | drained in | max backlog | nothing lost | check | freshness p50 / p95 / p99 (ms) | DynamoDB requests/s (of capacity) |\n|---|---|---|---|---|---|---|---|---|---|---|"
    );
    for t in r
        .throughput
        .iter()
        .chain(std::iter::once(&r.freshness_half_rate))
    {
        let fresh = t.freshness.as_ref().map_or_else(
            || "-".to_string(),
            |f| {
                format!(
                    "{:.0} / {:.0} / {:.0} ({} probes, {} unanswered)",
                    f.p50_ms, f.p95_ms, f.p99_ms, f.samples, t.freshness_unanswered
                )
            },
        );
        let _ = writeln!(
            s,
            "| {} | {:.0} | {} | {:.0} | {:.0} | {:.1} s{} | {} | {} | {} | {} | {:.0} ({:.0}%) |",
            t.pipelines,
            t.seconds,
            t.events,
            t.offered_events_per_s,
            t.events_per_s,
            t.drain_seconds,
            if t.settled {
                ""
            } else {
                " (**not caught up**)"
            },
            t.max_backlog,
            match t.nothing_lost {
                Some(true) => "yes",
                Some(false) => "**no**",
                None => "-",
            },
            t.check,
            fresh,
            t.dynamodb_requests_per_s,
            t.dynamodb_utilisation.unwrap_or(0.0) * 100.0
        );
    }
    let _ = writeln!(
        s,
        "\nWhere the CPU went during each run (cores used on average, of {}; from every \
         process's user and system time in /proc, grouped by what the process is):\n",
        r.machine["cores"]
    );
    for t in r
        .throughput
        .iter()
        .chain(std::iter::once(&r.freshness_half_rate))
    {
        let cores: Vec<String> = t
            .cpu
            .cores
            .iter()
            .take(8)
            .map(|(k, c)| format!("{k} {c:.2}"))
            .collect();
        let _ = writeln!(
            s,
            "- {} at {:.0}/s: {}",
            t.pipelines,
            t.target_events_per_s,
            cores.join(", ")
        );
    }
    let c = &r.capacity;
    let _ = writeln!(
        s,
        "\nThe emulators alone on this machine, through the same edge endpoint, measured in the same run: \
         DynamoDB Local **{:.0} conditional UpdateItem/s** ({} concurrent requests), kinesalite \
         **{:.0} records/s** through PutRecords of 500 ({} concurrent calls), {:.0} s each.\n",
        c.conditional_update_item_per_s, c.update_item_concurrency, c.put_records_records_per_s, c.put_records_concurrency, c.seconds_each
    );
}

/// 4. Cold start and size per function.
fn functions(s: &mut String, r: &Report) {
    let _ = writeln!(s, "## 4. Cold start and size per function\n");
    let _ = writeln!(
        s,
        "Init: process start to its first `/next` on the local Runtime API (configuration read, SDK \
         clients built); each cold start is a new process, started once the pipelines are idle (what \
         the previous invocation published is handled first, not beside it). Warm: one invocation \
         through the Runtime API, emulators included.\n"
    );
    let _ = writeln!(s, "| function | binary | zipped | init p50 / max (ms) | warm event | warm p50 / p95 (ms) |\n|---|---|---|---|---|---|");
    for f in &r.functions {
        let warm = f.warm.as_ref().map_or_else(
            || "-".into(),
            |w| format!("{:.2} / {:.2}", w.p50_ms, w.p95_ms),
        );
        let _ = writeln!(
            s,
            "| {} | {} | {} | {:.1} / {:.1} ({} starts) | {} | {} |",
            f.function,
            mb(f.binary_bytes),
            mb(f.zip_bytes),
            f.init_ms_p50,
            f.init_ms_max,
            f.cold_starts,
            f.warm_event,
            warm
        );
    }
    let _ = writeln!(
        s,
        "\nPublished figures for other runtimes (whole cold starts on AWS, which add the microVM and \
         code download to what is measured here, so compare orders of magnitude, not digits): typical \
         ranges at 256 MB of Node.js 200-700 ms, Python 250-800 ms, Java 11 without SnapStart \
         1.5-6 s, with SnapStart 100-300 ms, Go 100-300 ms, Rust 50-200 ms \
         (cold-start budget reference, https://cph.heiberik.com/skills/testland-qa-serverless-plugins-qa-serverless/cold-start-budget-reference); \
         a per-runtime benchmark harness that measures them on AWS is \
         https://github.com/singledigit/lambda-benchmark.\n"
    );
}

/// 5. Per-record CPU, and 6. the API under load.
fn cpu_and_api(s: &mut String, r: &Report) {
    let _ = writeln!(s, "## 5. Per-record CPU\n");
    let _ = writeln!(s, "Criterion (`functions/tally-pipelines/benches/per_record.rs`), a 500-record skewed batch, release profile.\n");
    let _ = writeln!(
        s,
        "| bench | µs per record (per key for the result encoding) |\n|---|---|"
    );
    for c in &r.cpu {
        let _ = writeln!(s, "| {} | {:.3} |", c.bench, c.us_per_record);
    }

    let _ = writeln!(s, "\n## 6. API\n");
    let _ = writeln!(s, "`wrk -t1 -cN -d{}s --latency` over 100 (cid, model) pairs the results table holds (closed loop, fixed concurrency):\n",
        r.api.wrk.first().map_or(0, |w| w.seconds));
    let _ = writeln!(
        s,
        "| connections | requests/s | p50 (ms) | p99 (ms) | non-2xx |\n|---|---|---|---|---|"
    );
    for w in &r.api.wrk {
        let _ = writeln!(
            s,
            "| {} | {:.0} | {:.2} | {:.2} | {} |",
            w.connections, w.requests_per_s, w.p50_ms, w.p99_ms, w.non_2xx
        );
    }
    if let Some(why) = &r.api.wrk_missing {
        let _ = writeln!(s, "| not measured: {why} | | | | |");
    }
    if let Some(p) = &r.api.paced {
        // "3 200, 1 429": how many of each, or none.
        fn counts<K: std::fmt::Display>(m: &BTreeMap<K, usize>) -> String {
            let all: Vec<String> = m.iter().map(|(k, n)| format!("{n} {k}")).collect();
            if all.is_empty() {
                "none".to_string()
            } else {
                all.join(", ")
            }
        }
        let (answers, failures) = (counts(&r.api.paced_answers), counts(&r.api.paced_failures));
        let _ = writeln!(
            s,
            "\nOpen loop at {:.0} requests/s (tally's own client; latency from each request's scheduled start) over \
             {} (cid, model) pairs the results table holds, in turn: p50 {:.2} ms, p95 {:.2} ms, **p99 {:.2} ms**, \
             max {:.2} ms over {} answers (by status: {answers}; a 404 is the API's documented answer for an \
             unknown cid and counts as one). Failures (5xx, timeouts after 5 s, refused connections), apart: {failures}.\n",
            r.api.paced_rate, r.api.stored_keys, p.p50_ms, p.p95_ms, p.p99_ms, p.max_ms, p.samples
        );
    }
}

/// 7. Cost per million events on AWS.
fn cost(s: &mut String, r: &Report) {
    let _ = writeln!(s, "## 7. Cost per million events on AWS\n");
    let p = &r.prices;
    let _ = writeln!(
        s,
        "Prices ({}, {}): Lambda arm64 ${}/GB-s and ${}/million requests; DynamoDB on-demand ${}/million \
         write units, ${}/million read units; Kinesis ${}/shard-hour and ${}/million PUT payload units; \
         Firehose ${}/GB (records rounded up to 5 KB). Sources: {}. Not re-read online for this run \
         (no network here beyond package registries).\n",
        p.region, p.as_of, p.lambda_arm64_per_gb_s, p.lambda_per_million_requests, p.dynamodb_per_million_write_units,
        p.dynamodb_per_million_read_units, p.kinesis_per_shard_hour, p.kinesis_per_million_put_payload_units,
        p.firehose_per_gb_ingested, p.sources.join(", ")
    );
    let _ = writeln!(s, "| pipeline | mode | DynamoDB | Lambda | Kinesis | Firehose | API | total $ per million events | from |\n|---|---|---|---|---|---|---|---|---|");
    for c in &r.cost {
        let _ = writeln!(
            s,
            "| {} | {} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | **{:.3}** | {} |",
            c.pipeline,
            c.mode,
            c.dynamodb_usd,
            c.lambda_usd,
            c.kinesis_usd,
            c.firehose_usd,
            c.api_usd,
            c.total_usd_per_million_events,
            c.assumptions
        );
    }
}

/// 8. The lake.
fn lake(s: &mut String, r: &Report) {
    if let Some(l) = &r.lake {
        let _ = writeln!(s, "\n## 8. The lake\n");
        let _ = writeln!(
            s,
            "The lake writer's conversion alone, into a folder on local disk, release build: {} archived objects of \
             skewed visits ({} records) converted to Parquet (Snappy) in {:.2} s. Then `tally sql`'s \
             whole path on the local cloud, from a visit's PutRecords acknowledgement to the answer \
             holding it (the stream functions idle, Firehose delivered, the lake writer done, the \
             lake copied, DuckDB), {} probes.\n",
            l.objects,
            l.records,
            l.seconds,
            l.put_to_sql.as_ref().map_or(0, |p| p.samples)
        );
        let _ = writeln!(s, "| figure | value |");
        let _ = writeln!(s, "|---|---|");
        let _ = writeln!(
            s,
            "| conversion | {:.0} records/s, {:.1} MB/s of GZIP input, {:.1} MB/s of JSON |",
            l.records_per_s, l.gzip_mb_per_s, l.json_mb_per_s
        );
        let _ = writeln!(
            s,
            "| Parquet against the GZIP JSON it came from | {} against {} ({:.2}x) |",
            mb(l.parquet_bytes as u64),
            mb(l.gzip_bytes as u64),
            l.parquet_to_gzip
        );
        let p = l.put_to_sql.as_ref();
        let _ = writeln!(
            s,
            "| put to `tally sql` | p50 {} ms, max {} ms |",
            opt(p.map(|p| p.p50_ms), 0),
            opt(p.map(|p| p.max_ms), 0)
        );
    }
}

/// The row comparing a pipeline's requests per record with the per-record baseline, if both ran.
fn requests_row(requests: &[RequestCount], noun: &str, plural: &str) -> String {
    let find = |mode: &str| requests.iter().find(|c| c.mode == mode);
    let (Some(a), Some(b)) = (find("per-key"), find("per-record")) else {
        return String::new();
    };
    format!(
        "| DynamoDB requests per {noun} ({} {plural}) | {:.3} against {:.3} per-record: {:.2}x fewer |\n",
        a.events,
        a.dynamodb_per_event,
        b.dynamodb_per_event,
        b.dynamodb_per_event / a.dynamodb_per_event.max(1e-9)
    )
}

/// What AWS's Clickstream Analytics publishes for its ingestion module (ALB, ECS on EC2, Kinesis,
/// S3; 10 events a request; us-east-1, on demand), per month at each request rate: (requests/s,
/// Kinesis provisioned, Kinesis on-demand), USD. Source: its implementation guide, "Cost"
/// (awslabs/clickstream-analytics-on-aws, docs/en/plan-deployment/cost.md).
const CLICKSTREAM_INGESTION: [(f64, f64, f64); 3] = [
    (10.0, 165.0, 181.0),
    (100.0, 195.0, 284.0),
    (1000.0, 568.0, 1439.0),
];

/// The section on the mobile events platform.
fn app_events(f: &super::events::EventFigures, costs: &[super::cost::Cost]) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "\n## 11. Mobile events\n");
    let _ = writeln!(
        s,
        "A generated fleet's events (`tally gen events`' shape) through the live metrics \
         (`EventsMetricsFunction`), requests as in figure 1 (the per-record baseline writes each \
         event's id and each minute bucket on its own). `/collect` is loaded on a fresh cloud (its \
         DynamoDB Local warmed for 15 s by the capacity loop) by \
         {} SDKs at once, {} events a gzip request, for {:.0} s (debug or release as the bench \
         runs; a pool of function instances, as Lambda's); freshness is a probe event's `/collect` 200 to \
         `GET /api/v1/events/metrics` counting it, one probe at a time during the load.\n",
        f.collect.concurrency, f.collect.events_per_request, f.collect.seconds
    );
    let _ = writeln!(s, "| figure | value |");
    let _ = writeln!(s, "|---|---|");
    s.push_str(&requests_row(&f.requests, "event", "events"));
    let c = &f.collect;
    let l = c.latency.as_ref();
    let _ = writeln!(
        s,
        "| `/collect` at concurrency {} | {:.0} events/s ({:.0} requests/s), latency p50 {} ms, p99 {} ms, {} failed |",
        c.concurrency,
        c.events_per_s,
        c.requests_per_s,
        opt(l.map(|l| l.p50_ms), 1),
        opt(l.map(|l| l.p99_ms), 1),
        c.failed
    );
    let _ = writeln!(
        s,
        "| freshness, `/collect` to the metrics API | {} |",
        freshness_cell(f.freshness.as_ref(), f.freshness_unanswered)
    );
    if let Some(ours) = costs
        .iter()
        .find(|c| c.pipeline == "events" && c.mode == "per-key")
    {
        let ingest = ours.api_usd + ours.kinesis_usd + ours.firehose_usd;
        let _ = writeln!(
            s,
            "| tally per million events (section 7) | **{:.3}** in all; ingestion alone (API, Kinesis, Firehose) {:.3} |",
            ours.total_usd_per_million_events, ingest
        );
    }
    let month = 30.0 * 86_400.0;
    let theirs: Vec<String> = CLICKSTREAM_INGESTION
        .iter()
        .map(|(rps, provisioned, on_demand)| {
            let millions = rps * 10.0 * month / 1e6;
            format!(
                "{:.0} events/s: {:.3} to {:.3}",
                rps * 10.0,
                provisioned / millions,
                on_demand / millions
            )
        })
        .collect();
    let _ = writeln!(
        s,
        "| Clickstream Analytics' published ingestion, $ per million events | {} (its fixed ALB and EC2 cost spread over the events; it answers before the data is in Kinesis) |",
        theirs.join("; ")
    );
    s
}

/// The section on the RSVP analytics.
fn rsvp(f: &super::rsvp::RsvpFigures) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "\n## 9. RSVP analytics\n");
    let _ = writeln!(
        s,
        "Generated RSVPs (`tally gen rsvps`' shape: Zipf popularity, 7% later versions, automated \
         members) through `RsvpStatsFunction` on the local cloud. Requests as in figure 1, the \
         per-record baseline writing each record's version, minute and totals on its own. Two \
         sustained runs feed `RsvpStream`, each on a fresh cloud (DynamoDB Local warmed for 15 s by \
         the capacity loop): at the target rate, and at a \
         rate the local cloud keeps up with; freshness is a \
         probe RSVP's PutRecords acknowledgement to `GET /api/v1/rsvp/stats` showing it (each \
         probe in a minute of its own, which ends the window once counted), every 250 ms under \
         the load. Each new RSVP costs one conditional write (its version fact), and the stream has \
         one shard, so one instance of the function at a time (as on AWS, where each shard gets \
         its own) against DynamoDB Local (see the emulators' capacity in section 2 and the \
         function's warm time in section 4): the sustained rate here is bounded by those. The conversion is the \
         lake writer's, into a folder on local disk, release build: RSVP lines into the seven tables, each a new file \
         of the conversion's rows (merge on read) and the compaction it starts.\n"
    );
    let _ = writeln!(s, "| figure | value |");
    let _ = writeln!(s, "|---|---|");
    s.push_str(&requests_row(&f.requests, "RSVP", "RSVPs"));
    for t in [&f.sustained, &f.light] {
        let rate = t.target_events_per_s;
        let _ = writeln!(
            s,
            "| RSVPs/s at {rate:.0}/s offered ({} RSVPs, {:.0}/s reached) | {:.0}/s; {} ({:.0} s to drain, most waiting {}) |",
            t.events,
            t.offered_events_per_s,
            t.events_per_s,
            if t.settled { "caught up" } else { "**did not catch up**" },
            t.drain_seconds,
            t.max_backlog
        );
        let _ = writeln!(
            s,
            "| nothing lost at {rate:.0}/s | {}: {} |",
            match t.nothing_lost {
                Some(true) => "yes",
                Some(false) => "**no**",
                None => "not checked (did not catch up)",
            },
            t.check
        );
        let _ = writeln!(
            s,
            "| freshness at {rate:.0}/s, put to the stats API | {} |",
            freshness_cell(t.freshness.as_ref(), t.freshness_unanswered)
        );
    }
    let e = &f.etl;
    let _ = writeln!(
        s,
        "| 3NF conversion ({} RSVPs in {} objects) | {:.0} RSVPs/s, {:.1} MB/s of GZIP input |",
        e.records, e.objects, e.records_per_s, e.gzip_mb_per_s
    );
    let _ = writeln!(
        s,
        "| tables written | {} |",
        e.rows
            .iter()
            .map(|(t, n)| format!("{t} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let _ = writeln!(
        s,
        "| Parquet against the GZIP JSON | {} against {} ({:.2}x) |",
        mb(e.parquet_bytes as u64),
        mb(e.gzip_bytes as u64),
        e.parquet_to_gzip
    );
    s
}

/// The section on `make deploy-build`, from `bench/deploy-build.json`.
pub fn deploy_build(d: &serde_json::Value) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "\n## 10. The deployed build\n");
    let _ = writeln!(
        s,
        "`make deploy-build` ({}): `{}` from {} on {} cores took {:.1} minutes. Each artefact is \
         the `bootstrap` SAM packages, and that zipped as Lambda takes it.\n",
        d["date"].as_str().unwrap_or(""),
        d["command"].as_str().unwrap_or(""),
        if d["from_scratch"] == true {
            "scratch (every dependency compiled for arm64)"
        } else {
            "a warm target directory"
        },
        d["cores"],
        d["seconds"].as_f64().unwrap_or(0.0) / 60.0
    );
    let _ = writeln!(s, "| function | arch | bootstrap | zipped |");
    let _ = writeln!(s, "|---|---|---|---|");
    for (name, f) in d["functions"].as_object().into_iter().flatten() {
        let _ = writeln!(
            s,
            "| {name} | {} | {} | {} |",
            f["arch"].as_str().unwrap_or(""),
            mb(f["bootstrap_bytes"].as_u64().unwrap_or(0)),
            mb(f["zip_bytes"].as_u64().unwrap_or(0))
        );
    }
    s
}
