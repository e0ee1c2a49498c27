//! The lake's SQL, locally, as Athena answers it on AWS: the lake's objects copied from the local
//! S3 to a folder, and DuckDB, embedded in the project's Python (`infra/sql.py`), running the query
//! over views made from the tables' definitions (`tally-stack`'s `catalog.rs`).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{anyhow, bail, Context as _, Result};
use tally_stack::catalog::duckdb_views;

/// An S3 call's error in one line, with every cause the SDK gives.
fn failed<E: std::error::Error>(doing: String) -> impl FnOnce(E) -> anyhow::Error {
    move |e| anyhow!("{doing}: {}", aws_sdk_s3::error::DisplayErrorContext(e))
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
                .map_err(failed(format!("listing s3://{bucket}/{prefix}")))?;
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
            .map_err(failed(format!("reading s3://{bucket}/{key}")))?
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
