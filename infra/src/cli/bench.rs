//! `tally bench`: every figure of BENCHMARKS.md, written there and to bench/report.json.

use std::path::PathBuf;

use anyhow::{Context as _, Result};

use super::{own_bin_dir, Context};
use crate::bench::{report, BenchOptions};

#[derive(clap::Args)]
pub struct Args {
    /// Short runs, to try the bench itself (figures are not comparable).
    #[arg(long)]
    pub quick: bool,
    /// The JSON report.
    #[arg(long, default_value = "bench/report.json")]
    pub out: PathBuf,
    /// The table.
    #[arg(long, default_value = "BENCHMARKS.md")]
    pub markdown: PathBuf,
    #[arg(long, value_name = "DIR")]
    pub bin_dir: Option<PathBuf>,
    /// A template parameter for every cloud the bench starts, to compare settings
    /// (`--param StreamBatchSize=2000`); repeatable.
    #[arg(long = "param", value_name = "NAME=VALUE")]
    pub params: Vec<String>,
    /// Only one section, printed and not written, to compare settings or builds in minutes:
    /// the overloaded throughput runs (gender, rules, both), or the API under load.
    #[arg(long, value_enum)]
    pub only: Option<Section>,
    /// How long each run of `--only throughput` feeds (default 60; the full bench feeds 120 s).
    #[arg(long)]
    pub seconds: Option<f64>,
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum Section {
    Throughput,
    Api,
}

pub async fn run(args: Args, ctx: &Context) -> Result<()> {
    let root = ctx.root.clone();
    let bin_dir = args
        .bin_dir
        .or_else(own_bin_dir)
        .unwrap_or_else(|| root.join("target/release"));
    let options = BenchOptions {
        root: root.clone(),
        bin_dir,
        quick: args.quick,
        params: super::parse_params(&args.params)?,
    };
    let seconds = match (args.only, args.seconds) {
        (Some(Section::Throughput), s) => s.unwrap_or(60.0),
        (_, None) => 0.0,
        (_, Some(_)) => anyhow::bail!("--seconds is for `--only throughput`"),
    };
    if let Some(Section::Throughput) = args.only {
        if seconds <= 0.0 {
            anyhow::bail!("--seconds must be above 0 (got {seconds})");
        }
        for t in crate::bench::throughput_only(options, seconds).await? {
            println!(
                "{:<15} {:>6.0} events/s of {:.0} offered, settled {}, DynamoDB {:.0} requests/s; cores: {}",
                t.pipelines,
                t.events_per_s,
                t.offered_events_per_s,
                t.settled,
                t.dynamodb_requests_per_s,
                t.cpu
                    .cores
                    .iter()
                    .take(4)
                    .map(|(kind, cores)| format!("{kind} {cores:.2}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        return Ok(());
    }
    if let Some(Section::Api) = args.only {
        let api = crate::bench::api_only(options).await?;
        println!("{}", serde_json::to_string_pretty(&api)?);
        return Ok(());
    }
    let report = crate::bench::run(options).await?;
    let json = serde_json::to_string_pretty(&report)?;
    for (path, text) in [
        (root.join(&args.out), json + "\n"),
        (root.join(&args.markdown), report::markdown(&report)),
    ] {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
        println!("wrote {}", path.display());
    }
    Ok(())
}
