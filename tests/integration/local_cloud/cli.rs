//! The `tally` CLI against the local cloud: `tally invoke`, the Docker-free `sam local invoke`.

use std::path::PathBuf;
use std::process::Command;

use aws_sdk_dynamodb::types::AttributeValue;
use tally_cloud::clients::{Clients, Endpoints};

use crate::support::{
    bin_dir, local_root, run_ok, shared_cloud, shared_stack, tally, tally_for, template_with,
    PER_MODEL,
};

#[test]
fn tally_invoke_runs_every_events_file_in_a_private_cloud() {
    let events = local_root().join("events");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&events)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    // Every function of either gender deployment and of the example pipeline; those not in the
    // default deployment are invoked with the parameter that deploys them.
    let example = [("ExamplePipeline", "yes")];
    let (default, per_model) = (template_with(&[]), template_with(PER_MODEL));
    let with_example = template_with(&example);
    // The local cloud deploys the extractor with its own core database.
    let with_core_db = template_with(&[
        ("CoreDbEndpoint", "127.0.0.1:3306"),
        (
            "CoreDbSecretArn",
            "arn:aws:secretsmanager:us-east-1:000000000000:secret:x",
        ),
    ]);
    let mut functions: Vec<String> = default
        .of_kind("AWS::Serverless::Function")
        .chain(per_model.of_kind("AWS::Serverless::Function"))
        .chain(with_example.of_kind("AWS::Serverless::Function"))
        .chain(with_core_db.of_kind("AWS::Serverless::Function"))
        .map(|f| format!("{}.json", f.logical_id))
        .collect();
    functions.sort();
    functions.dedup();
    let names: Vec<String> = files
        .iter()
        .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, functions, "one event per function");
    // Nothing listens there: each invocation brings up its own emulators and resources.
    let nowhere = format!(
        "http://127.0.0.1:{}",
        tally_cloud::emulators::free_port().unwrap()
    );
    for file in files {
        let function = file.file_stem().unwrap().to_str().unwrap();
        let deployment = if default.resources.contains_key(function)
            || with_core_db.resources.contains_key(function)
        {
            vec![]
        } else if with_example.resources.contains_key(function) {
            vec!["--param", "ExamplePipeline=yes"]
        } else {
            vec!["--param", "GenderDeployment=per-model"]
        };
        let mut invoke = Command::new(bin_dir().join("tally"));
        invoke
            .args([
                "invoke",
                function,
                "--event",
                file.to_str().unwrap(),
                "--bin-dir",
                bin_dir().to_str().unwrap(),
            ])
            .args(&deployment)
            .current_dir(local_root())
            .env("AWS_ENDPOINT_URL", &nowhere)
            // A stack of this test's own: its core database is not the developer's `tally`.
            .env("TALLY_STACK", format!("cli{}", std::process::id()));
        let out = run_ok(&mut invoke, &format!("tally invoke {function}"));
        let response: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!("{function}: {e}: {}", String::from_utf8_lossy(&out.stdout))
        });
        if function == "GenderApiFunction" {
            // A fresh cloud has no results: the lookup is a JSON 404, not a 5xx.
            assert_answer(&response, 404, "unknown cid C124");
        } else if function == "LiveApiFunction" {
            // No RSVP yet: empty statistics, not an error.
            assert_eq!(response["statusCode"], 200, "{response}");
            let stats: serde_json::Value =
                serde_json::from_str(response["body"].as_str().unwrap()).unwrap();
            assert_eq!(stats["totals"]["rsvps"], 0, "{stats}");
        } else if function == "CollectFunction" {
            // A fresh cloud has no apps: the sample's key is unknown, a JSON 403.
            assert_answer(&response, 403, "unknown app key");
        } else if function == "EventsRouterFunction" {
            // Firehose's transformation answers per record.
            let results: Vec<&str> = response["records"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["result"].as_str().unwrap())
                .collect();
            assert_eq!(results, ["Ok", "ProcessingFailed", "ProcessingFailed"]);
        } else if function == "ArchiveStampFunction" {
            // Every record archived as it came, with where it came from.
            let lines: Vec<Vec<u8>> = response["records"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| {
                    assert_eq!(r["result"], "Ok", "{r}");
                    base64::Engine::decode(
                        &base64::engine::general_purpose::STANDARD,
                        r["data"].as_str().unwrap(),
                    )
                    .unwrap()
                })
                .collect();
            let records: Vec<Vec<u8>> = lines
                .iter()
                .map(|l| tally_engine::archive::unstamp(l).1.into_owned())
                .collect();
            assert_eq!(records[1], b"not json");
            assert!(records[0].starts_with(br#"{"cid": "C124""#), "{response}");
        } else if function == "GroupClustersFunction" {
            // An empty lake: no groups, so no model, and says so (the tables written empty).
            assert_eq!(
                (
                    &response["groups"],
                    &response["per_cluster"],
                    &response["model"]
                ),
                (
                    &serde_json::json!(0),
                    &serde_json::json!([]),
                    &serde_json::Value::Null
                ),
                "{response}"
            );
        } else if function == "CoreExtractorFunction" {
            // The private cloud's core database, generated: every row a first version.
            let versions: Vec<(&str, u64)> = response["tables"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| {
                    (
                        t["dimension"].as_str().unwrap(),
                        t["versions"].as_u64().unwrap(),
                    )
                })
                .collect();
            assert_eq!(
                versions,
                [("dim_vendor", 20), ("dim_flyer", 200), ("dim_user", 500)],
                "{response}"
            );
        } else if function == "VendorOpensFunction" {
            // An empty lake: the day, and no opens.
            assert_eq!(
                (&response["day"], &response["opens"], &response["vendors"]),
                (
                    &serde_json::json!("2026-11-22"),
                    &serde_json::json!(0),
                    &serde_json::json!([])
                ),
                "{response}"
            );
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
    let event = local_root().join("events/GenderModelsFunction.json");
    let out = tally(
        &[
            "invoke",
            "GenderModelsFunction",
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
        .table_name(format!("{}-GenderStateTable", shared_stack()))
        .key("pk", AttributeValue::S("MODELS#C124".into()))
        .send()
        .await
        .unwrap()
        .item
        .expect("MODELS#C124 written by the invoked function");
    assert_eq!(item["c_all_male"].as_n().unwrap(), "2");
    // A function of the other deployment is named as such, in one line.
    let out = tally(
        &[
            "invoke",
            "Model2Function",
            "--event",
            event.to_str().unwrap(),
        ],
        &cloud.edge_url,
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("Model2Function is not deployed with these parameters: its condition PerModelDeployment is false"),
        "{err}"
    );
}

/// An API Gateway response of `status` whose body says `text`.
#[track_caller]
fn assert_answer(response: &serde_json::Value, status: u16, text: &str) {
    assert_eq!(response["statusCode"], status, "{response}");
    assert!(
        response["body"].as_str().unwrap().contains(text),
        "{response}"
    );
}

/// The commands find their resources through CloudFormation, and say in one line when there is
/// no cloud, no such stack, or a command that only runs locally.
#[test]
fn commands_find_the_stack_through_cloudformation_or_say_why_not() {
    let cloud = shared_cloud();
    let sample = local_root().join("infra/demo/visits.jsonl");
    let stderr = |out: std::process::Output| {
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let nowhere = format!(
        "http://127.0.0.1:{}",
        tally_cloud::emulators::free_port().unwrap()
    );
    let msg = stderr(tally(
        &["put", "VisitsStream", sample.to_str().unwrap()],
        &nowhere,
    ));
    assert!(
        msg.contains(&format!(
            "cannot reach the local cloud at {nowhere}: start it with `make up`"
        )),
        "{msg}"
    );
    let msg = stderr(tally(
        &["--stack", "nosuch", "apps", "list"],
        &cloud.edge_url,
    ));
    assert!(
        msg.contains("stack nosuch does not exist at the local cloud"),
        "{msg}"
    );
    let msg = stderr(tally(&["--aws", "demo"], &cloud.edge_url));
    assert!(
        msg.contains("tally demo works on the local cloud only, not AWS"),
        "{msg}"
    );
    assert_eq!(msg.trim().lines().count(), 1, "{msg}");
}

/// `tally smoke` against a running stack: every check passes, one line each. A cloud of its own:
/// the smoke's RSVP moves the stats' totals and window, which the RSVP tests on the shared cloud
/// compare with their own records.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tally_smoke_passes_against_a_running_stack() {
    let stack = format!("smk{}", std::process::id());
    let cloud = tally_cloud::cloud::LocalCloud::start(crate::support::cloud_options(&stack))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let edge = cloud.edge_url.clone();
    let out = tokio::task::spawn_blocking(move || tally_for(&stack, &["smoke"], &edge))
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for check in ["gender", "rules", "rsvp", "events", "lake"] {
        assert!(stdout.contains(&format!("ok    {check}: ")), "{stdout}");
    }
    cloud.stop().await;
}
