//! The gender pipeline end to end on the local cloud: visits put with `tally put`, answers read
//! from the API over HTTP, compared with answers computed independently.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::Utc;
use tally_cloud::clients::{Clients, Endpoints};
use tally_cloud::http::http_get;
use tally_engine::testing::assert_reasons_include;

use super::oracle;
use crate::support::{self, shared_cloud, shared_stack, tally, wait_for};

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
    let stream = format!("{}-VisitsStream", shared_stack());
    let mut visits = Vec::new();
    for r in tally_cloud::kinesis::read_stream(&clients.kinesis, &stream)
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

    // The bad lines are dead letters of the models' function, with their reasons.
    let bucket = format!("{}-archivebucket", shared_stack());
    let reasons: Vec<String> = support::read_objects(&clients.s3, &bucket, "dead-letter/MODELS/")
        .await
        .values()
        .map(|body| {
            serde_json::from_slice::<serde_json::Value>(body).unwrap()["reason"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_reasons_include(&reasons, &["unknown gender \"x\"", "malformed json"]);
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
