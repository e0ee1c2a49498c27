//! End to end on the local cloud: the real function binaries behind the Runtime API, event source
//! mappings, the HTTP API and the `tally` CLI, all from template.yaml.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::Utc;
use tally_infra::clients::{Clients, Endpoints};
use tally_infra::cloud::{http_get, CloudOptions, LocalCloud};
use tally_tests::{local_root, wait_for};

use crate::oracle;

pub struct SharedCloud {
    pub edge_url: String,
    pub api_url: String,
}

/// The function binaries of this build (`make test` builds them before the tests): the test
/// executable lives in `<target>/debug/deps`, they in `<target>/debug`.
fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .unwrap()
        .to_path_buf();
    for bin in [
        "gender-model",
        "results-writer",
        "gender-api",
        "tally",
        "flaky-consumer",
    ] {
        assert!(
            dir.join(bin).is_file(),
            "{}/{bin} is missing: run `cargo build --workspace --bins` first (make test does)",
            dir.display()
        );
    }
    dir
}

fn options() -> CloudOptions {
    let mut opts = CloudOptions::new(local_root());
    opts.bin_dir = bin_dir();
    opts.edge_port = 0;
    opts.api_port = 0;
    opts.log_dir = bin_dir().join("test-logs/cloud");
    opts.stack_name = format!("e2e{}", std::process::id());
    opts
}

/// One local cloud of template.yaml for the tests of this module, on a thread of its own.
pub fn shared_cloud() -> &'static SharedCloud {
    static CLOUD: OnceLock<SharedCloud> = OnceLock::new();
    CLOUD.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let cloud = LocalCloud::start(options())
                    .await
                    .unwrap_or_else(|e| panic!("local cloud: {e}"));
                tx.send(SharedCloud {
                    edge_url: cloud.edge_url.clone(),
                    api_url: cloud.api_url.clone(),
                })
                .unwrap();
                std::future::pending::<()>().await;
                drop(cloud);
            });
        });
        rx.recv().expect("local cloud started")
    })
}

