//! `tally put STREAM [FILE]`: each line one record, as is, keyed by the stream's partition-key
//! field (the template's `Metadata.Tally.PartitionKey`), with progress and a summary.
//! `tally put STREAM --from ws://...` (or wss://): each websocket message one record, until Ctrl-C (the
//! producer in `meetup/producer.rs`).

use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context as _, Result};

use crate::{stream_target, Context, StreamTarget};
use tally_cloud::kinesis::{partition_key, put_all};
use tally_gen::meetup::producer::{check_url, produce, ProducerOptions, ProducerProgress};

#[derive(clap::Args)]
pub struct Args {
    /// Stream logical ID (VisitsStream) or physical name.
    pub stream: String,
    /// File of records, one a line; `-` or nothing for standard input.
    pub file: Option<PathBuf>,
    /// Record field to use as partition key (default: the stream's key in template.yaml).
    #[arg(long)]
    pub partition_key: Option<String>,
    /// Read records from this websocket (ws:// or wss://HOST:PORT/PATH) until Ctrl-C, instead of
    /// a file.
    #[arg(long, value_name = "URL", conflicts_with = "file")]
    pub from: Option<String>,
    /// With --from: stop after this many records.
    #[arg(long, requires = "from")]
    pub max_records: Option<u64>,
}

pub async fn run(args: Args, ctx: &Context) -> Result<()> {
    if let Some(url) = &args.from {
        check_url(url)?;
    }
    let target = stream_target(ctx, &args.stream).await?;
    let field = args
        .partition_key
        .clone()
        .or_else(|| target.facts.as_ref().and_then(|f| f.partition_key.clone()));
    if let Some(url) = &args.from {
        return from_websocket(url, &args, &target, field).await;
    }
    let lines: Vec<String> = match &args.file {
        Some(p) if p.as_os_str() != "-" => std::fs::read_to_string(p)
            .with_context(|| format!("cannot read {}", p.display()))?
            .lines()
            .map(String::from)
            .collect(),
        _ => std::io::stdin()
            .lock()
            .lines()
            .collect::<std::io::Result<_>>()
            .context("cannot read standard input")?,
    };
    let entries: Vec<(String, &[u8])> = lines
        .iter()
        .filter(|l| !l.is_empty())
        .map(|l| (partition_key(l, field.as_deref()), l.as_bytes()))
        .collect();
    let skipped = lines.len() - entries.len();
    let bar = if std::io::stderr().is_terminal() {
        let b = indicatif::ProgressBar::new(entries.len() as u64);
        b.set_style(
            indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} records {per_sec}")
                .expect("valid template"),
        );
        b
    } else {
        indicatif::ProgressBar::hidden()
    };
    let started = Instant::now();
    let kinesis = &target.clients.kinesis;
    let outcome = put_all(kinesis, &target.name, &entries, |o| {
        bar.set_position(o.accepted as u64)
    })
    .await;
    bar.finish_and_clear();
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "put {} records to {} ({}): {} accepted, {} failed, {} retried, {skipped} empty lines skipped, in {secs:.2}s ({:.0} records/s)",
        entries.len(),
        target.logical_id,
        target.name,
        outcome.accepted,
        outcome.refused,
        outcome.retried,
        outcome.accepted as f64 / secs.max(1e-6)
    );
    if outcome.refused > 0 {
        bail!("{} records were not accepted", outcome.refused);
    }
    Ok(())
}

/// The producer: a websocket into the stream until Ctrl-C (the first stops and puts what is held,
/// a second one quits at once) or `--max-records`.
async fn from_websocket(
    url: &str, args: &Args, target: &StreamTarget, field: Option<String>,
) -> Result<()> {
    let mut options = ProducerOptions::new(url, &target.name);
    options.partition_field = field;
    options.max_records = args.max_records;
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let (progress_tx, mut progress) = tokio::sync::watch::channel(ProducerProgress::default());
    let started = Instant::now();
    let terminal = std::io::stderr().is_terminal();
    eprintln!(
        "reading {url} into {} ({}); Ctrl-C stops after putting what is held",
        target.logical_id, target.name
    );
    let report = tokio::spawn(async move {
        let mut last = Instant::now();
        let mut last_error = None;
        while progress.changed().await.is_ok() {
            let p = progress.borrow_and_update().clone();
            if p.last_error != last_error {
                if let Some(e) = &p.last_error {
                    eprintln!("{}{e}; retrying", if terminal { "\n" } else { "" });
                }
                last_error = p.last_error.clone();
            }
            // A line every second on a terminal, every 10 seconds in a log.
            let every = if terminal { 1 } else { 10 };
            if last.elapsed().as_secs() >= every {
                let line = format!(
                    "{} received, {} put, {} ({} reconnects), {:.0} records/s",
                    p.received,
                    p.put,
                    if p.connected {
                        "connected"
                    } else {
                        "connecting"
                    },
                    p.connections.saturating_sub(1),
                    p.put as f64 / started.elapsed().as_secs_f64().max(1e-3)
                );
                if terminal {
                    eprint!("\r{line}   ");
                } else {
                    eprintln!("{line}");
                }
                last = Instant::now();
            }
        }
    });
    let kinesis = target.clients.kinesis.clone();
    let produce = produce(&kinesis, &options, stop, progress_tx);
    tokio::pin!(produce);
    let outcome = tokio::select! {
        done = &mut produce => done,
        _ = tokio::signal::ctrl_c() => {
            eprintln!("{}stopping: putting what is held (Ctrl-C again quits at once)", if terminal { "\n" } else { "" });
            let _ = stop_tx.send(true);
            tokio::select! {
                done = &mut produce => done,
                _ = tokio::signal::ctrl_c() => bail!("quit before putting everything held"),
            }
        }
    };
    let _ = report.await;
    let p = outcome?;
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "{}put {} records to {} ({}) from {url}: {} received over {} connections, in {secs:.2}s ({:.0} records/s)",
        if terminal { "\n" } else { "" },
        p.put,
        target.logical_id,
        target.name,
        p.received,
        p.connections,
        p.put as f64 / secs.max(1e-6)
    );
    if p.put != p.received {
        bail!(
            "{} of {} received records were not put",
            p.received - p.put,
            p.received
        );
    }
    Ok(())
}
