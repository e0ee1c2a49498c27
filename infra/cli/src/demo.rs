//! `tally demo`: start the local cloud, put each pipeline's sample (the template's
//! `Metadata.Tally.Sample`), wait until the pipelines are idle, show what came out of each, show
//! that bad input is a 4xx, query the lake, list the archive, stop.

use std::time::{Duration, Instant};
use tally_cloud::clients::failed;

use anyhow::{anyhow, bail, Context as _, Result};

use super::sql::{print_answer, Format};
use crate::{CloudArgs, Context};
use tally_cloud::cloud::LocalCloud;
use tally_cloud::emulators::port_is_free;
use tally_cloud::http::http_get;
use tally_cloud::kinesis::partition_key;
use tally_cloud::kinesis::{put_all, read_stream};
use tally_control::athena::{copy_lake, query_lake};
use tally_stack::pipelines::{pipelines, Pipeline, StreamFacts};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub cloud: CloudArgs,
}

pub async fn run(args: Args, ctx: &Context) -> Result<()> {
    ctx.local_only("demo")?;
    let mut opts = args.cloud.options(ctx)?;
    // The demo runs beside a `make up` too: any free ports.
    if !port_is_free(opts.edge_port) {
        opts.edge_port = 0;
    }
    if !port_is_free(opts.api_port) {
        opts.api_port = 0;
    }
    println!("starting the local cloud from template.yaml ...");
    let started = Instant::now();
    let mut cloud = LocalCloud::start(opts).await?;
    println!(
        "  up in {:.1}s: edge {}, API {}",
        started.elapsed().as_secs_f64(),
        cloud.edge_url,
        cloud.api_url
    );
    let outcome = steps(&mut cloud, ctx).await;
    if let Some(iam) = cloud.router.authorizer() {
        let denied = iam.ledger().denied;
        println!(
            "IAM: every call of the functions, mappings and deliveries checked against its role's policies in the template: {} refused{}",
            denied.len(),
            if denied.is_empty() { "" } else { " (the lines `iam: denied` above)" }
        );
    }
    cloud.stop().await;
    outcome
}

/// Puts a stream's sample file; returns its records.
async fn put_sample(
    cloud: &LocalCloud, ctx: &Context, stream: &StreamFacts,
) -> Result<Vec<String>> {
    let Some(sample) = &stream.sample else {
        return Ok(Vec::new());
    };
    let file = ctx.root.join(sample);
    let text = std::fs::read_to_string(&file)
        .with_context(|| format!("cannot read {}", file.display()))?;
    let lines: Vec<String> = text
        .lines()
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect();
    let entries: Vec<(String, &[u8])> = lines
        .iter()
        .map(|l| {
            (
                partition_key(l, stream.partition_key.as_deref()),
                l.as_bytes(),
            )
        })
        .collect();
    let name = cloud.template.physical_name(&stream.logical_id);
    let outcome = put_all(&cloud.clients.kinesis, &name, &entries, |_| {}).await;
    if outcome.refused > 0 {
        bail!("{} refused {} records", stream.logical_id, outcome.refused);
    }
    println!(
        "put {} records ({}) to {}",
        lines.len(),
        file.display(),
        stream.logical_id
    );
    Ok(lines)
}

/// Every pipeline's sample into its source streams (the app events through `/collect`), then
/// waits until every function has consumed what came of them. Returns each pipeline's records.
pub async fn feed(cloud: &mut LocalCloud, ctx: &Context) -> Result<Vec<(Pipeline, Vec<String>)>> {
    let mut samples = Vec::new();
    for p in pipelines(&cloud.template)? {
        let mut lines = Vec::new();
        for source in &p.sources {
            lines.extend(put_sample(cloud, ctx, source).await?);
        }
        if p.name == "events" {
            post_events(cloud).await?;
        }
        samples.push((p, lines));
    }
    cloud.wait_idle(Duration::from_secs(120)).await?;
    Ok(samples)
}

