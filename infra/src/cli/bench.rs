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
}

pub async fn run(args: Args, ctx: &Context) -> Result<()> {
    let root = ctx.root.clone();
    let bin_dir = args
        .bin_dir
        .or_else(own_bin_dir)
        .unwrap_or_else(|| root.join("target/release"));
    let report = crate::bench::run(BenchOptions {
        root: root.clone(),
        bin_dir,
        quick: args.quick,
        params: super::parse_params(&args.params)?,
    })
    .await?;
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
