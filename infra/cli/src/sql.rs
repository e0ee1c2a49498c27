//! `tally sql "<SQL>"` (or `--file queries/<pipeline>/<name>.sql`): a query over the stack's
//! lake through Athena, in the stack's lake workgroup and database, with the tables and columns
//! of the catalog. The same client locally and on AWS (`--aws`): the local cloud's edge answers
//! Athena with DuckDB (`tally-control`'s `athena.rs`), after running every pipeline through to
//! the lake (`POST /_tally/flush`), so a local query sees everything put before it.

use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _, Result};
use aws_sdk_athena::types::{QueryExecutionContext, QueryExecutionState};
use serde_json::Value;
use tally_cloud::clients::{Clients, Endpoints};
use tally_cloud::http::http_post;
use tally_control::athena::Answer;

use crate::{Context, DeployedStack, Target};

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
    let query = match (args.query, &args.file) {
        (Some(q), None) => q,
        (None, Some(f)) => {
            std::fs::read_to_string(f).with_context(|| format!("cannot read {}", f.display()))?
        }
        (Some(_), Some(_)) => bail!("give the query or --file, not both"),
        (None, None) => bail!("no query: tally sql \"SELECT ...\" or tally sql --file queries/..."),
    };
    if matches!(ctx.target, Target::Local(_)) {
        flushed_lake(ctx).await?;
    }
    let deployed = ctx.deployed().await?;
    let athena = aws_sdk_athena::Client::new(&ctx.target.sdk_config().await);
    let answer = query_athena(&athena, &deployed, &query, true).await?;
    print_answer(&answer, args.format)
}

/// Runs `query` with Athena in the stack's lake workgroup and database; with `progress`, says
/// on standard error how long it has run and what it has scanned.
pub async fn query_athena(
    athena: &aws_sdk_athena::Client, deployed: &DeployedStack, query: &str, progress: bool,
) -> Result<Answer> {
    let work_group = deployed.physical("LakeWorkGroup", "AWS::Athena::WorkGroup")?;
    let database = deployed.physical("LakeDatabase", "AWS::Glue::Database")?;
    let id = athena
        .start_query_execution()
        .query_string(query)
        .work_group(work_group)
        .query_execution_context(QueryExecutionContext::builder().database(database).build())
        .send()
        .await
        .map_err(failed("starting the query"))?
        .query_execution_id
        .ok_or_else(|| anyhow!("Athena gave no query execution id"))?;
    let spinner = progress.then(|| {
        let s = indicatif::ProgressBar::new_spinner();
        s.enable_steady_tick(Duration::from_millis(200));
        s
    });
    let started = Instant::now();
    let mut pause = Duration::from_millis(100);
    let outcome = loop {
        let execution = athena
            .get_query_execution()
            .query_execution_id(&id)
            .send()
            .await
            .map_err(failed("waiting for the query"))?
            .query_execution
            .ok_or_else(|| anyhow!("Athena does not know query {id}"))?;
        let status = execution
            .status
            .clone()
            .ok_or_else(|| anyhow!("Athena gave query {id} no status"))?;
        if let Some(s) = &spinner {
            let scanned = execution
                .statistics
                .as_ref()
                .and_then(|s| s.data_scanned_in_bytes)
                .unwrap_or(0);
            s.set_message(format!(
                "query {id}: {:?} for {} s, {:.1} MB scanned",
                status.state.clone().unwrap_or(QueryExecutionState::Queued),
                started.elapsed().as_secs(),
                scanned as f64 / 1e6
            ));
        }
        match status.state {
            Some(QueryExecutionState::Succeeded) => break Ok(()),
            Some(QueryExecutionState::Failed) | Some(QueryExecutionState::Cancelled) => {
                break Err(anyhow!(
                    "query failed: {}",
                    status
                        .state_change_reason
                        .unwrap_or_else(|| "no reason given".into())
                ))
            }
            _ => {}
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(2));
    };
    if let Some(s) = spinner {
        s.finish_and_clear();
    }
    outcome?;
    let mut answer = Answer::default();
    let mut token = None;
    let mut first = true;
    loop {
        let page = athena
            .get_query_results()
            .query_execution_id(&id)
            .set_next_token(token)
            .send()
            .await
            .map_err(failed("reading the answer"))?;
        let Some(set) = page.result_set else {
            bail!("Athena gave query {id} no result set");
        };
        if first {
            let columns = set.result_set_metadata.as_ref().map(|m| m.column_info());
            for c in columns.unwrap_or_default() {
                answer.columns.push(c.name.clone());
                answer.types.push(c.r#type.clone());
            }
        }
        // A SELECT's first row is its column names.
        let skip = usize::from(first && !answer.columns.is_empty());
        for row in set.rows().iter().skip(skip) {
            let cells = row.data().iter().zip(&answer.types);
            answer
                .rows
                .push(cells.map(|(d, t)| typed(d.var_char_value(), t)).collect());
        }
        first = false;
        token = page.next_token;
        if token.is_none() {
            break;
        }
    }
    Ok(answer)
}

/// An Athena call's error in one line, with every cause the SDK gives.
fn failed<E: std::error::Error>(doing: &str) -> impl FnOnce(E) -> anyhow::Error + '_ {
    move |e| anyhow!("{doing}: {}", aws_sdk_athena::error::DisplayErrorContext(e))
}

/// An Athena cell (text, or none for NULL) as JSON of its column's type.
fn typed(text: Option<&str>, athena_type: &str) -> Value {
    let Some(text) = text else {
        return Value::Null;
    };
    // Numbers, and the nested types the local engine gives as JSON (Athena's own `[a, b]` text
    // stays text).
    let number = matches!(
        athena_type,
        "tinyint"
            | "smallint"
            | "integer"
            | "bigint"
            | "double"
            | "real"
            | "float"
            | "decimal"
            | "array"
            | "map"
            | "row"
    );
    match athena_type {
        "boolean" => text.parse().map_or_else(|_| Value::from(text), Value::Bool),
        _ if number => serde_json::from_str(text).unwrap_or_else(|_| Value::from(text)),
        _ => Value::from(text),
    }
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
    fn athena_text_becomes_json_of_its_column_type() {
        assert_eq!(typed(Some("42"), "bigint"), serde_json::json!(42));
        assert_eq!(typed(Some("0.5"), "double"), serde_json::json!(0.5));
        assert_eq!(typed(Some("true"), "boolean"), serde_json::json!(true));
        assert_eq!(typed(Some("42"), "varchar"), serde_json::json!("42"));
        assert_eq!(typed(None, "bigint"), Value::Null);
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
