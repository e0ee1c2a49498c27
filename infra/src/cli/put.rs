//! `tally put STREAM [FILE]`: each line one record, as is, keyed by the stream's partition-key
//! field (the template's `Metadata.Tally.PartitionKey`), with progress and a summary.

use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context as _, Result};

use super::{stream_target, Context};
use crate::kinesis::put_all;

#[derive(clap::Args)]
pub struct Args {
    /// Stream logical ID (VisitsStream) or physical name.
    pub stream: String,
    /// File of records, one a line; `-` or nothing for standard input.
    pub file: Option<PathBuf>,
    /// Record field to use as partition key (default: the stream's key in template.yaml).
    #[arg(long)]
    pub partition_key: Option<String>,
}

pub async fn run(args: Args, ctx: &Context) -> Result<()> {
    let target = stream_target(ctx, &args.stream).await?;
    let field = args
        .partition_key
        .or_else(|| target.facts.as_ref().and_then(|f| f.partition_key.clone()));
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

/// The value of `field` in the record, or a hash of the line when it has none (spreading such
/// records over the shards).
pub fn partition_key(line: &str, field: Option<&str>) -> String {
    let from_field = field.and_then(|f| {
        let v: serde_json::Value = serde_json::from_str(line).ok()?;
        match v.get(f)? {
            serde_json::Value::String(s) if !s.is_empty() => Some(s.chars().take(256).collect()),
            serde_json::Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    });
    from_field.unwrap_or_else(|| {
        let mut h: u64 = 0xcbf29ce484222325;
        for b in line.bytes() {
            h = (h ^ u64::from(b)).wrapping_mul(0x100000001b3);
        }
        format!("{h:016x}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_come_from_the_field_or_a_hash_of_the_line() {
        assert_eq!(partition_key(r#"{"cid":"C1"}"#, Some("cid")), "C1");
        assert_eq!(partition_key(r#"{"user_id":7}"#, Some("user_id")), "7");
        let hashed = partition_key("not json", Some("cid"));
        assert_eq!(hashed.len(), 16);
        assert_eq!(
            hashed,
            partition_key("not json", None),
            "the same line, the same shard"
        );
    }
}