async fn steps(cloud: &mut LocalCloud, ctx: &Context) -> Result<()> {
    let samples = feed(cloud, ctx).await?;
    println!("pipeline caught up:");
    for m in &cloud.mappings {
        let s = m.stats.lock().unwrap().clone();
        let host = cloud.functions[&m.spec.function].stats();
        // Stream names are `<stack>-<LogicalId>`: the logical id says enough.
        let stream = m.spec.stream_name.rsplit('-').next().unwrap_or_default();
        println!(
            "  {:<22} <- {:<21} {:>4} invocations, {:>5} records, cold start init {:.1} ms",
            m.spec.function, stream, s.invocations, s.records, host.init_ms_max
        );
    }
    for (pipeline, sample) in samples.iter().filter(|(p, _)| !p.sources.is_empty()) {
        match pipeline.name.as_str() {
            "gender" => show_lookups(cloud, sample).await?,
            "rsvp" => show_rsvp_stats(cloud).await?,
            "events" => show_event_metrics(cloud).await?,
            _ => show_outputs(cloud, pipeline).await?,
        }
    }
    let (status, body) = http_get(&format!(
        "{}/api/v1/getGender/C100?model=MODEL9",
        cloud.api_url
    ))
    .await?;
    println!("\nbad input is a 4xx with a JSON error: GET ...?model=MODEL9 -> {status} {body}");
    show_lake(cloud, ctx).await?;
    show_archive(cloud).await
}

/// The local cloud's schedule `id` fired now, as EventBridge Scheduler fires it: its function's
/// answer.
async fn fire(cloud: &LocalCloud, id: &str) -> Result<serde_json::Value> {
    let schedule = cloud
        .schedules
        .get(id)
        .ok_or_else(|| anyhow!("the template has no schedule {id}"))?;
    let answer = schedule.fire().await.map_err(|e| anyhow!(e))?;
    Ok(serde_json::from_slice(&answer)?)
}

/// Seed 004's ML step, as its schedule runs it (`tally clusters` invokes the same function).
async fn show_clusters(cloud: &LocalCloud) -> Result<()> {
    let answer = fire(cloud, "GroupClustersSchedule").await?;
    println!(
        "
the ML step: tally clusters\n{}",
        crate::clusters::report(&answer)
    );
    Ok(())
}

/// Seed 002's extractor, as its schedule runs it (`tally extract` invokes the same function).
async fn show_extract(cloud: &LocalCloud) -> Result<()> {
    let answer = fire(cloud, "CoreExtractorSchedule").await?;
    println!("\nthe core database into the dimensions: tally extract");
    for line in crate::core_db::report(&answer) {
        println!("  {line}");
    }
    Ok(())
}

/// The dashboard's warehouse panel, as its schedule refreshes it.
async fn show_vendor_opens(cloud: &LocalCloud) -> Result<()> {
    let answer = fire(cloud, "VendorOpensSchedule").await?;
    println!(
        "\nthe dashboard's warehouse panel (VendorOpensFunction, {} flyer opens on {}, {} of \
         flyers the core database does not know):",
        answer["opens"],
        answer["day"].as_str().unwrap_or("?"),
        answer["unknown"]
    );
    let count = |v: &serde_json::Value, one: &str| {
        let n = v.as_u64().unwrap_or(0);
        format!("{n} {one}{}", if n == 1 { "" } else { "s" })
    };
    for v in answer["vendors"].as_array().into_iter().flatten() {
        println!(
            "  {:>9} of {:>9}  {} (#{})",
            count(&v["opens"], "open"),
            count(&v["flyers"], "flyer"),
            v["name"].as_str().unwrap_or("(no name)"),
            v["vendor_id"]
        );
    }
    Ok(())
}

