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
}

/// The soak's section of BENCHMARKS.md, between these lines (the full bench keeps it).
const SOAK_BEGIN: &str = "<!-- soak: tally bench --only soak -->";
const SOAK_END: &str = "<!-- /soak -->";

fn soak_markdown(soak: &serde_json::Value) -> String {
    let mut rows = String::new();
    if let Some(growth) = soak["rss_growth_percent"].as_object() {
        for (kind, pct) in growth {
            let mb = &soak["rss_mb"][kind];
            let late = &soak["rss_growth_second_half_percent"][kind];
            rows.push_str(&format!(
                "| {kind} | {} | {} | {} | {pct}% | {late}% |\n",
                mb[0], mb[1], mb[2]
            ));
        }
    }
    let mut pipelines = String::new();
    if let Some(p) = soak["pipelines"].as_object() {
        for (name, v) in p {
            pipelines.push_str(&format!("| {name} | {} | {} |\n", v[0], v[1]));
        }
    }
    format!(
        "{SOAK_BEGIN}\n## Soak: all four pipelines at once, for {:.0} s\n\n\
         Fed {} events at {:.1} events/s in all ({:.1} asked: half of what every pipeline \
         sustained together), {} build of the functions. **Lost: {}.** Every pipeline had \
         counted everything {:.1} s after the last record was fed.\n\n\
         | pipeline | fed | counted |\n|---|---|---|\n{pipelines}\n\
         Resident memory after the first fifth of the run, at half time and at its end (MB; \
         functions per instance). Memory that only warms up grows in the first half; the \
         emulators keep every record (24 hours) and every item the soak made (each record a key \
         of its own, so that nothing lost can hide), so theirs grows with the data in both \
         halves.\n\n| process | MB then | MB at half time | MB at the end | growth | growth in \
         the second half |\n|---|---|---|---|---|---|\n{rows}{SOAK_END}\n",
        soak["seconds"].as_f64().unwrap_or(0.0),
        soak["events"],
        soak["offered_events_per_s"].as_f64().unwrap_or(0.0),
        soak["rate_events_per_s"].as_f64().unwrap_or(0.0),
        soak["build"].as_str().unwrap_or("?"),
        soak["lost"],
        soak["lag_seconds"].as_f64().unwrap_or(0.0),
    )
}

/// The report's text with its `soak` member replaced by `soak` (pretty JSON) or added last,
/// every other member as it was (the report's own order, not a map's).
fn with_soak_json(report: &str, soak: &str) -> String {
    let soak = soak.replace('\n', "\n  ");
    if matches!(report.trim(), "" | "{}") {
        return format!("{{\n  \"soak\": {soak}\n}}\n");
    }
    let mut lines: Vec<&str> = report.trim_end().lines().collect();
    if let Some(start) = lines.iter().position(|l| l.starts_with("  \"soak\": ")) {
        let end = (start..lines.len())
            .find(|&i| i > start && (lines[i] == "  }" || lines[i] == "  },"))
            .unwrap_or(start);
        lines.drain(start..=end);
    }
    // Drop the closing brace and any trailing comma the removal left.
    while lines.last().is_some_and(|l| l.trim().is_empty() || *l == "}") {
        lines.pop();
    }
    let body: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    let mut body = body.join("\n");
    if body.trim() == "{" || body.is_empty() {
        return format!("{{\n  \"soak\": {soak}\n}}\n");
    }
    if body.ends_with(',') {
        body.pop();
    }
    format!("{body},\n  \"soak\": {soak}\n}}\n")
}

/// `markdown` with the soak's section in place of the old one (or at the end).
fn with_soak(markdown: &str, soak: Option<&serde_json::Value>) -> String {
    let Some(soak) = soak.filter(|s| !s.is_null()) else {
        return markdown.to_string();
    };
    let section = soak_markdown(soak);
    match (markdown.find(SOAK_BEGIN), markdown.find(SOAK_END)) {
        (Some(a), Some(b)) if b > a => format!(
            "{}{section}{}",
            &markdown[..a],
            &markdown[b + SOAK_END.len()..].trim_start_matches('\n')
        ),
        _ => format!("{}\n{section}", markdown.trim_end()),
    }
}

