//! The local cloud failing as AWS fails under load (`tally up --faults`): DynamoDB throttling,
//! Kinesis refusing records inside a 200 `PutRecords`, S3 `SlowDown` and functions killed in the
//! middle of an invocation, with hostile event times in every input stream (chrono's limits,
//! year 9999, negative epochs, dates that cannot exist). Every pipeline's answers and the lake's
//! tables stay exactly what an independent computation gives, the hostile records are bad rows
//! `time_out_of_range`, and `/collect` answers 503 with `Retry-After` when Kinesis refuses all.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use chrono::Utc;
use serde_json::{json, Value};
use tally_cloud::clients::{Clients, Endpoints};
use tally_cloud::cloud::LocalCloud;
use tally_cloud::faults::{FaultSpec, Faults};
use tally_cloud::http::http_get;
use tally_cloud::kinesis::{put_all, read_stream, ShardRecord};
use tally_gen::meetup::{default_start, Clock, RsvpGenerator, Shape};

use crate::gender::oracle;
use crate::support::{cloud_options, register_app, tally_for, tally_stdout, wait_for};

/// The mix of the "done when".
const FAULTS: &str = "dynamodb:throttle=0.1,kinesis:throttle=0.1,s3:error=0.05,lambda:crash=0.02";

/// A cloud of this test's own, failing as `spec` says.
async fn cloud_with(name: &str, spec: &str) -> (LocalCloud, String) {
    let stack = format!("{name}{}", std::process::id());
    let mut opts = cloud_options(&stack);
    opts.faults = Faults::new(FaultSpec::parse(spec).unwrap(), 21);
    let cloud = LocalCloud::start(opts)
        .await
        .unwrap_or_else(|e| panic!("local cloud: {e}"));
    (cloud, stack)
}

/// Puts the lines as the KPL would (refused records sent again), then reads the stream back:
/// what the oracles count is what the stream holds, in its order.
async fn put_lines(
    clients: &Clients, stream: &str, lines: &[(String, String)],
) -> Vec<ShardRecord> {
    let put = put_all(&clients.kinesis, stream, lines, |_| {}).await;
    assert_eq!(put.refused, 0, "every record put in the end: {put:?}");
    wait_for(
        &format!("{stream} to hold every record"),
        Duration::from_secs(60),
        || async {
            let records = read_stream(&clients.kinesis, stream).await.ok()?;
            (records.len() >= lines.len()).then_some(records)
        },
    )
    .await
}