/// A few of `queries/` over the lake, as `tally sql --file` answers them.
async fn show_lake(cloud: &LocalCloud, ctx: &Context) -> Result<()> {
    cloud.flush(Duration::from_secs(120)).await?;
    show_clusters(cloud).await?;
    show_extract(cloud).await?;
    show_vendor_opens(cloud).await?;
    let copy = ctx
        .root
        .join(".tally/lake")
        .join(&cloud.template.stack_name);
    let bucket = cloud.template.physical_name("ArchiveBucket");
    copy_lake(&cloud.clients.s3, &bucket, &copy).await?;
    for query in [
        "queries/gender/visits_per_day_and_gender.sql",
        "queries/rules/alerts_per_rule_per_day.sql",
        "queries/lake/bad_records_per_source_and_reason.sql",
        "queries/rsvp/most_active_member.sql",
        "queries/rsvp/most_popular_group.sql",
        "queries/rsvp/suspected_bots.sql",
        "queries/rsvp/cluster_names.sql",
        "queries/rsvp/cluster_model.sql",
        "queries/events/events_per_type_per_day.sql",
        "queries/events/funnel.sql",
        "queries/events/top_clips.sql",
        "queries/events/flyer_opens_per_vendor.sql",
    ] {
        let text = std::fs::read_to_string(ctx.root.join(query))
            .with_context(|| format!("cannot read {query}"))?;
        println!("\nthe lake: tally sql --file {query}");
        print_answer(&query_lake(&ctx.root, &copy, &text)?, Format::Table)?;
    }
    Ok(())
}

/// The gender pipeline: every sample cid's answer from each model, through the API.
async fn show_lookups(cloud: &LocalCloud, sample: &[String]) -> Result<()> {
    let mut cids: Vec<String> = sample
        .iter()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["cid"].as_str().map(String::from))
        .collect();
    cids.sort();
    cids.dedup();
    println!(
        "\nlookups from the API ({}/api/v1/getGender/CID?model=...):",
        cloud.api_url
    );
    println!(
        "  {:<8} {:<16} {:<16} {:<16}",
        "cid", "MODEL1 (last)", "MODEL2 (all)", "MODEL3 (7 days)"
    );
    for cid in &cids {
        let mut row = Vec::new();
        for model in ["MODEL1", "MODEL2", "MODEL3"] {
            let url = format!("{}/api/v1/getGender/{cid}?model={model}", cloud.api_url);
            let (status, body) = http_get(&url).await?;
            let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
            row.push(match (status, v["gndr"].as_str()) {
                (200, Some(g)) if v["male"].is_u64() => {
                    format!("{g} ({}m/{}f)", v["male"], v["female"])
                }
                (200, Some(g)) => g.to_string(),
                (s, _) => format!("{s}"),
            });
        }
        println!("  {:<8} {:<16} {:<16} {:<16}", cid, row[0], row[1], row[2]);
    }
    Ok(())
}

/// Registers an app and posts a small generated fleet's events to `/collect`, as its SDKs would.
async fn post_events(cloud: &LocalCloud) -> Result<()> {
    use tally_events::collect::{key_hash, App};
    let registry = tally_aws::DynamoAppKeys::on(tally_aws::DynamoTable::new(
        cloud.clients.dynamodb.clone(),
        cloud.template.physical_name("AppsTable"),
    ));
    let key = tally_aws::new_app_key()?;
    let app = App {
        app_id: tally_aws::app_id_for("Demo Flyers")?,
        name: "Demo Flyers".into(),
        origins: Vec::new(),
    };
    registry
        .register(&key_hash(&key), &app)
        .await
        .map_err(|e| anyhow!("registering the demo app: {e}"))?;
    let sender = tally_gen::mobile::Sender {
        url: format!("{}/collect", cloud.api_url),
        key,
        gzip: true,
        max_attempts: 5,
    };
    // Activity of the last quarter hour, so that the dashboard's panels of the last hour and of
    // today show it.
    let mut fleet = tally_gen::mobile::Fleet::new(12, 15, 5);
    fleet.start = chrono::Utc::now() - chrono::Duration::minutes(15);
    let mut report = tally_gen::mobile::SendReport::default();
    for batch in tally_gen::mobile::batches(&fleet) {
        report.add(sender.send(&batch.events).await);
    }
    if let Some(why) = report.failed.first() {
        bail!("POST /collect failed: {why}");
    }
    println!(
        "posted {} events of app {} to POST /collect in {} gzip batches: {} accepted, rejected: {}",
        report.events,
        app.app_id,
        report.batches,
        report.accepted,
        report.rejections()
    );
    Ok(())
}

