//! `tally sql "<SQL>"` (or `--file queries/<pipeline>/<name>.sql`): a query over the local cloud's
//! lake, with the table names and columns Athena sees, answering with everything put before the
//! call. The local cloud first runs every pipeline through to the lake (`POST /_tally/flush`);
//! then the lake is copied from the local S3 to `.tally/lake/<stack>/`, and DuckDB, embedded in
//! the project's Python (`infra/sql.py`), runs the query over views made from the tables'
//! definitions.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{anyhow, bail, Context as _, Result};
use tally_cloud::clients::{Clients, Endpoints};
use tally_cloud::http::http_post;
use tally_control::athena::{copy_lake, query_lake, Answer};

use crate::Context;

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Aligned columns.
    Table,
    /// One JSON object per row.
    Json,
}

#[derive(clap::Args)]
pub struct Args {
    /// The query: any SQL text, also one that starts with a `--` comment.
    #[arg(allow_hyphen_values = true)]
    pub query: Option<String>,
    /// A file holding the query (queries/...sql), instead of the argument.
    #[arg(long, value_name = "FILE")]
    pub file: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

pub async fn run(args: Args, ctx: &Context) -> Result<()> {
    ctx.local_only("sql")?;
    let query = match (args.query, &args.file) {
        (Some(q), None) => q,
        (None, Some(f)) => {
            std::fs::read_to_string(f).with_context(|| format!("cannot read {}", f.display()))?
        }
        (Some(_), Some(_)) => bail!("give the query or --file, not both"),
        (None, None) => bail!("no query: tally sql \"SELECT ...\" or tally sql --file queries/..."),
    };
    let (clients, bucket) = flushed_lake(ctx).await?;
    let copy = ctx.root.join(".tally/lake").join(&ctx.stack);
    copy_lake(&clients.s3, &bucket, &copy).await?;
    let answer = query_lake(&ctx.root, &copy, &query)?;
    print_answer(&answer, args.format)
}

/// The local cloud's clients and archive bucket, once every pipeline has run through to the lake.
pub async fn flushed_lake(ctx: &Context) -> Result<(Clients, String)> {
    let template = ctx.template()?;
    let url = ctx.edge_url();
    let (status, body) = http_post(&format!("{url}{}", tally_cloud::edge::FLUSH_PATH))
        .await
        .map_err(|_| anyhow!("no local cloud at {url}: start it with `make up`"))?;
    if status != 200 {
        bail!("the local cloud at {url} could not bring the lake up to date: {body}");
    }
    let clients = Clients::new(&Endpoints::all(&url)).await;
    Ok((clients, template.physical_name("ArchiveBucket")))
}

fn cell(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Null => "null".into(),
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

pub fn print_answer(answer: &Answer, format: Format) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match format {
        Format::Json => {
            for row in &answer.rows {
                let object: serde_json::Map<String, serde_json::Value> = answer
                    .columns
                    .iter()
                    .cloned()
                    .zip(row.iter().cloned())
                    .collect();
                writeln!(out, "{}", serde_json::Value::Object(object))?;
            }
        }
        Format::Table => {
            let cells: Vec<Vec<String>> = answer
                .rows
                .iter()
                .map(|r| r.iter().map(cell).collect())
                .collect();
            let widths: Vec<usize> = answer
                .columns
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    cells
                        .iter()
                        .map(|r| r[i].chars().count())
                        .chain(std::iter::once(c.chars().count()))
                        .max()
                        .unwrap_or(0)
                })
                .collect();
            let line = |values: &[String]| -> String {
                values
                    .iter()
                    .zip(&widths)
                    .map(|(v, w)| format!("{v:<w$}"))
                    .collect::<Vec<_>>()
                    .join("  ")
                    .trim_end()
                    .to_string()
            };
            writeln!(out, "{}", line(&answer.columns))?;
            writeln!(
                out,
                "{}",
                widths
                    .iter()
                    .map(|w| "-".repeat(*w))
                    .collect::<Vec<_>>()
                    .join("  ")
            )?;
            for r in &cells {
                writeln!(out, "{}", line(r))?;
            }
            writeln!(
                out,
                "({} row{})",
                cells.len(),
                if cells.len() == 1 { "" } else { "s" }
            )?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        args: Args,
    }

    #[test]
    fn a_query_may_start_with_a_comment() {
        let cli = Cli::try_parse_from(["sql", "-- a comment\nSELECT 1"]).unwrap();
        assert_eq!(cli.args.query.as_deref(), Some("-- a comment\nSELECT 1"));
        let cli = Cli::try_parse_from(["sql", "--format", "json", "--x\nSELECT 2"]).unwrap();
        assert_eq!(cli.args.query.as_deref(), Some("--x\nSELECT 2"));
        assert!(Cli::try_parse_from(["sql", "--file", "q.sql"])
            .unwrap()
            .args
            .file
            .is_some());
    }
}