pub fn tally(args: &[&str], edge_url: &str) -> std::process::Output {
    Command::new(bin_dir().join("tally"))
        .args(args)
        .current_dir(local_root())
        .env("AWS_ENDPOINT_URL", edge_url)
        .env("TALLY_STACK", format!("e2e{}", std::process::id()))
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn visits_put_with_tally_reach_the_api_with_independently_computed_answers() {
    let cloud = shared_cloud();
    let now = Utc::now();
    // Twelve cids of this test, visits with and without ts, some older than MODEL3's window.
    let mut lines = Vec::new();
    for i in 0..300u64 {
        let cid = format!("E2E-{}", i % 12);
        let g = if (i * 7 + i / 12) % 3 == 0 {
            "female"
        } else {
            "Male"
        };
        lines.push(match i % 5 {
            0 => format!(r#"{{"cid":"{cid}","gndr":"{g}"}}"#),
            1 => format!(
                r#"{{"cid":"{cid}","gndr":"{g}","ts":"{}"}}"#,
                (now - chrono::Duration::days(9)).to_rfc3339()
            ),
            2 => format!(
                r#"{{"cid":"{cid}","gndr":"{g}","ts":{}}}"#,
                (now - chrono::Duration::hours(i as i64 % 30)).timestamp_millis()
            ),
            _ => format!(
                r#"{{"cid":"{cid}","gndr":"{g}","ts":"{}"}}"#,
                (now - chrono::Duration::minutes(i as i64)).to_rfc3339()
            ),
        });
    }
    lines.push(r#"{"cid":"E2E-bad","gndr":"x"}"#.into());
    lines.push("not json at all".into());
    let file = std::env::temp_dir().join(format!("tally-e2e-{}.jsonl", std::process::id()));
    std::fs::write(&file, lines.join("\n") + "\n").unwrap();

    let out = tally(
        &["put", "VisitsStream", file.to_str().unwrap()],
        &cloud.edge_url,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "tally put failed: {stderr}");
    assert!(
        stderr.contains("302 accepted, 0 failed"),
        "summary: {stderr}"
    );

    // The oracle reads the visits back, for the arrival times of visits without ts.
    let clients = Clients::new(&Endpoints::all(&cloud.edge_url)).await;
    let stream = format!("e2e{}-VisitsStream", std::process::id());
    let mut visits = Vec::new();
    for r in tally_infra::esm::read_stream(&clients.kinesis, &stream)
        .await
        .unwrap()
    {
        if let Some(v) =
            oracle::parse_visit(&r.data, (r.arrival * 1000.0).round() as i64, visits.len())
        {
            if v.cid.starts_with("E2E-") {
                visits.push(v);
            }
        }
    }
    assert_eq!(visits.len(), 300);

    for model in ["MODEL1", "MODEL2", "MODEL3"] {
        let expected = oracle::answers(&visits, model, Utc::now(), 7);
        assert_eq!(expected.len(), 12);
        let api = cloud.api_url.clone();
        // The last answers seen, so that a timeout says what differed.
        let last: std::sync::Arc<std::sync::Mutex<String>> = Default::default();
        let seen = last.clone();
        let got = tokio::time::timeout(
            Duration::from_secs(180),
            wait_for(&format!("{model} answers from the API"), Duration::from_secs(600), || {
                let (api, expected, seen) = (api.clone(), expected.clone(), seen.clone());
                async move {
                    let mut got = BTreeMap::new();
                    for cid in expected.keys() {
                        let answer = http_get(&format!("{api}/api/v1/getGender/{cid}?model={model}")).await;
                        match &answer {
                            Ok((200, body)) => {
                                let v: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
                                got.insert(cid.clone(), v["gndr"].as_str().unwrap_or_default().to_string());
                            }
                            other => {
                                got.insert(cid.clone(), format!("{other:?}"));
                            }
                        }
                    }
                    *seen.lock().unwrap() = format!("{got:?}");
                    (got == expected).then_some(got)
                }
            }),
        )
        .await
        .unwrap_or_else(|_| panic!("{model}: API answers never matched.\n expected {expected:?}\n last seen {}\n visits {visits:?}", last.lock().unwrap()));
        assert_eq!(got, expected);
    }

    // `tally tail` prints the published results as JSON lines.
    let out = tally(
        &["tail", "GenderResultsStream", "--from-beginning"],
        &cloud.edge_url,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let results: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(results
        .iter()
        .any(|r| r["_id"] == "E2E-0_MODEL2" && r["model"] == "MODEL2"));

    // The bad lines are dead letters of every model, with their reasons.
    let bucket = format!("e2e{}-archivebucket", std::process::id());
    let reasons: Vec<String> =
        tally_tests::read_objects(&clients.s3, &bucket, "dead-letter/MODEL1/")
            .await
            .values()
            .map(|body| {
                serde_json::from_slice::<serde_json::Value>(body).unwrap()["reason"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect();
    assert!(
        reasons.iter().any(|r| r.contains("unknown gender \"x\"")),
        "{reasons:?}"
    );
    assert!(
        reasons.iter().any(|r| r.starts_with("malformed json")),
        "{reasons:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_over_http_answers_json_errors_with_4xx() {
    let cloud = shared_cloud();
    let cases = [
        ("/", 200, "service"),
        (
            "/api/v1/getGender/NOBODY?model=MODEL2",
            404,
            "unknown cid NOBODY",
        ),
        ("/api/v1/getGender/C1?model=MODEL9", 400, "unknown model"),
        ("/api/v1/getGender/C1?model=", 400, "unknown model"),
        ("/api/v1/getGender/a%20b", 400, "invalid cid"),
        ("/api/v1/nothing", 404, "no route"),
    ];
    for (path, status, text) in cases {
        let (got, body) = http_get(&format!("{}{path}", cloud.api_url)).await.unwrap();
        assert_eq!(got, status, "{path}: {body}");
        let v: serde_json::Value =
            serde_json::from_str(&body).unwrap_or_else(|_| panic!("{path}: not JSON: {body}"));
        assert!(body.contains(text), "{path}: {v}");
    }
}

#[test]
fn tally_invoke_runs_every_events_file_in_a_private_cloud() {
    let events = local_root().join("events");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&events)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert_eq!(files.len(), 8, "one event per function");
    // Nothing listens there: each invocation brings up its own emulators and resources.
    let nowhere = format!(
        "http://127.0.0.1:{}",
        tally_infra::emulators::free_port().unwrap()
    );
    for file in files {
        let function = file.file_stem().unwrap().to_str().unwrap();
        let out = Command::new(bin_dir().join("tally"))
            .args([
                "invoke",
                function,
                "--event",
                file.to_str().unwrap(),
                "--bin-dir",
                bin_dir().to_str().unwrap(),
            ])
            .current_dir(local_root())
            .env("AWS_ENDPOINT_URL", &nowhere)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "tally invoke {function}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let response: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!("{function}: {e}: {}", String::from_utf8_lossy(&out.stdout))
        });
        if function == "GenderApiFunction" {
            // A fresh cloud has no results: the lookup is a JSON 404, not a 5xx.
            assert_eq!(response["statusCode"], 404, "{response}");
            assert!(response["body"]
                .as_str()
                .unwrap()
                .contains("unknown cid C124"));
        } else {
            assert_eq!(
                response["batchItemFailures"],
                serde_json::json!([]),
                "{function}: {response}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tally_invoke_uses_the_running_cloud_resources() {
    let cloud = shared_cloud();
    let event = local_root().join("events/Model2Function.json");
    let out = tally(
        &[
            "invoke",
            "Model2Function",
            "--event",
            event.to_str().unwrap(),
            "--bin-dir",
            bin_dir().to_str().unwrap(),
        ],
        &cloud.edge_url,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let response: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(response["batchItemFailures"], serde_json::json!([]));
    // The invocation wrote to the running cloud's state table.
    let clients = Clients::new(&Endpoints::all(&cloud.edge_url)).await;
    let item = clients
        .dynamodb
        .get_item()
        .table_name(format!("e2e{}-GenderStateTable", std::process::id()))
        .key("pk", AttributeValue::S("MODEL2#C124".into()))
        .send()
        .await
        .unwrap()
        .item
        .expect("MODEL2#C124 written by the invoked function");
    assert_eq!(item["c_all_male"].as_n().unwrap(), "2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_source_mapping_retries_bisects_filters_and_sends_exhausted_batches_to_the_queue() {
    let mut opts = options();
    opts.template = local_root().join("tests/fixtures/esm/template.yaml");
    opts.stack_name = format!("esm{}", std::process::id());
    let cloud = LocalCloud::start(opts)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let name = |id: &str| cloud.template.physical_name(id);
    let kind = |id: u64| match id {
        17 => "crash_once",
        22 => "exit_once",
        31 => "hang_once",
        _ if id.is_multiple_of(13) => "skip",
        _ if id % 10 == 3 => "fail_once",
        _ => "ok",
    };
    let mut entries = Vec::new();
    for id in 1..=40u64 {
        entries.push((
            format!("k{}", id % 2),
            format!(r#"{{"id":{id},"kind":"{}"}}"#, kind(id)),
        ));
    }
    entries.push(("k0".into(), r#"{"id":100,"kind":"poison"}"#.into()));
    let mut poison_seq = String::new();
    for (key, data) in &entries {
        // One at a time, so each key's records keep the order they were written in.
        let out = cloud
            .clients
            .kinesis
            .put_record()
            .stream_name(name("InputStream"))
            .partition_key(key)
            .data(aws_sdk_kinesis::primitives::Blob::new(data.as_bytes()))
            .send()
            .await
            .unwrap();
        poison_seq = out.sequence_number().to_string();
    }

    let queue_url = format!(
        "{}/{}/{}",
        cloud.edge_url,
        tally_infra::template::ACCOUNT,
        name("FailureQueue")
    );
    let sqs = cloud.clients.sqs.clone();
    let message = wait_for(
        "a failed batch on the on-failure queue",
        Duration::from_secs(60),
        || {
            let (sqs, url) = (sqs.clone(), queue_url.clone());
            async move {
                sqs.receive_message()
                    .queue_url(url)
                    .send()
                    .await
                    .ok()?
                    .messages()
                    .first()
                    .and_then(|m| m.body().map(String::from))
            }
        },
    )
    .await;
    let m: serde_json::Value = serde_json::from_str(&message).unwrap();
    assert_eq!(m["requestContext"]["condition"], "RetryAttemptsExhausted");
    assert_eq!(
        m["requestContext"]["approximateInvokeCount"], 3,
        "1 attempt + MaximumRetryAttempts 2"
    );
    assert_eq!(
        m["KinesisBatchInfo"]["startSequenceNumber"],
        poison_seq.as_str()
    );
    assert_eq!(m["KinesisBatchInfo"]["batchSize"], 1);

    // Every record that is not filtered out completes, in shard order; the others never arrive.
    let db = cloud.clients.dynamodb.clone();
    let table = name("LedgerTable");
    let orders = wait_for("all records completed", Duration::from_secs(60), || {
        let (db, table) = (db.clone(), table.clone());
        async move {
            let items = db
                .scan()
                .table_name(table)
                .consistent_read(true)
                .send()
                .await
                .ok()?
                .items()
                .to_vec();
            let orders: Vec<Vec<u64>> = items
                .iter()
                .filter(|i| i["pk"].as_s().unwrap().starts_with("order#"))
                .map(|i| {
                    i["ids"]
                        .as_l()
                        .unwrap()
                        .iter()
                        .map(|v| v.as_n().unwrap().parse().unwrap())
                        .collect()
                })
                .collect();
            let done: std::collections::BTreeSet<u64> = orders.iter().flatten().copied().collect();
            let wanted = (1..=40u64).filter(|id| kind(*id) != "skip").count();
            (done.len() == wanted).then_some(orders)
        }
    })
    .await;
    for order in &orders {
        let mut firsts = Vec::new();
        for id in order {
            if !firsts.contains(id) {
                firsts.push(*id);
            }
        }
        assert!(
            firsts.windows(2).all(|w| w[0] < w[1]),
            "per-shard order kept: {order:?}"
        );
    }
    let deliveries = |id: u64| {
        let (db, table) = (db.clone(), table.clone());
        async move {
            db.get_item()
                .table_name(table)
                .key("pk", AttributeValue::S(format!("id#{id}")))
                .consistent_read(true)
                .send()
                .await
                .unwrap()
                .item
                .map_or(0, |i| {
                    i["deliveries"].as_n().unwrap().parse::<u64>().unwrap()
                })
        }
    };
    assert_eq!(deliveries(13).await, 0, "filtered out by FilterCriteria");
    assert_eq!(deliveries(26).await, 0);
    assert!(
        deliveries(3).await >= 2,
        "a partial batch failure is redelivered"
    );
    assert!(
        deliveries(17).await >= 2,
        "a crashed invocation is bisected and retried"
    );
    assert!(deliveries(100).await >= 3);
    assert!(
        deliveries(22).await >= 2,
        "a process that died is replaced and the record retried"
    );
    assert!(
        deliveries(31).await >= 2,
        "a timed-out invocation is stopped and retried"
    );
    let host = cloud.functions["FlakyFunction"].stats();
    assert!(
        host.cold_starts >= 3,
        "the first start, after the exit, after the timeout: {host:?}"
    );
    assert!(host.init_ms_max > 0.0);
    let stats = cloud.mappings[0].stats.lock().unwrap().clone();
    assert!(stats.bisections >= 1, "{stats:?}");
    assert!(stats.partial_failures >= 4, "{stats:?}");
    assert_eq!(stats.filtered_out, 3);
    cloud.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn firehose_archives_every_raw_record_gzipped_and_newline_delimited_by_day() {
    let mut opts = options();
    opts.stack_name = format!("arc{}", std::process::id());
    let mut cloud = LocalCloud::start(opts)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let visits = vec![
        r#"{"cid":"A1","gndr":"male"}"#.to_string(),
        "not json".to_string(),
        r#"{"cid":"A2","gndr":"x"}"#.to_string(),
    ];
    let interactions = vec![
        r#"{"user_id":1,"property_id":1,"date":"2021-11-30 00:00:00","event":"Interaction"}"#
            .to_string(),
        r#"{"user_id":1,"property_id":2,"date":"2021-11-30 00:00:01","event":"View"}"#.to_string(),
    ];
    for (stream, lines) in [
        ("VisitsStream", &visits),
        ("InteractionsStream", &interactions),
    ] {
        for l in lines {
            cloud
                .clients
                .kinesis
                .put_record()
                .stream_name(cloud.template.physical_name(stream))
                .partition_key("k")
                .data(aws_sdk_kinesis::primitives::Blob::new(l.as_bytes()))
                .send()
                .await
                .unwrap();
        }
    }
    // Every record read by each delivery stream, then stop: buffers are delivered, not lost.
    let deliveries = cloud.deliveries.clone();
    wait_for(
        "Firehose to read both streams",
        Duration::from_secs(60),
        || {
            let d = deliveries.clone();
            async move {
                d.iter()
                    .all(|d| d.stats.lock().unwrap().records >= 2)
                    .then_some(())
            }
        },
    )
    .await;
    cloud.drain().await;
    let bucket = cloud.template.physical_name("ArchiveBucket");
    let today = Utc::now().format("%Y-%m-%d").to_string();
    for (prefix, lines) in [
        ("raw/visits/", &visits),
        ("raw/interactions/", &interactions),
    ] {
        let mut archived = String::new();
        for (key, body) in tally_tests::read_objects(&cloud.clients.s3, &bucket, prefix).await {
            assert!(
                key.starts_with(&format!("{prefix}dt={today}/")) && key.ends_with(".gz"),
                "{key}"
            );
            let mut text = String::new();
            std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&body[..]), &mut text)
                .unwrap();
            archived.push_str(&text);
        }
        assert_eq!(
            archived,
            lines.iter().map(|l| format!("{l}\n")).collect::<String>(),
            "{prefix}"
        );
    }
    cloud.stop().await;
}
