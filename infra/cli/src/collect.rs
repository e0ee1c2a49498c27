//! `tally collect FILE --key KEY [--rate R]`: posts NDJSON events to `/collect` as a mobile SDK
//! does (a device's events in gzip batches, the same batch again after a 429, a 503 or a lost
//! connection), with a progress bar and a summary.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _, Result};
use futures_util::StreamExt;

use crate::Context;
use tally_gen::mobile::sender::{sdk_batches, Sender};

#[derive(clap::Args)]
pub struct Args {
    /// NDJSON events (`tally gen events`), `-` for standard input.
    pub file: PathBuf,
    /// The app's key (`tally apps add NAME` prints it).
    #[arg(long, env = "TALLY_APP_KEY", hide_env_values = true)]
    pub key: String,
    /// Events a second, overall (default: as fast as the API answers).
    #[arg(long)]
    pub rate: Option<f64>,
    /// Events per request, at most (an SDK's batch).
    #[arg(long, default_value_t = 50)]
    pub batch: usize,
    /// Requests in flight.
    #[arg(long, default_value_t = 4)]
    pub concurrency: usize,
    /// Send uncompressed JSON.
    #[arg(long)]
    pub no_gzip: bool,
    /// The HTTP API (default: the stack's output `ApiUrl`).
    #[arg(long)]
    pub url: Option<String>,
}

/// The sender for the first batch: fewer, shorter tries.
fn quick_sender(sender: &Sender) -> Sender {
    Sender {
        max_attempts: 2,
        ..sender.clone()
    }
}

pub async fn run(args: Args, ctx: &Context) -> Result<()> {
    if let Some(r) = args.rate {
        if !(r.is_finite() && r > 0.0) {
            bail!("--rate must be a positive number of events a second, not {r}");
        }
    }
    if args.concurrency == 0 {
        bail!("--concurrency must be at least 1");
    }
    let text = if args.file.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin()).context("cannot read standard input")?
    } else {
        std::fs::read_to_string(&args.file)
            .with_context(|| format!("cannot read {}", args.file.display()))?
    };
    let batches = sdk_batches(&text, args.batch)?;
    let total: usize = batches.iter().map(Vec::len).sum();
    let api = match &args.url {
        Some(url) => url.clone(),
        None => ctx
            .deployed()
            .await?
            .outputs
            .get("ApiUrl")
            .cloned()
            .ok_or_else(|| {
                anyhow!(
                    "stack {} has no output ApiUrl: name the API with --url",
                    ctx.stack
                )
            })?,
    };
    let sender = Arc::new(Sender {
        url: format!("{}/collect", api.trim_end_matches('/')),
        key: args.key.clone(),
        gzip: !args.no_gzip,
        max_attempts: 8,
    });
    let bar = indicatif::ProgressBar::new(total as u64).with_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} events {per_sec} eta {eta}")
            .expect("a valid template"),
    );
    // One batch first: a wrong URL or key is one clear line, not a run of retries.
    let mut batches = batches.into_iter();
    let Some(first) = batches.next() else {
        bail!("{} holds no events", args.file.display());
    };
    let probe = quick_sender(&sender).send(&first).await;
    if probe.unreachable {
        bail!(
            "cannot reach {}: is the stack running? Another API: --url",
            sender.url
        );
    }
    if let Some(why) = probe.failed.first() {
        bail!("/collect refused the first batch: {why}");
    }
    let started = Instant::now();
    let mut report = probe;
    let rate = args.rate;
    let mut sent_so_far = 0usize;
    sent_so_far += report.events as usize;
    let scheduled: Vec<(Duration, Vec<serde_json::Value>)> = batches
        .map(|b| {
            // Each batch leaves when the rate allows the events before it.
            let at = rate.map_or(Duration::ZERO, |r| {
                Duration::from_secs_f64(sent_so_far as f64 / r)
            });
            sent_so_far += b.len();
            (at, b)
        })
        .collect();
    let mut results = futures_util::stream::iter(scheduled)
        .map(|(at, events)| {
            let sender = sender.clone();
            async move {
                tokio::time::sleep_until((started + at).into()).await;
                sender.send(&events).await
            }
        })
        .buffer_unordered(args.concurrency);
    bar.inc(report.events);
    while let Some(r) = results.next().await {
        bar.inc(r.events);
        report.add(r);
    }
    bar.finish_and_clear();
    let secs = started.elapsed().as_secs_f64();
    let rejected: u64 = report.rejected.values().sum();
    eprintln!(
        "posted {} events in {} requests in {secs:.1} s ({:.0} events/s): {} accepted, {rejected} rejected ({}), {} retried requests",
        report.events,
        report.batches,
        report.events as f64 / secs.max(0.001),
        report.accepted,
        report.rejections(),
        report.retries
    );
    if !report.failed.is_empty() {
        bail!(
            "{} requests failed for good, the first: {}",
            report.failed.len(),
            report.failed[0]
        );
    }
    Ok(())
}
