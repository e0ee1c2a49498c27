//! `tally bench`: every figure of BENCHMARKS.md, written there and to bench/report.json.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};

use crate::{own_bin_dir, Context};
use tally_bench::{kept, report, BenchOptions};

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
    /// Only one section: the overloaded throughput runs (gender, rules, both) or the API under
    /// load, printed and not written, to compare settings or builds in minutes; or the soak,
    /// written to the report's `soak` key and BENCHMARKS.md.
    #[arg(long, value_enum)]
    pub only: Option<Section>,
    /// How long each run of `--only throughput` feeds (default 60; the full bench feeds 120 s),
    /// or `--only soak` (default 600).
    #[arg(long)]
    pub seconds: Option<f64>,
    /// Events a second of `--only soak`, all pipelines together (default: half the rate they
    /// sustained together in bench/report.json).
    #[arg(long)]
    pub rate: Option<f64>,
    /// Faults for every cloud of `--only throughput` or `--only soak` (as `tally up --faults`),
    /// to measure what they cost.
    #[arg(long, value_name = "SPEC")]
    pub faults: Option<String>,
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum Section {
    Throughput,
    Api,
    Soak,
    /// The overloaded runs without and with the faults of `--faults` (default: the mix),
    /// written to the report's `faults` key and BENCHMARKS.md.
    Faults,
    /// The lake at 1, 10 and 30 million events and RSVPs (`--quick`: 0.1 and 0.3 million),
    /// written to the report's `lake_scaling`, `lake_query_scans` and `lake_day` keys.
    #[value(name = "lake_scaling")]
    LakeScaling,
}

/// The mix `--only faults` measures unless `--faults` says otherwise.
const FAULTS_MIX: &str =
    "dynamodb:throttle=0.1,kinesis:throttle=0.1,s3:error=0.05,lambda:crash=0.02";

/// Writes a kept run's figures (`bench::kept`) into the report and BENCHMARKS.md.
fn write_kept(
    key: &str, figures: &serde_json::Value, report: &Path, markdown: &Path,
) -> Result<()> {
    let old = std::fs::read_to_string(report).unwrap_or_else(|_| "{}".into());
    let pretty = serde_json::to_string_pretty(figures)?;
    std::fs::write(report, kept::with_member(&old, key, &pretty))
        .with_context(|| format!("cannot write {}", report.display()))?;
    let old = std::fs::read_to_string(markdown).unwrap_or_default();
    std::fs::write(
        markdown,
        kept::with_section(&old, key, &kept::section(key, figures)),
    )
    .with_context(|| format!("cannot write {}", markdown.display()))?;
    println!("wrote {} and {}", report.display(), markdown.display());
    Ok(())
}

pub async fn run(args: Args, ctx: &Context) -> Result<()> {
    let root = ctx.root.clone();
    let bin_dir = args
        .bin_dir
        .or_else(own_bin_dir)
        .unwrap_or_else(|| root.join("target/release"));
    let faults = match (&args.faults, args.only) {
        (None, _) => None,
        (Some(spec), Some(Section::Throughput | Section::Soak | Section::Faults)) => Some(
            tally_cloud::faults::FaultSpec::parse(spec)
                .map_err(|e| anyhow::anyhow!("--faults: {e}"))?,
        ),
        (Some(_), _) => {
            anyhow::bail!("--faults is for `--only throughput`, `--only soak` or `--only faults`")
        }
    };
    let options = BenchOptions {
        faults,
        root: root.clone(),
        bin_dir,
        quick: args.quick,
        params: super::parse_params(&args.params)?,
    };
    let seconds = match (args.only, args.seconds) {
        (Some(Section::Throughput | Section::Faults), s) => s.unwrap_or(60.0),
        (Some(Section::Soak), s) => s.unwrap_or(600.0),
        (_, None) => 0.0,
        (_, Some(_)) => {
            anyhow::bail!("--seconds is for `--only throughput`, `--only soak` or `--only faults`")
        }
    };
    if args.only.is_some()
        && seconds <= 0.0
        && !matches!(args.only, Some(Section::Api | Section::LakeScaling))
    {
        anyhow::bail!("--seconds must be above 0 (got {seconds})");
    }
    if args.rate.is_some() && !matches!(args.only, Some(Section::Soak)) {
        anyhow::bail!("--rate is for `--only soak`");
    }
    let report_path = root.join(&args.out);
    let markdown_path = root.join(&args.markdown);
    let old_report: serde_json::Value = std::fs::read_to_string(&report_path)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default();
    if let Some(Section::Soak) = args.only {
        let rate = args
            .rate
            .unwrap_or_else(|| tally_bench::soak::default_rate(&root));
        if rate <= 0.0 {
            anyhow::bail!("--rate must be above 0 (got {rate})");
        }
        println!("soak: all four pipelines at {rate:.1} events/s for {seconds:.0} s, then until they settle");
        let figures = tally_bench::soak::soak(&options, seconds, rate).await?;
        let figures = serde_json::to_value(&figures)?;
        println!("{}", serde_json::to_string_pretty(&figures)?);
        write_kept("soak", &figures, &report_path, &markdown_path)?;
        return Ok(());
    }
    if let Some(Section::LakeScaling) = args.only {
        let figures = tally_bench::lake_scaling::lake_scaling(&root, args.quick).await?;
        for (key, value) in [
            ("lake_scaling", serde_json::to_value(&figures.conversions)?),
            (
                "lake_query_scans",
                serde_json::to_value(&figures.query_scans)?,
            ),
            ("lake_day", serde_json::to_value(&figures.day)?),
        ] {
            println!("{key}: {}", serde_json::to_string_pretty(&value)?);
            write_kept(key, &value, &report_path, &markdown_path)?;
        }
        return Ok(());
    }
    if let Some(Section::Faults) = args.only {
        let mut options = options;
        let spec = options
            .faults
            .take()
            .unwrap_or(tally_cloud::faults::FaultSpec::parse(FAULTS_MIX).expect("the mix parses"));
        let figures = tally_bench::faults_cost(options, spec, seconds).await?;
        let figures = serde_json::to_value(&figures)?;
        println!("{}", serde_json::to_string_pretty(&figures)?);
        write_kept("faults", &figures, &report_path, &markdown_path)?;
        return Ok(());
    }
    if let Some(Section::Throughput) = args.only {
        for t in tally_bench::throughput_only(options, seconds).await? {
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
        let api = tally_bench::api_only(options).await?;
        println!("{}", serde_json::to_string_pretty(&api)?);
        return Ok(());
    }
    let report = tally_bench::run(options).await?;
    // Runs of their own (the soak, the faults' cost): a full bench keeps their figures.
    let (json, markdown) = kept::carry_over(
        &old_report,
        serde_json::to_string_pretty(&report)? + "\n",
        report::markdown(&report),
    );
    for (path, text) in [(report_path, json), (markdown_path, markdown)] {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
        println!("wrote {}", path.display());
    }
    Ok(())
}
