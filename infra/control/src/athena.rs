//! The lake's SQL, locally, as Athena answers it on AWS: the lake's objects copied from the local
//! S3 to a folder, and DuckDB, embedded in the project's Python (`infra/sql.py`), running the query
//! over views made from the tables' definitions (`tally-stack`'s `catalog.rs`). [`LocalAthena`]
//! answers Athena's API with it at the edge (`StartQueryExecution`, `GetQueryExecution`,
//! `GetQueryResults`), so `tally sql` is the same Athena client locally and on AWS.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use serde_json::{json, Value as Json};

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

/// An answer: column names, their types (Athena's names), and rows of JSON values.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct Answer {
    pub columns: Vec<String>,
    #[serde(default)]
    pub types: Vec<String>,
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

/// One query's run: still running, answered, or failed (and why).
#[derive(Debug, Clone)]
enum Run {
    Running,
    Succeeded(Arc<Answer>),
    Failed(String),
}

#[derive(Debug, Clone)]
struct Execution {
    query: String,
    database: String,
    work_group: String,
    submitted: f64,
    completed: Option<f64>,
    run: Run,
}

/// Athena's API for the local cloud's lake. Queries run one at a time (they share the lake's
/// copy), each in the background as Athena runs them; a client polls `GetQueryExecution`.
pub struct LocalAthena {
    root: PathBuf,
    copy: PathBuf,
    bucket: String,
    s3: aws_sdk_s3::Client,
    executions: Mutex<HashMap<String, Execution>>,
    one_at_a_time: Arc<tokio::sync::Mutex<()>>,
}

/// Rows per `GetQueryResults` page, at most (Athena's limit).
const MOST_ROWS: usize = 1000;

fn now_seconds() -> f64 {
    chrono::Utc::now().timestamp_millis() as f64 / 1000.0
}

impl LocalAthena {
    /// The lake in `bucket`, copied under `copy` for the engine of the project at `root`.
    pub fn new(root: PathBuf, copy: PathBuf, bucket: String, s3: aws_sdk_s3::Client) -> Arc<Self> {
        Arc::new(LocalAthena {
            root,
            copy,
            bucket,
            s3,
            executions: Mutex::new(HashMap::new()),
            one_at_a_time: Arc::new(tokio::sync::Mutex::new(())),
        })
    }

    /// Answers one Athena call (`target` is its `X-Amz-Target`, `body` its JSON): (status, JSON).
    pub async fn answer(self: &Arc<Self>, target: &str, body: &[u8]) -> (u16, String) {
        let input: Json = serde_json::from_slice(body).unwrap_or_default();
        let operation = target.strip_prefix("AmazonAthena.").unwrap_or(target);
        let id = input["QueryExecutionId"].as_str().unwrap_or_default();
        match operation {
            "StartQueryExecution" => self.start(&input),
            "GetQueryExecution" => match self.executions.lock().unwrap().get(id) {
                Some(e) => (200, json!({"QueryExecution": describe(id, e)}).to_string()),
                None => not_found(id),
            },
            "GetQueryResults" => self.results(id, &input),
            other => invalid(&format!("the local Athena does not answer {other}")),
        }
    }

    fn start(self: &Arc<Self>, input: &Json) -> (u16, String) {
        let Some(query) = input["QueryString"]
            .as_str()
            .filter(|q| !q.trim().is_empty())
        else {
            return invalid("QueryString is required");
        };
        let id = uuid::Uuid::new_v4().to_string();
        let execution = Execution {
            query: query.to_string(),
            database: input["QueryExecutionContext"]["Database"]
                .as_str()
                .unwrap_or("default")
                .to_string(),
            work_group: input["WorkGroup"].as_str().unwrap_or("primary").to_string(),
            submitted: now_seconds(),
            completed: None,
            run: Run::Running,
        };
        let mut executions = self.executions.lock().unwrap();
        // A client reads an answer right after it; an hour later it is gone (Athena's 45 days
        // would only hold memory here).
        let now = now_seconds();
        executions.retain(|_, e| e.completed.is_none_or(|done| now - done < 3600.0));
        executions.insert(id.clone(), execution);
        drop(executions);
        let (me, query, key) = (self.clone(), query.to_string(), id.clone());
        tokio::spawn(async move {
            let run = match me.run(&query).await {
                Ok(answer) => Run::Succeeded(Arc::new(answer)),
                Err(e) => {
                    let why = format!("{e:#}");
                    Run::Failed(
                        why.strip_prefix("query failed: ")
                            .unwrap_or(&why)
                            .to_string(),
                    )
                }
            };
            if let Some(e) = me.executions.lock().unwrap().get_mut(&key) {
                e.completed = Some(now_seconds());
                e.run = run;
            }
        });
        (200, json!({ "QueryExecutionId": id }).to_string())
    }