fn sql(stack: &str, edge: &str, query: &str) -> Vec<Value> {
    tally_stdout(stack, &["sql", "--format", "json", query], edge)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Polls `url` until `check` of its JSON answer gives what `want` is; says what differed.
async fn wait_for_answer(what: &str, url: String, want: Value, check: fn(Value) -> Value) {
    let last = std::sync::Arc::new(std::sync::Mutex::new(Value::Null));
    let seen = last.clone();
    let matched = tokio::time::timeout(
        Duration::from_secs(240),
        wait_for(what, Duration::from_secs(600), || {
            let (url, want, seen) = (url.clone(), want.clone(), seen.clone());
            async move {
                let (status, body) = http_get(&url).await.ok()?;
                let got = check(serde_json::from_str(&body).ok()?);
                *seen.lock().unwrap() = got.clone();
                (status == 200 && got == want).then_some(())
            }
        }),
    )
    .await;
    if matched.is_err() {
        panic!(
            "{what}:\n got {}\nwant {want}",
            last.lock().unwrap().clone()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_pipeline_and_the_lake_stay_exact_when_aws_throttles_fails_and_kills() {
    let (cloud, stack) = cloud_with("faults", FAULTS).await;
    let (edge, api) = (cloud.edge_url.clone(), cloud.api_url.clone());
    let clients = Clients::new(&Endpoints::all(&edge)).await;
    let stream = |id: &str| format!("{stack}-{id}");
    let now = Utc::now();

    // Visits: the hostile ones first, so the records after them prove the shard never stalls.
    let mut visits: Vec<(String, String)> = [
        json!(8_210_266_876_799_999i64),
        json!("9999-12-31T23:59:59Z"),
        json!(-1),
        json!("2026-02-30T00:00:00Z"),
    ]
    .into_iter()
    .map(|ts| {
        (
            "F-0".to_string(),
            json!({"cid": "F-0", "gndr": "female", "ts": ts}).to_string(),
        )
    })
    .collect();
    for i in 0..160i64 {
        let cid = format!("F-{}", i % 8);
        let g = if (i * 5 + i / 8) % 3 == 0 {
            "female"
        } else {
            "male"
        };
        let line = match i % 4 {
            0 => json!({"cid": cid, "gndr": g}),
            1 => {
                json!({"cid": cid, "gndr": g, "ts": (now - chrono::Duration::days(10)).to_rfc3339()})
            }
            _ => {
                json!({"cid": cid, "gndr": g, "ts": (now - chrono::Duration::minutes(i)).timestamp_millis()})
            }
        };
        visits.push((cid, line.to_string()));
    }
    // Interactions: three users over the rules' thresholds, in one minute each.
    let mut interactions: Vec<(String, String)> = [
        "9999-12-31 23:59:59",
        "2021-02-30 00:00:00",
        "1969-12-31T23:59:59Z",
    ]
    .into_iter()
    .map(|date| {
        let line = json!({"user_id": 1, "property_id": 101, "date": date, "event": "Interaction"});
        ("1".to_string(), line.to_string())
    })
    .collect();
    for user in 1..=3u64 {
        for i in 0..12 {
            let date = format!("2021-11-30 00:0{user}:{:02}", i * 4);
            let line = json!({"user_id": user, "property_id": 100 + user, "date": date, "event": "Interaction"});
            interactions.push((user.to_string(), line.to_string()));
        }
    }
    // RSVPs of 2020, and three whose mtime no clock could give.
    let clock = Clock::Simulated {
        start: default_start(),
        rate: 20.0,
    };
    let mut rsvp_lines: Vec<String> = RsvpGenerator::new(5, clock, Shape::default())
        .take(300)
        .collect();
    let template: Value = serde_json::from_str(&rsvp_lines[0]).unwrap();
    for (i, mtime) in [
        json!(8_210_266_876_799_999i64),
        json!((now + chrono::Duration::days(1)).timestamp_millis()),
        json!(-1),
    ]
    .into_iter()
    .enumerate()
    {
        let mut hostile = template.clone();
        hostile["mtime"] = mtime;
        hostile["rsvp_id"] = json!(900_000_000 + i);
        rsvp_lines.insert(i, hostile.to_string());
    }
    let rsvps: Vec<(String, String)> = rsvp_lines
        .iter()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            (
                v["event"]["event_id"].as_str().unwrap().to_string(),
                l.clone(),
            )
        })
        .collect();

    let visit_records = put_lines(&clients, &stream("VisitsStream"), &visits).await;
    let interaction_records =
        put_lines(&clients, &stream("InteractionsStream"), &interactions).await;
    put_lines(&clients, &stream("RsvpStream"), &rsvps).await;

    // App events: a fleet through /collect, and direct puts, some with impossible times.
    let (_, key) = register_app(&stack, &edge, "Faulty");
    let dir = std::env::temp_dir().join(format!("tally-faults-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let fleet = dir.join("fleet.jsonl");
    let args = [
        "gen",
        "events",
        "--devices",
        "10",
        "--minutes",
        "10",
        "--seed",
        "9",
    ];
    let out = tally_for(
        &stack,
        &[&args[..], &["--out", fleet.to_str().unwrap()]].concat(),
        &edge,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = tally_for(
        &stack,
        &[
            "collect",
            fleet.to_str().unwrap(),
            "--key",
            &key,
            "--url",
            &api,
        ],
        &edge,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut direct: Vec<(String, String)> = Vec::new();
    for (i, client_time) in [
        json!(8_210_266_876_799_999i64),
        json!("9999-12-31T23:59:59Z"),
        json!(-1),
        json!(now.to_rfc3339()),
        json!(now.to_rfc3339()),
    ]
    .into_iter()
    .enumerate()
    {
        let e = json!({"event_id": format!("direct-{i}"), "event_type": "app_open", "client_time": client_time, "device": {"id": "dev-direct"}, "app_id": "forged"});
        direct.push(("dev-direct".into(), e.to_string()));
    }
    let event_records = put_lines(&clients, &stream("EventsStream"), &direct).await;

    // Gender: the API answers what the visits say, hostile ones left out.
    let mut valid_visits = Vec::new();
    for r in &visit_records {
        if let Some(v) = oracle::parse_visit(
            &r.data,
            (r.arrival * 1000.0).round() as i64,
            valid_visits.len(),
        ) {
            valid_visits.push(v);
        }
    }
    assert_eq!(
        valid_visits.len(),
        160,
        "the four hostile visits are not visits"
    );
    for model in ["MODEL1", "MODEL2", "MODEL3"] {
        let want = oracle::answers(&valid_visits, model, Utc::now(), 7);
        let api = api.clone();
        let last: std::sync::Arc<std::sync::Mutex<String>> = Default::default();
        let seen = last.clone();
        let got = tokio::time::timeout(
            Duration::from_secs(240),
            wait_for(
                &format!("{model} answers"),
                Duration::from_secs(600),
                || {
                    let (api, want, seen) = (api.clone(), want.clone(), seen.clone());
                    async move {
                        let mut got = BTreeMap::new();
                        for cid in want.keys() {
                            let url = format!("{api}/api/v1/getGender/{cid}?model={model}");
                            if let Ok((200, body)) = http_get(&url).await {
                                let v: Value = serde_json::from_str(&body).unwrap_or_default();
                                got.insert(
                                    cid.clone(),
                                    v["gndr"].as_str().unwrap_or_default().to_string(),
                                );
                            }
                        }
                        *seen.lock().unwrap() = format!("{got:?}");
                        (got == want).then_some(())
                    }
                },
            ),
        )
        .await;
        assert!(
            got.is_ok(),
            "{model}: want {want:?}, last seen {}",
            last.lock().unwrap()
        );
    }

    // Rules: each alert once, with the count at which its rule first held.
    let mut want_alerts = BTreeSet::new();
    for user in 1..=3u64 {
        want_alerts.insert((format!("paid_user:{user}"), 9));
        want_alerts.insert((format!("property_status:{}", 100 + user), 6));
        want_alerts.insert((
            format!("possible_broker:{user}:2021-11-30T00:0{user}:00.000Z"),
            11,
        ));
    }
    assert_eq!(interaction_records.len(), 39);
    let alerts = wait_for("every alert", Duration::from_secs(240), || {
        let (kinesis, want) = (clients.kinesis.clone(), want_alerts.clone());
        let streams = [
            "PaidUserStream",
            "PropertyStatusStream",
            "PossibleBrokerStream",
        ]
        .map(&stream);
        async move {
            let mut got = BTreeSet::new();
            for s in &streams {
                for r in read_stream(&kinesis, s).await.ok()? {
                    let v: Value = serde_json::from_slice(&r.data).ok()?;
                    let count = [
                        "interactions_count",
                        "property_interactions_count",
                        "threat_user_interactions",
                    ]
                    .iter()
                    .find_map(|c| v[*c].as_u64())?;
                    got.insert((v["alert_id"].as_str()?.to_string(), count));
                }
            }
            (got.len() >= want.len()).then_some(got)
        }
    })
    .await;
    assert_eq!(alerts, want_alerts, "each alert once, at its first count");

    // RSVP stats: the contract's window over the valid RSVPs; no future mtime pins it.
    wait_for_answer(
        "the RSVP stats",
        format!("{api}/api/v1/rsvp/stats"),
        crate::rsvp::expected(&rsvp_lines),
        crate::rsvp::without_as_of,
    )
    .await;

    // Event metrics: the fleet under its app, the direct puts (whatever app they name) under
    // `direct`, each once; the impossible times are not events.
    let mut first: BTreeMap<(String, String), String> = BTreeMap::new();
    let all_events = read_stream(&clients.kinesis, &stream("EventsStream"))
        .await
        .unwrap();
    assert!(all_events.len() > event_records.len() / 2);
    for r in &all_events {
        let Ok(v) = serde_json::from_slice::<Value>(&r.data) else {
            continue;
        };
        let sealed = v.get("ingest_seal").is_some();
        let in_range = match &v["client_time"] {
            Value::String(t) => t
                .parse::<chrono::DateTime<Utc>>()
                .is_ok_and(|t| t.timestamp() >= 0 && t <= now + chrono::Duration::days(1)),
            Value::Number(n) => n
                .as_i64()
                .is_some_and(|ms| (0..=now.timestamp_millis() + 86_400_000).contains(&ms)),
            _ => false,
        };
        let (Some(id), Some(t), true) =
            (v["event_id"].as_str(), v["event_type"].as_str(), in_range)
        else {
            continue;
        };
        let app = if sealed {
            v["app_id"].as_str().unwrap()
        } else {
            "direct"
        };
        first
            .entry((app.to_string(), id.to_string()))
            .or_insert(t.to_string());
    }
    let totals = |app: &str| -> Value {
        let mut t: BTreeMap<&str, u64> = BTreeMap::new();
        for ((a, _), ty) in &first {
            if a == app {
                *t.entry(ty.as_str()).or_default() += 1;
            }
        }
        json!(t)
    };
    let fleet_app = first
        .keys()
        .find(|(a, _)| a != "direct")
        .map(|(a, _)| a.clone())
        .expect("the fleet's events");
    assert_eq!(totals("direct"), json!({"app_open": 2}));
    for app in [fleet_app.as_str(), "direct"] {
        wait_for_answer(
            &format!("the event metrics of {app}"),
            format!("{api}/api/v1/events/metrics?minutes=1440&app_id={app}"),
            totals(app),
            |v| v["totals"].clone(),
        )
        .await;
    }

    // The lake: every table exact, and each hostile record a bad row out of range.
    let count = |q: &str| sql(&stack, &edge, q)[0]["n"].as_u64().unwrap();
    assert_eq!(count("SELECT count(*) AS n FROM visits"), 160);
    assert_eq!(count("SELECT count(DISTINCT alert_id) AS n FROM alerts"), 9);
    assert_eq!(count("SELECT count(*) AS n FROM alerts"), 9);
    let valid_rsvps: BTreeSet<u64> = rsvp_lines
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| {
            v["mtime"]
                .as_i64()
                .is_some_and(|m| m >= 0 && m < now.timestamp_millis())
        })
        .filter_map(|v| v["rsvp_id"].as_u64())
        .collect();
    assert_eq!(
        count("SELECT count(*) AS n FROM rsvps"),
        valid_rsvps.len() as u64
    );
    assert_eq!(
        count("SELECT count(*) AS n FROM fact_events"),
        first.len() as u64
    );
    let bad = sql(
        &stack,
        &edge,
        "SELECT source, count(*) AS n FROM bad_records WHERE reason_code = 'time_out_of_range' GROUP BY source ORDER BY source",
    );
    let sources: BTreeMap<String, u64> = bad
        .iter()
        .map(|r| {
            (
                r["source"].as_str().unwrap().to_string(),
                r["n"].as_u64().unwrap(),
            )
        })
        .collect();
    for (source, hostile) in [
        ("MODELS", 4),
        ("paid_user", 3),
        ("property_status", 3),
        ("possible_broker", 3),
        ("rsvp-stats", 3),
        ("events-metrics", 3),
    ] {
        assert_eq!(sources.get(source), Some(&hostile), "{source}: {sources:?}");
    }

    // The faults did happen.
    let injected = cloud.faults.injected();
    for fault in ["dynamodb:throttle", "kinesis:throttle", "s3:error"] {
        assert!(
            injected.get(fault).is_some_and(|n| *n > 0),
            "{fault} never struck: {injected:?}"
        );
    }
    eprintln!("faults injected: {injected:?}");
    cloud.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collect_answers_503_with_retry_after_over_http_when_kinesis_refuses_every_record() {
    let (cloud, stack) = cloud_with("throttled", "kinesis:throttle=1").await;
    let (_, key) = register_app(&stack, &cloud.edge_url, "Throttled");
    let body = json!([{"event_id": "e1", "event_type": "app_open", "client_time": Utc::now().to_rfc3339(), "device": {"id": "d1"}}]).to_string();
    let out = std::process::Command::new("curl")
        .args([
            "-s",
            "-i",
            "-X",
            "POST",
            "-H",
            &format!("x-api-key: {key}"),
            "-H",
            "content-type: application/json",
            "--data",
            &body,
        ])
        .arg(format!("{}/collect", cloud.api_url))
        .output()
        .unwrap();
    let answer = String::from_utf8_lossy(&out.stdout).to_lowercase();
    assert!(answer.starts_with("http/1.1 503"), "{answer}");
    assert!(answer.contains("\r\nretry-after: 1\r\n"), "{answer}");
    assert!(
        answer.contains("\"error\":\"events stream is throttling"),
        "{answer}"
    );
    let log = std::fs::read_to_string(cloud.functions["CollectFunction"].spec().log_file.clone())
        .unwrap();
    assert!(
        log.contains("\"ServiceUnavailable\":1"),
        "the 503 is counted for its alarm: {log}"
    );
    assert!(cloud.faults.injected()["kinesis:throttle"] > 0);
    cloud.stop().await;
}
