//! `tally sql "<SQL>"` (or `--file queries/<pipeline>/<name>.sql`): a query over the local cloud's
//! lake, with the table names and columns Athena sees, answering with everything put before the
//! call. The local cloud first runs every pipeline through to the lake (`POST /_tally/flush`);
//! then the lake is copied from the local S3 to `.tally/lake/<stack>/`, and DuckDB, embedded in
//! the project's Python (`infra/sql.py`), runs the query over views made from the tables'
//! definitions.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{anyhow, bail, Context as _, Result};

use super::Context;
use crate::clients::{Clients, Endpoints};
use crate::http::http_post;
use crate::lake::duckdb_views;

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
    let (status, body) = http_post(&format!("{url}{}", crate::edge::FLUSH_PATH))
        .await
        .map_err(|_| anyhow!("no local cloud at {url}: start it with `make up`"))?;
    if status != 200 {
        bail!("the local cloud at {url} could not bring the lake up to date: {body}");
    }
    let clients = Clients::new(&Endpoints::all(&url)).await;
    Ok((clients, template.physical_name("ArchiveBucket")))
}

/// The lake's objects (`lake/` and `raw/`) copied to `dir`, downloading only what changed since
/// the last copy (by ETag) and removing what is gone.
pub async fn copy_lake(s3: &aws_sdk_s3::Client, bucket: &str, dir: &Path) -> Result<()> {
    let manifest_path = dir.join(".manifest.json");
    let mut manifest: BTreeMap<String, String> = std::fs::read_to_string(&manifest_path)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default();
    let mut listed = BTreeMap::new();
    for prefix in ["lake/", "raw/"] {
        let mut token = None;
        loop {
            let page = s3
                .list_objects_v2()
                .bucket(bucket)
                .prefix(prefix)
                .set_continuation_token(token)
                .send()
                .await
                .map_err(|e| {
                    anyhow!(
                        "listing s3://{bucket}/{prefix}: {}",
                        aws_sdk_s3::error::DisplayErrorContext(e)
                    )
                })?;
            for o in page.contents() {
                if let (Some(k), Some(e)) = (o.key(), o.e_tag()) {
                    listed.insert(k.to_string(), e.to_string());
                }
            }
            token = page.next_continuation_token().map(String::from);
            if token.is_none() {
                break;
            }
        }
    }
    for (key, etag) in &listed {
        let Some(path) = local_path(dir, key) else {
            eprintln!("tally sql: s3://{bucket}/{key} skipped: a key with `..`, `.` or an absolute path cannot be copied safely");
            continue;
        };
        if manifest.get(key) == Some(etag) && path.is_file() {
            continue;
        }
        let body = s3
            .get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| {
                anyhow!(
                    "reading s3://{bucket}/{key}: {}",
                    aws_sdk_s3::error::DisplayErrorContext(e)
                )
            })?
            .body
            .collect()
            .await
            .with_context(|| format!("reading s3://{bucket}/{key}"))?
            .into_bytes();
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&path, body).with_context(|| format!("writing {}", path.display()))?;
        manifest.insert(key.clone(), etag.clone());
    }
    for key in manifest
        .keys()
        .filter(|k| !listed.contains_key(*k))
        .cloned()
        .collect::<Vec<_>>()
    {
        if let Some(path) = local_path(dir, &key) {
            let _ = std::fs::remove_file(path);
        }
        manifest.remove(&key);
    }
    std::fs::create_dir_all(dir)?;
    std::fs::write(&manifest_path, serde_json::to_string(&manifest)?)?;
    Ok(())
}

/// Where the object `key` is copied under `dir`: only plain names, so no key (`../x`,
/// `/etc/x`, `a/./b`) can write outside `dir`.
pub fn local_path(dir: &Path, key: &str) -> Option<PathBuf> {
    use std::path::Component;
    let relative = Path::new(key);
    let plain = !key.is_empty()
        && !key.contains('\0')
        && key
            .split('/')
            .all(|part| !part.is_empty() && part != "." && part != "..")
        && relative
            .components()
            .all(|c| matches!(c, Component::Normal(_)));
    plain.then(|| dir.join(relative))
}

/// An answer: column names, and rows of JSON values.
#[derive(Debug, serde::Deserialize)]
pub struct Answer {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<serde_json::Value>>,
}

/// Runs `query` with DuckDB over the lake copied to `dir`.
pub fn query_lake(root: &Path, dir: &Path, query: &str) -> Result<Answer> {
    let python = root.join(".venv/bin/python");
    if !python.is_file() {
        bail!(
            "the local SQL engine is not installed ({}): run `make setup`",
            python.display()
        );
    }
    let mut child = Command::new(&python)
        .arg(root.join("infra/sql.py"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot run {}", python.display()))?;
    let request = serde_json::json!({ "setup": duckdb_views(dir), "query": query });
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(request.to_string().as_bytes())?;
    let out = child.wait_with_output()?;
    let reply: serde_json::Value = serde_json::from_slice(&out.stdout).map_err(|_| {
        anyhow!(
            "the SQL engine failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )
    })?;
    if let Some(error) = reply.get("error").and_then(|e| e.as_str()) {
        bail!("query failed: {error}");
    }
    Ok(serde_json::from_value(reply)?)
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

    #[test]
    fn keys_that_leave_the_copy_are_refused() {
        let dir = Path::new("/tmp/lake");
        assert_eq!(
            local_path(dir, "lake/visits/dt=2026-11-22/part.parquet"),
            Some(dir.join("lake/visits/dt=2026-11-22/part.parquet"))
        );
        for key in [
            "../x",
            "lake/../../x",
            "/etc/passwd",
            "lake//x",
            "lake/./x",
            "",
            "lake/x/..",
        ] {
            assert_eq!(local_path(dir, key), None, "{key:?}");
        }
    }

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