    async fn run(&self, query: &str) -> Result<Answer> {
        let _turn = self.one_at_a_time.lock().await;
        copy_lake(&self.s3, &self.bucket, &self.copy).await?;
        let (root, copy, query) = (self.root.clone(), self.copy.clone(), query.to_string());
        tokio::task::spawn_blocking(move || query_lake(&root, &copy, &query)).await?
    }

    fn results(&self, id: &str, input: &Json) -> (u16, String) {
        let Some(e) = self.executions.lock().unwrap().get(id).cloned() else {
            return not_found(id);
        };
        let answer = match e.run {
            Run::Succeeded(a) => a,
            Run::Running => return invalid("Query has not yet finished. Current state: RUNNING"),
            Run::Failed(why) => return invalid(&format!("Query did not succeed: FAILED: {why}")),
        };
        let most = input["MaxResults"]
            .as_u64()
            .map_or(MOST_ROWS, |m| m as usize)
            .clamp(1, MOST_ROWS);
        let start: usize = input["NextToken"]
            .as_str()
            .and_then(|t| t.parse().ok())
            .unwrap_or(0);
        // Row 0 is the column names, as on Athena's first page for a SELECT; only this page's
        // rows are made (a large answer is read a page at a time).
        let header = (start == 0).then(|| {
            let names = answer.columns.iter().map(|c| json!({"VarCharValue": c}));
            names.collect::<Vec<_>>()
        });
        let rows = answer.rows.iter().skip(start.saturating_sub(1)).map(|r| {
            r.iter()
                .map(|v| match v {
                    Json::Null => json!({}),
                    Json::String(s) => json!({"VarCharValue": s}),
                    other => json!({"VarCharValue": other.to_string()}),
                })
                .collect::<Vec<_>>()
        });
        let page: Vec<Json> = header
            .into_iter()
            .chain(rows)
            .take(most)
            .map(|data| json!({ "Data": data }))
            .collect();
        let next = start + page.len();
        let columns: Vec<Json> = answer
            .columns
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let t = answer.types.get(i).map_or("varchar", String::as_str);
                json!({"CatalogName": "hive", "SchemaName": "", "TableName": "", "Name": c, "Label": c, "Type": t, "Precision": 0, "Scale": 0, "Nullable": "UNKNOWN", "CaseSensitive": t == "varchar"})
            })
            .collect();
        let mut out = json!({
            "UpdateCount": 0,
            "ResultSet": { "Rows": page, "ResultSetMetadata": { "ColumnInfo": columns } },
        });
        if next < answer.rows.len() + 1 {
            out["NextToken"] = json!(next.to_string());
        }
        (200, out.to_string())
    }
}

/// GetQueryExecution's description of `e`.
fn describe(id: &str, e: &Execution) -> Json {
    let (state, reason) = match &e.run {
        Run::Running => ("RUNNING", None),
        Run::Succeeded(_) => ("SUCCEEDED", None),
        Run::Failed(why) => ("FAILED", Some(why.clone())),
    };
    let mut status = json!({"State": state, "SubmissionDateTime": e.submitted});
    if let Some(done) = e.completed {
        status["CompletionDateTime"] = json!(done);
    }
    if let Some(why) = reason {
        status["StateChangeReason"] = json!(why);
    }
    let millis = e
        .completed
        .map_or(0, |d| ((d - e.submitted) * 1000.0) as i64);
    json!({
        "QueryExecutionId": id,
        "Query": e.query,
        "StatementType": "DML",
        "QueryExecutionContext": {"Database": e.database, "Catalog": "AwsDataCatalog"},
        "WorkGroup": e.work_group,
        "Status": status,
        "Statistics": {"EngineExecutionTimeInMillis": millis, "TotalExecutionTimeInMillis": millis},
    })
}

fn invalid(message: &str) -> (u16, String) {
    (
        400,
        json!({"__type": "InvalidRequestException", "Message": message}).to_string(),
    )
}

fn not_found(id: &str) -> (u16, String) {
    invalid(&format!("QueryExecution {id} was not found"))
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