pub async fn run(args: Args, ctx: &Context) -> Result<()> {
    let root = ctx.root.clone();
    let bin_dir = args
        .bin_dir
        .or_else(own_bin_dir)
        .unwrap_or_else(|| root.join("target/release"));
    let faults = match (&args.faults, args.only) {
        (None, _) => None,
        (Some(spec), Some(Section::Throughput | Section::Soak)) => Some(
            crate::faults::FaultSpec::parse(spec).map_err(|e| anyhow::anyhow!("--faults: {e}"))?,
        ),
        (Some(_), _) => anyhow::bail!("--faults is for `--only throughput` or `--only soak`"),
    };
    let options = BenchOptions {
        faults,
        root: root.clone(),
        bin_dir,
        quick: args.quick,
        params: super::parse_params(&args.params)?,
    };
    let seconds = match (args.only, args.seconds) {
        (Some(Section::Throughput), s) => s.unwrap_or(60.0),
        (Some(Section::Soak), s) => s.unwrap_or(600.0),
        (_, None) => 0.0,
        (_, Some(_)) => anyhow::bail!("--seconds is for `--only throughput` or `--only soak`"),
    };
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
        if seconds <= 0.0 {
            anyhow::bail!("--seconds must be above 0 (got {seconds})");
        }
        let rate = args
            .rate
            .unwrap_or_else(|| crate::bench::soak::default_rate(&root));
        if rate <= 0.0 {
            anyhow::bail!("--rate must be above 0 (got {rate})");
        }
        println!("soak: all four pipelines at {rate:.1} events/s for {seconds:.0} s, then until they settle");
        let figures = crate::bench::soak::soak(&options, seconds, rate).await?;
        let soak_text = serde_json::to_string_pretty(&figures)?;
        println!("{soak_text}");
        let soak = serde_json::to_value(&figures)?;
        let old_text = std::fs::read_to_string(&report_path).unwrap_or_else(|_| "{}".into());
        std::fs::write(&report_path, with_soak_json(&old_text, &soak_text))
            .with_context(|| format!("cannot write {}", report_path.display()))?;
        let markdown = std::fs::read_to_string(&markdown_path).unwrap_or_default();
        std::fs::write(&markdown_path, with_soak(&markdown, Some(&soak)))
            .with_context(|| format!("cannot write {}", markdown_path.display()))?;
        println!(
            "wrote {} and {}",
            report_path.display(),
            markdown_path.display()
        );
        return Ok(());
    }
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
    // The soak is a run of its own: a full bench keeps its figures.
    let soak = old_report.get("soak").cloned();
    let mut json = serde_json::to_string_pretty(&report)? + "\n";
    if let Some(soak) = &soak {
        json = with_soak_json(&json, &serde_json::to_string_pretty(soak)?);
    }
    for (path, text) in [
        (report_path, json),
        (
            markdown_path,
            with_soak(&report::markdown(&report), soak.as_ref()),
        ),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_soak_replaces_its_own_member_and_keeps_the_others_in_order() {
        let report = "{\n  \"b\": 1,\n  \"a\": {\n    \"x\": 2\n  }\n}\n";
        let once = with_soak_json(report, "{\n  \"lost\": 0\n}");
        assert_eq!(
            once,
            "{\n  \"b\": 1,\n  \"a\": {\n    \"x\": 2\n  },\n  \"soak\": {\n    \"lost\": 0\n  }\n}\n"
        );
        let twice = with_soak_json(&once, "{\n  \"lost\": 1\n}");
        assert_eq!(twice, once.replace("\"lost\": 0", "\"lost\": 1"));
        let v: serde_json::Value = serde_json::from_str(&twice).unwrap();
        assert_eq!(v["soak"]["lost"], 1);
        assert_eq!(with_soak_json("{}", "{}"), "{\n  \"soak\": {}\n}\n");
        let md = with_soak(
            "# B\n",
            Some(&serde_json::json!({"seconds": 1.0, "events": 2, "lost": 0})),
        );
        assert!(md.contains(SOAK_BEGIN) && md.contains("**Lost: 0.**"));
        assert_eq!(with_soak(&md, Some(&serde_json::json!({"lost": 3}))).matches(SOAK_BEGIN).count(), 1);
    }
}
