//! The lake: records put with `tally put` come back from `tally sql` exactly, on the shared local
//! cloud; the lake writer against the emulators gives the same files when it runs again; an
//! independent reader (DuckDB) sees the contract's columns and types; the Glue catalog and the
//! named queries of template.yaml agree with the code and `queries/`.

use std::collections::BTreeMap;
use std::io::Write;

use chrono::{DateTime, SecondsFormat, Utc};
use lambda_runtime::{Context, LambdaEvent};
use tally_stack::template::Template;

use crate::support::{local_root, run_ok, shared_cloud, tally, Stack};

/// `tally sql --format json` against the shared cloud: one JSON object per row.
pub fn sql(edge_url: &str, query: &str) -> Vec<serde_json::Value> {
    json_rows(&["sql", "--format", "json", query], edge_url)
}

/// The same for a query of `queries/` (`rsvp/most_active_member`).
pub fn sql_file(edge_url: &str, name: &str) -> Vec<serde_json::Value> {
    let file = local_root().join("queries").join(format!("{name}.sql"));
    json_rows(
        &["sql", "--format", "json", "--file", file.to_str().unwrap()],
        edge_url,
    )
}

fn json_rows(args: &[&str], edge_url: &str) -> Vec<serde_json::Value> {
    let out = tally(args, edge_url);
    assert!(
        out.status.success(),
        "tally {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn put(edge_url: &str, stream: &str, lines: &[String]) {
    let file =
        std::env::temp_dir().join(format!("tally-lake-{stream}-{}.jsonl", std::process::id()));
    std::fs::write(&file, lines.join("\n") + "\n").unwrap();
    let out = tally(&["put", stream, file.to_str().unwrap()], edge_url);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn millis(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S%.3f").to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_put_with_tally_come_back_from_tally_sql_exactly() {
    let cloud = shared_cloud();
    let now = Utc::now();
    let today = now.format("%Y-%m-%d").to_string();
    // Visits of this test's cids: with a time, without one, and bad ones.
    let mut visits = Vec::new();
    let mut expected = BTreeMap::new();
    for i in 0..40i64 {
        let cid = format!("LAKE-{i}");
        let ts = now - chrono::Duration::minutes(i * 37);
        let gndr = if i % 3 == 0 { "FEMALE" } else { "male" };
        visits.push(format!(
            r#"{{"cid":"{cid}","gndr":"{gndr}","ts":"{}"}}"#,
            ts.to_rfc3339_opts(SecondsFormat::Millis, true)
        ));
        expected.insert(cid, (gndr.to_lowercase(), millis(ts)));
    }
    visits.push(r#"{"cid":"LAKE-NOTS","gndr":"female"}"#.into());
    visits.push(r#"{"cid":"LAKE-BAD","gndr":"neither"}"#.into());
    visits.push(r#"{"cid":"LAKE-BROKEN","#.into());
    put(&cloud.edge_url, "VisitsStream", &visits);
    // One user of this test interacts twelve times with one property within a minute: every
    // rule holds once for it.
    let user = 7_700_001u64;
    let property = 7_700_002u64;
    let interactions: Vec<String> = (0..12)
        .map(|s| {
            format!(
                r#"{{"user_id":{user},"property_id":{property},"date":"2021-12-01 10:00:{s:02}","event":"Interaction"}}"#
            )
        })
        .chain(std::iter::once(format!(
            r#"{{"user_id":{user},"property_id":{property},"date":"2021-12-01 10:01:00","event":"View"}}"#
        )))
        .collect();
    put(&cloud.edge_url, "InteractionsStream", &interactions);

    // Everything put before the query is in the answer: no waiting here.
    let rows = sql(
        &cloud.edge_url,
        "SELECT cid, gndr, ts, arrival, dt FROM visits WHERE cid LIKE 'LAKE-%' ORDER BY cid",
    );
    assert_eq!(rows.len(), 41, "the 41 valid visits, once each: {rows:?}");
    for r in &rows {
        let cid = r["cid"].as_str().unwrap();
        assert_eq!(r["dt"], today.as_str(), "partitioned by arrival day");
        if cid == "LAKE-NOTS" {
            assert_eq!(
                r["ts"], r["arrival"],
                "no ts: the arrival is the visit's time"
            );
            continue;
        }
        let (gndr, ts) = &expected[cid];
        assert_eq!(
            (r["gndr"].as_str().unwrap(), r["ts"].as_str().unwrap()),
            (gndr.as_str(), ts.as_str()),
            "{r}"
        );
    }
    let interactions = sql(
        &cloud.edge_url,
        &format!("SELECT event, count(*) AS n, min(event_time) AS first FROM interactions WHERE user_id = {user} GROUP BY event ORDER BY event"),
    );
    assert_eq!(
        interactions,
        vec![
            serde_json::json!({"event": "Interaction", "n": 12, "first": "2021-12-01 10:00:00.000"}),
            serde_json::json!({"event": "View", "n": 1, "first": "2021-12-01 10:01:00.000"}),
        ]
    );
    let alerts = sql(
        &cloud.edge_url,
        &format!("SELECT rule, alert_id, \"count\", window_start FROM alerts WHERE \"key\" IN ('{user}', '{property}') ORDER BY rule"),
    );
    assert_eq!(
        alerts,
        vec![
            serde_json::json!({"rule": "paid_user", "alert_id": format!("paid_user:{user}"), "count": 9, "window_start": null}),
            serde_json::json!({"rule": "possible_broker", "alert_id": format!("possible_broker:{user}:2021-12-01T10:00:00.000Z"), "count": 11, "window_start": "2021-12-01 10:00:00.000"}),
            serde_json::json!({"rule": "property_status", "alert_id": format!("property_status:{property}"), "count": 6, "window_start": null}),
        ],
        "each alert once"
    );
    let bad = sql(
        &cloud.edge_url,
        "SELECT source, reason_code, reason, data FROM bad_records WHERE data LIKE '%LAKE-B%' ORDER BY source, data",
    );
    let got: Vec<(String, String)> = bad
        .iter()
        .map(|r| {
            (
                r["source"].as_str().unwrap().to_string(),
                r["data"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    // The models of the default deployment share one function (source MODELS).
    for source in ["MODELS", "lake:visits"] {
        for data in [
            r#"{"cid":"LAKE-BAD","gndr":"neither"}"#,
            r#"{"cid":"LAKE-BROKEN","#,
        ] {
            assert!(
                got.contains(&(source.to_string(), data.to_string())),
                "{source} {data} in {got:?}"
            );
        }
    }
    assert_eq!(got.len(), 4, "each bad record once per source: {got:?}");
    assert!(bad.iter().any(|r| r["reason"]
        .as_str()
        .unwrap()
        .contains("unknown gender \"neither\"")));
    // The raw table holds every line as archived, the bad ones too.
    let raw = sql(
        &cloud.edge_url,
        "SELECT count(*) AS n FROM raw_visits WHERE cid LIKE 'LAKE-%'",
    );
    assert_eq!(raw[0]["n"], 42, "every line that is a JSON object");
    // Every query of queries/ runs locally as it is.
    for (name, _) in tally_stack::catalog::queries(&local_root()).unwrap() {
        let file = local_root().join("queries").join(format!("{name}.sql"));
        let out = tally(&["sql", "--file", file.to_str().unwrap()], &cloud.edge_url);
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tally_sql_explains_bad_queries_and_a_missing_cloud_in_one_line() {
    let cloud = shared_cloud();
    for (query, says) in [
        (
            "SELECT * FROM no_such_table",
            "no_such_table does not exist",
        ),
        ("SELEC 1", "syntax error"),
    ] {
        let out = tally(&["sql", query], &cloud.edge_url);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success());
        assert!(
            stderr.contains("query failed") && stderr.contains(says),
            "{stderr}"
        );
        assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    }
    let nowhere = format!(
        "http://127.0.0.1:{}",
        tally_cloud::emulators::free_port().unwrap()
    );
    let out = tally(&["sql", "SELECT 1"], &nowhere);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("no local cloud at") && stderr.contains("make up"),
        "{stderr}"
    );
}

/// Lines as Firehose archives them: each ends in a newline, the object is GZIP.
fn gz(lines: &[&str]) -> Vec<u8> {
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(text.as_bytes()).unwrap();
    enc.finish().unwrap()
}

/// An S3 notification of `keys`, as SQS delivers it to the lake writer.
fn notification(id: &str, keys: &[&str]) -> serde_json::Value {
    let records: Vec<serde_json::Value> = keys
        .iter()
        .map(|k| serde_json::json!({"eventName": "ObjectCreated:Put", "s3": {"object": {"key": k.replace('=', "%3D")}}}))
        .collect();
    serde_json::json!({"messageId": id, "body": serde_json::json!({"Records": records}).to_string()})
}

/// The column names and types DuckDB reads from a Parquet file: an independent reader.
fn duckdb_describe(file: &std::path::Path) -> Vec<(String, String)> {
    let script = "import duckdb, json, sys\nprint(json.dumps([[r[0], r[1]] for r in duckdb.sql(f\"DESCRIBE SELECT * FROM read_parquet('{sys.argv[1]}')\").fetchall()]))";
    let out = run_ok(
        std::process::Command::new(local_root().join(".venv/bin/python")).args([
            "-c",
            script,
            file.to_str().unwrap(),
        ]),
        "duckdb",
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[tokio::test]
async fn the_lake_writer_gives_the_same_files_when_it_runs_again_and_duckdb_reads_their_types() {
    let stack = Stack::new(&[]).await;
    let bucket = stack.name("ArchiveBucket");
    let s3 = &stack.clients.s3;
    let raw = "raw/visits/dt=2026-11-22/tally-X-1-2026-11-22-10-00-07-90e1035e-397c-4140-b289-c6a9d2136883.gz";
    let alerts = "raw/paid_user_alerts/dt=2026-11-22/tally-Y-1-2026-11-22-10-00-09-90e1035e-397c-4140-b289-c6a9d2136883.gz";
    for (key, body) in [
        (
            raw,
            gz(&[r#"{"cid":"C1","gndr":"male","ts":1795341600000}"#, "oops"]),
        ),
        (
            alerts,
            gz(&[r#"{"user":1,"interactions_count":9,"alert_id":"paid_user:1"}"#; 2]),
        ),
    ] {
        s3.put_object()
            .bucket(&bucket)
            .key(key)
            .body(body.into())
            .send()
            .await
            .unwrap();
    }
    let f = lake_writer::from_env(&stack.sdk, &stack.function_env("LakeWriterFunction")).unwrap();
    let event =
        serde_json::json!({"Records": [notification("m1", &[raw]), notification("m2", &[alerts])]});
    let mut snapshots = Vec::new();
    for _ in 0..2 {
        let response = f
            .handle(LambdaEvent::new(
                serde_json::from_value(event.clone()).unwrap(),
                Context::default(),
            ))
            .await
            .unwrap();
        assert!(response.batch_item_failures.is_empty());
        snapshots.push(stack.objects("ArchiveBucket", "lake/").await);
    }
    assert_eq!(snapshots[0], snapshots[1], "the same files, byte for byte");
    let files = &snapshots[0];
    let keys: Vec<&String> = files.keys().collect();
    assert_eq!(keys.len(), 3, "visits, alerts, bad_records: {keys:?}");
    let dir = std::env::temp_dir().join(format!("tally-lake-read-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let read = |prefix: &str| {
        let (_, body) = files.iter().find(|(k, _)| k.starts_with(prefix)).unwrap();
        let path = dir.join(format!("{}.parquet", prefix.replace('/', "_")));
        std::fs::write(&path, body).unwrap();
        duckdb_describe(&path)
    };
    let types = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    };
    assert_eq!(
        read("lake/visits/dt=2026-11-22/"),
        types(&[
            ("cid", "VARCHAR"),
            ("gndr", "VARCHAR"),
            ("ts", "TIMESTAMP"),
            ("arrival", "TIMESTAMP")
        ])
    );
    assert_eq!(
        read("lake/alerts/"),
        types(&[
            ("rule", "VARCHAR"),
            ("alert_id", "VARCHAR"),
            ("key", "VARCHAR"),
            ("count", "BIGINT"),
            ("window_start", "TIMESTAMP"),
            ("published", "TIMESTAMP")
        ])
    );
    assert_eq!(
        read("lake/bad_records/dt=2026-11-22/")[..4],
        types(&[
            ("source", "VARCHAR"),
            ("reason_code", "VARCHAR"),
            ("reason", "VARCHAR"),
            ("data", "VARCHAR")
        ])[..]
    );
}

/// A table's columns (name, Glue type) and partition keys.
type TableShape = (Vec<(String, String)>, Vec<String>);

#[test]
fn the_glue_catalog_and_named_queries_of_the_template_match_the_code_and_queries() {
    let template = Template::load(
        &local_root().join("template.yaml"),
        "tally",
        &Default::default(),
    )
    .unwrap();
    let mut glue: BTreeMap<String, TableShape> = BTreeMap::new();
    for t in template.of_kind("AWS::Glue::Table") {
        let input = &t.properties["TableInput"];
        let pairs = |v: &serde_json::Value| -> Vec<(String, String)> {
            v.as_array()
                .into_iter()
                .flatten()
                .map(|c| {
                    (
                        c["Name"].as_str().unwrap().to_string(),
                        c["Type"].as_str().unwrap().to_string(),
                    )
                })
                .collect()
        };
        glue.insert(
            input["Name"].as_str().unwrap().to_string(),
            (
                pairs(&input["StorageDescriptor"]["Columns"]),
                pairs(&input["PartitionKeys"])
                    .into_iter()
                    .map(|(n, _)| n)
                    .collect(),
            ),
        );
    }
    let mut code = BTreeMap::new();
    let glue_columns = |columns: &[tally_lake::table::Column]| -> Vec<(String, String)> {
        columns
            .iter()
            .map(|c| (c.name.to_string(), c.kind.glue().to_string()))
            .collect()
    };
    for t in tally_lake::tables() {
        let keys = t.partition_keys().iter().map(|k| k.to_string()).collect();
        match t.files_name() {
            // Unique by an id: the table of its files, and under its own name the view of each
            // id once, whose columns end with the partition keys.
            Some(files) => {
                code.insert(files, (glue_columns(t.columns), keys));
                let view = tally_stack::catalog::view_columns(t)
                    .into_iter()
                    .map(|(name, glue, _)| (name, glue.to_string()))
                    .collect();
                code.insert(t.name.to_string(), (view, Vec::new()));
            }
            None => {
                code.insert(t.name.to_string(), (glue_columns(t.columns), keys));
            }
        }
    }
    // Each view's stored definition is the code's query, the one `tally sql` runs locally.
    for t in tally_lake::tables() {
        let Some(sql) = t.view_sql() else { continue };
        let view = template
            .of_kind("AWS::Glue::Table")
            .find(|g| g.properties["TableInput"]["Name"] == t.name)
            .unwrap_or_else(|| panic!("no Glue view {}", t.name));
        let input = &view.properties["TableInput"];
        assert_eq!(input["TableType"], "VIRTUAL_VIEW", "{}", t.name);
        let stored = &input["ViewOriginalText"]["Fn::Join"][1][1]["Fn::Base64"]["Fn::Sub"];
        let definition: serde_json::Value =
            serde_json::from_str(stored.as_str().unwrap_or_default()).unwrap();
        assert_eq!(definition["originalSql"], sql, "{}", t.name);
        assert_eq!(definition["schema"], "${LakeDatabase}");
    }
    for t in tally_lake::raw_tables() {
        code.insert(
            t.name.to_string(),
            (glue_columns(t.columns), vec!["dt".to_string()]),
        );
    }
    assert_eq!(
        glue, code,
        "run `tally catalog` and paste each pipeline's tables into the template it names"
    );
    // A pipeline's tables and queries are all in one template, its application's.
    for block in tally_stack::catalog::catalog_blocks(&local_root()).unwrap() {
        let files: std::collections::BTreeSet<_> = block
            .logical_ids
            .iter()
            .map(|id| &template.scopes[template.resources[id].scope].file)
            .collect();
        assert_eq!(
            files.len(),
            1,
            "{}'s catalog is spread over {files:?}",
            block.pipeline
        );
    }

    let named: BTreeMap<String, String> = template
        .of_kind("AWS::Athena::NamedQuery")
        .map(|q| {
            (
                q.properties["Name"].as_str().unwrap().to_string(),
                q.properties["QueryString"]
                    .as_str()
                    .unwrap()
                    .trim()
                    .to_string(),
            )
        })
        .collect();
    let files: BTreeMap<String, String> = tally_stack::catalog::queries(&local_root())
        .unwrap()
        .into_iter()
        .map(|(n, text)| (n, text.trim().to_string()))
        .collect();
    assert!(files.len() >= 5);
    assert_eq!(
        named, files,
        "one named query per file of queries/, with its text (`tally catalog`)"
    );
}
