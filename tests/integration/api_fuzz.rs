//! The HTTP API against its description: every route of the template is in docs/openapi.json,
//! which `GET /openapi.json` serves; and schemathesis (PyPI, pinned) fuzzes every operation of it
//! on the shared local cloud with every check but `unsupported_method`: no 5xx, every answer's
//! status, type and body as documented, every request the document allows accepted and every one
//! it forbids refused.

use std::collections::BTreeSet;
use std::process::Command;

use serde_json::Value;
use tally_cloud::http::http_get;

use crate::support::{local_root, shared_cloud};

fn document() -> Value {
    serde_json::from_str(&std::fs::read_to_string(local_root().join("docs/openapi.json")).unwrap())
        .unwrap()
}

#[test]
fn every_route_of_the_template_is_described() {
    let template = tally_stack::template::Template::load(
        &local_root().join("template.yaml"),
        "tally",
        &Default::default(),
    )
    .unwrap();
    let doc = document();
    let described: BTreeSet<(String, String)> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, ops)| {
            ops.as_object()
                .unwrap()
                .keys()
                .map(move |m| (m.to_uppercase(), path.clone()))
        })
        .collect();
    let mut routes = BTreeSet::new();
    for f in template.of_kind("AWS::Serverless::Function") {
        for (_, e) in f.properties["Events"].as_object().into_iter().flatten() {
            if e["Type"] != "HttpApi" {
                continue;
            }
            let (method, path) = (
                e["Properties"]["Method"].as_str().unwrap(),
                e["Properties"]["Path"].as_str().unwrap(),
            );
            if path.contains('+') {
                continue; // a catch-all: its routes are the function's own, described one by one
            }
            routes.insert((method.to_uppercase(), path.to_string()));
        }
    }
    let missing: Vec<_> = routes.difference(&described).collect();
    assert!(
        missing.is_empty(),
        "routes not in docs/openapi.json: {missing:?}"
    );
}

/// The fuzzing's seed: the same cases every run, so a failure replays.
const SEED: &str = "20261201";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_5xx_and_no_answer_unlike_the_document() {
    let cloud = shared_cloud();
    let (status, served) = http_get(&format!("{}/openapi.json", cloud.api_url))
        .await
        .unwrap();
    assert_eq!(status, 200);
    assert_eq!(
        serde_json::from_str::<Value>(&served).unwrap(),
        document(),
        "the served document is docs/openapi.json"
    );
    let st = local_root().join(".venv-fuzz/bin/st");
    assert!(
        st.is_file(),
        "{} is missing: run `make setup`",
        st.display()
    );
    // With a real key, /collect is fuzzed beyond its 401.
    let (_, key) = crate::events::register(&cloud.edge_url, "fuzz");
    // 50 examples an operation in `make test` (seconds); TALLY_FUZZ_EXAMPLES=300 for the long run
    // (about 25 s on 2 cores, 1,350 cases, passing on 2026-12-03).
    let examples = std::env::var("TALLY_FUZZ_EXAMPLES").unwrap_or_else(|_| "50".into());
    let out = Command::new(&st)
        .args([
            "run",
            &format!("{}/openapi.json", cloud.api_url),
            "--header",
            &format!("x-api-key: {key}"),
            // Every check but `unsupported_method`: API Gateway answers an undeclared method of
            // a declared path 404 (no route), as the local API does, not 405.
            "--checks",
            "all",
            "--exclude-checks",
            "unsupported_method",
            "--phases",
            "examples,coverage,fuzzing",
            "--max-examples",
            &examples,
            "--seed",
            SEED,
            // One worker: with two, hypothesis parses lambdas' sources (`ast`) on two threads
            // at once, which Python 3.11 cannot (CPython gh-106905: "AST constructor recursion
            // depth mismatch" failed a run of this test on 3 December).
            "--workers",
            "1",
            "--no-color",
        ])
        .env("SCHEMATHESIS_TELEMETRY", "false")
        .current_dir(std::env::temp_dir())
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    let summary: String = report
        .lines()
        .rev()
        .take(12)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        out.status.success(),
        "schemathesis found failures (seed {SEED}, {examples} examples; `st replay ID` replays one):\n{report}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(report.contains("passed"), "{summary}");
}