/// A 200 answer's JSON, or why there is none.
async fn get_json(url: &str) -> Result<serde_json::Value> {
    let (status, body) = http_get(url).await?;
    if status != 200 {
        bail!("GET {url} answered {status}: {body}");
    }
    serde_json::from_str(&body).map_err(|e| anyhow!("GET {url} answered 200 with no JSON: {e}"))
}

/// The events' live metrics (all apps, the last hour) as the API answers them.
async fn show_event_metrics(cloud: &LocalCloud) -> Result<()> {
    let url = format!("{}/api/v1/events/metrics?minutes=60", cloud.api_url);
    let m = get_json(&url).await?;
    println!(
        "
app events of the last hour (GET {url}): {} events, each event_id once",
        m["events"]
    );
    for (t, n) in m["totals"].as_object().into_iter().flatten() {
        println!("  {n:>5}  {t}");
    }
    Ok(())
}

/// The RSVP statistics as the API answers them, and where the dashboard is.
async fn show_rsvp_stats(cloud: &LocalCloud) -> Result<()> {
    let url = format!("{}/api/v1/rsvp/stats", cloud.api_url);
    let stats = get_json(&url).await?;
    let totals = &stats["totals"];
    println!(
        "
RSVP statistics (GET {url}): {} RSVPs, {} yes, {} no by their latest response",
        totals["rsvps"], totals["yes"], totals["no"]
    );
    println!(
        "  top events of the window {} to {} (yes RSVPs):",
        stats["window_start"].as_str().unwrap_or("-"),
        stats["window_end"].as_str().unwrap_or("-")
    );
    for e in stats["top_events"].as_array().into_iter().flatten() {
        println!(
            "  {:>4}  {} (#{})",
            e["yes"],
            e["event_name"].as_str().unwrap_or_default(),
            e["event_id"].as_str().unwrap_or_default()
        );
    }
    let busy: Vec<String> = stats["per_minute"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|m| m["rsvps"].as_u64() > Some(0))
        .map(|m| {
            let minute = m["minute"].as_str().unwrap_or_default();
            format!("{} {}", minute.get(11..16).unwrap_or(minute), m["rsvps"])
        })
        .collect();
    println!("  RSVPs per minute: {}", busy.join(", "));
    println!(
        "  the dashboard: {}/dashboard (live while `make up` runs)",
        cloud.api_url
    );
    Ok(())
}

/// Any other pipeline: every record of its output streams (for the rules, their alerts).
async fn show_outputs(cloud: &LocalCloud, pipeline: &Pipeline) -> Result<()> {
    match pipeline.name.as_str() {
        "rules" => println!("\nalerts, each once, with the count at which its rule first held:"),
        other => println!("\n{other}: what its functions published"),
    }
    for output in &pipeline.outputs {
        let name = cloud.template.physical_name(&output.logical_id);
        for r in read_stream(&cloud.clients.kinesis, &name).await? {
            println!(
                "  {:<22} {}",
                output.logical_id,
                String::from_utf8_lossy(&r.data)
            );
        }
    }
    Ok(())
}

/// What Firehose archived and the dead letters, after the buffers are delivered.
async fn show_archive(cloud: &mut LocalCloud) -> Result<()> {
    let bucket = cloud.template.physical_name("ArchiveBucket");
    cloud.drain().await;
    let listed = cloud
        .clients
        .s3
        .list_objects_v2()
        .bucket(&bucket)
        .send()
        .await
        .map_err(failed(format!("listing s3://{bucket}")))?;
    let (mut raw, mut dead) = (0, 0);
    for o in listed.contents() {
        let key = o.key().unwrap_or_default();
        if key.starts_with("raw/") {
            raw += 1;
            println!("archived: s3://{bucket}/{key}");
        } else if key.starts_with("dead-letter/") {
            dead += 1;
        }
    }
    println!(
        "dead letters (one per rejected record and consuming function): {dead} under s3://{bucket}/dead-letter/"
    );
    if raw == 0 {
        bail!("Firehose archived nothing");
    }
    println!("\ndemo done: stopping the local cloud");
    Ok(())
}
