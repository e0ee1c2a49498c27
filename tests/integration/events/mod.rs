//! The mobile events platform end to end on the shared local cloud: an app registered with
//! `tally apps add`, a generated fleet's events posted with `tally collect` (SDK retries repeat
//! event ids), another fleet's events put straight on `EventsStream` with invalid ones of every
//! documented kind; then the live metrics against an independent computation over what the stream
//! holds, the warehouse from `tally sql` (each event_id once, per type and day), the archive
//! partitioned by type, and typed bad rows. Also every documented `/collect` answer over HTTP.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::time::Duration;

use serde_json::{json, Value};
use tally_cloud::clients::{Clients, Endpoints};
use tally_cloud::http::{http_get, http_send};
use tally_gen::mobile::{batches, Fleet};

use crate::lake::{sql, sql_file};
use crate::support::{chromium_dom, shared_cloud, shared_stack, tally, wait_for};

mod apps;
mod browser;
mod event_files;

/// Registers an app with the CLI on the shared cloud; returns (app_id, key).
pub fn register(edge_url: &str, name: &str) -> (String, String) {
    crate::support::register_app(&crate::support::shared_stack(), edge_url, name)
}

/// `tally gen events` of `devices` over `minutes` with `seed`, into a file of its own.
pub fn generate_fleet(
    edge_url: &str, name: &str, devices: u32, minutes: u32, seed: u64,
) -> std::path::PathBuf {
    generate_fleet_from(edge_url, name, devices, minutes, seed, None)
}

/// [`generate_fleet`] starting at `start` (RFC 3339) rather than the generator's fixed time.
pub fn generate_fleet_from(
    edge_url: &str, name: &str, devices: u32, minutes: u32, seed: u64, start: Option<&str>,
) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("tally-events-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join(format!("{name}.jsonl"));
    let (devices, minutes, seed) = (devices.to_string(), minutes.to_string(), seed.to_string());
    let mut args = vec![
        "gen",
        "events",
        "--devices",
        &devices,
        "--minutes",
        &minutes,
        "--seed",
        &seed,
        "--out",
        file.to_str().unwrap(),
    ];
    if let Some(start) = start {
        args.extend(["--start", start]);
    }
    let out = tally(&args, edge_url);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    file
}

/// Invalid events of every documented kind, as a broken SDK or a direct put may send them.
fn invalid_events() -> Vec<(String, &'static str)> {
    let good = json!({"event_id": "bad-1", "event_type": "search", "client_time": "2026-11-22T10:00:00Z",
        "device": {"id": "dev-bad"}, "attributes": {"query": "milk"}});
    let with = |f: &dyn Fn(&mut Value)| {
        let mut v = good.clone();
        f(&mut v);
        v.to_string()
    };
    vec![
        ("{\"event_id\":\"bad-0\",".to_string(), "malformed_json"),
        (
            with(&|v| {
                v["event_id"] = json!("bad-2");
                v["device"].as_object_mut().unwrap().remove("id");
            }),
            "missing_field",
        ),
        (
            with(&|v| {
                v["event_id"] = json!("bad-3");
                v["event_type"] = json!("teleport");
            }),
            "unknown_type",
        ),
        (
            with(&|v| {
                v["event_id"] = json!("bad-4");
                v["event_type"] = json!("purchase");
                v["attributes"] =
                    json!({"order_id": "o", "item_id": "i", "price": -3, "currency": "CAD"});
            }),
            "schema_violation",
        ),
        (
            with(&|v| {
                v["event_id"] = json!("bad-5");
                v["attributes"]["query"] = json!("x".repeat(40_000));
            }),
            "oversized",
        ),
    ]
}

/// The minute an ISO time falls in, as the API labels it.
fn minute_of(t: chrono::DateTime<chrono::Utc>) -> String {
    let m = t.timestamp().div_euclid(60) * 60;
    chrono::DateTime::from_timestamp(m, 0)
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// A valid event as the stream holds it: the first arrival of each id.
#[derive(Debug, Clone)]
struct Counted {
    event_type: String,
    app: String,
    minute: String,
    day: String,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_posted_and_put_reach_the_metrics_the_warehouse_and_bad_records_exactly_once() {
    let cloud = shared_cloud();
    let (app_id, key) = register(&cloud.edge_url, "Flyers e2e");

    // One fleet through /collect with the CLI, as an SDK posts (its invalid events rejected).
    let file = generate_fleet(&cloud.edge_url, "fleet", 25, 20, 3);
    let generated: Vec<Value> = std::fs::read_to_string(&file)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // No --url: the API is the stack's output ApiUrl, found through CloudFormation at the edge.
    let out = tally(
        &["collect", file.to_str().unwrap(), "--key", &key],
        &cloud.edge_url,
    );
    let summary = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "{summary}");
    let ids: Vec<&str> = generated
        .iter()
        .filter_map(|e| e["event_id"].as_str())
        .collect();
    let distinct: BTreeSet<&str> = ids.iter().copied().collect();
    assert!(
        ids.len() > distinct.len(),
        "the fleet's SDKs repeat some event ids"
    );

    // Another fleet put straight on the stream (the Cognito path), with invalid events and an
    // event put twice.
    let mut direct = Fleet::new(8, 10, 4);
    direct.invalid_share = 0.0;
    let mut lines: Vec<(String, String)> = batches(&direct)
        .into_iter()
        .flat_map(|b| {
            b.events
                .into_iter()
                .map(move |e| (b.device.clone(), e.to_string()))
        })
        .collect();
    lines.push(lines[3].clone());
    // A forgery: one of the app's own events, put straight on the stream under its app id, name
    // and an early server time. Without /collect's seal it is only `direct`'s.
    let mut forged = generated
        .iter()
        .find(|e| e["event_type"] == "purchase")
        .expect("the fleet buys something")
        .clone();
    forged["app_id"] = json!(app_id);
    forged["app_name"] = json!("Forged");
    forged["server_time"] = json!("2000-01-01T00:00:00Z");
    let forged_id = forged["event_id"].as_str().unwrap().to_string();
    lines.push((
        forged["device"]["id"].as_str().unwrap().into(),
        forged.to_string(),
    ));
    for (bad, _) in invalid_events() {
        lines.push(("dev-bad".into(), bad));
    }
    let clients = Clients::new(&Endpoints::all(&cloud.edge_url)).await;
    let stream = format!("{}-EventsStream", shared_stack());
    let put = tally_cloud::kinesis::put_all(&clients.kinesis, &stream, &lines, |_| {}).await;
    assert_eq!(put.refused, 0, "{put:?}");

    // What the stream holds, in shard order: the oracle's input.
    let records = wait_for("every event in the stream", Duration::from_secs(60), || {
        let (kinesis, stream) = (clients.kinesis.clone(), stream.clone());
        let want = lines.len();
        async move {
            let r = tally_cloud::kinesis::read_stream(&kinesis, &stream)
                .await
                .ok()?;
            (r.len() >= want).then_some(r)
        }
    })
    .await;
    let bad_ids: BTreeSet<String> = (0..6).map(|i| format!("bad-{i}")).collect();
    // Each (app, event id) at its first arrival: the app only when /collect sealed the event
    // (nothing here forges a seal), else `direct`, received at its Kinesis arrival.
    let mut first: BTreeMap<(String, String), Counted> = BTreeMap::new();
    for r in &records {
        let Ok(v) = serde_json::from_slice::<Value>(&r.data) else {
            continue;
        };
        let Some(id) = v["event_id"].as_str() else {
            continue;
        };
        let sealed = v.get("ingest_seal").is_some();
        // Only this test's events: its app's, and the direct puts. Other tests post to the same
        // cloud under apps of their own.
        if bad_ids.contains(id) || (sealed && v["app_id"] != app_id.as_str()) {
            continue;
        }
        let app = if sealed { app_id.as_str() } else { "direct" };
        let received = match (sealed, v["server_time"].as_str()) {
            (true, Some(t)) => t.parse().unwrap(),
            _ => chrono::DateTime::from_timestamp_millis((r.arrival * 1000.0).round() as i64)
                .unwrap(),
        };
        let client: chrono::DateTime<chrono::Utc> = match &v["client_time"] {
            Value::String(t) => t.parse().unwrap(),
            other => chrono::DateTime::from_timestamp_millis(other.as_i64().unwrap()).unwrap(),
        };
        first
            .entry((app.to_string(), id.to_string()))
            .or_insert(Counted {
                event_type: v["event_type"].as_str().unwrap().to_string(),
                app: app.to_string(),
                minute: minute_of(received),
                day: client.date_naive().to_string(),
            });
    }
    let posted_valid = records
        .iter()
        .filter(|r| {
            serde_json::from_slice::<Value>(&r.data)
                .is_ok_and(|v| v["app_id"] == app_id.as_str() && v.get("ingest_seal").is_some())
        })
        .count();
    assert!(
        summary.contains(&format!("{posted_valid} accepted")),
        "collect's summary: {summary}"
    );
    let rejected = generated.len() - posted_valid;
    assert!(
        rejected > 0 && summary.contains(&format!("{rejected} rejected")),
        "{summary}"
    );

    // Live metrics: per app (and all apps), per type and minute, each event id once.
    let api = cloud.api_url.clone();
    assert!(
        first.contains_key(&(app_id.clone(), forged_id.clone()))
            && first.contains_key(&("direct".to_string(), forged_id.clone())),
        "the forged id counts for the app once (its own) and for direct once"
    );
    for app in [Some(app_id.as_str()), Some("direct")] {
        let query = app.map(|a| format!("&app_id={a}")).unwrap_or_default();
        let url = format!("{api}/api/v1/events/metrics?minutes=60{query}");
        let first = first.clone();
        let last = std::sync::Arc::new(std::sync::Mutex::new((Value::Null, Value::Null)));
        let seen = last.clone();
        let checked = tokio::time::timeout(
            Duration::from_secs(120),
            wait_for(
                "the metrics to equal the independent computation",
                Duration::from_secs(600),
                || {
                    let (url, first, seen) = (url.clone(), first.clone(), seen.clone());
                    async move {
                        let (status, body) = http_get(&url).await.ok()?;
                        let got: Value = serde_json::from_str(&body).ok()?;
                        let mut want: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
                        for c in first.values().filter(|c| app.is_none_or(|a| a == c.app)) {
                            *want
                                .entry(c.minute.clone())
                                .or_default()
                                .entry(c.event_type.clone())
                                .or_default() += 1;
                        }
                        let got_minutes: BTreeMap<String, BTreeMap<String, u64>> = got
                            ["per_minute"]
                            .as_array()?
                            .iter()
                            .filter(|m| m["events"].as_u64() > Some(0))
                            .map(|m| {
                                (
                                    m["minute"].as_str().unwrap().to_string(),
                                    serde_json::from_value(m["counts"].clone()).unwrap(),
                                )
                            })
                            .collect();
                        *seen.lock().unwrap() = (json!(got_minutes), json!(want));
                        (status == 200 && got_minutes == want).then_some(())
                    }
                },
            ),
        )
        .await;
        if checked.is_err() {
            let (got, want) = last.lock().unwrap().clone();
            panic!("metrics for {app:?} differ:\n got {got}\nwant {want}");
        }
    }

    // The dashboard's events panel, rendered by Chromium: every type with its count.
    let dom = chromium_dom(&format!("{api}/dashboard"));
    let panel = dom.split("id=\"event-types\"").nth(1).unwrap_or_default();
    let panel = panel.split("</ul>").next().unwrap_or_default();
    for t in first
        .values()
        .map(|c| c.event_type.as_str())
        .collect::<BTreeSet<_>>()
    {
        assert!(
            panel.contains(&format!(">{t}<")),
            "{t} not on the dashboard: {panel}"
        );
    }

    // The warehouse: each valid event id once, per type and day of the event.
    let mut want: BTreeMap<(String, String), u64> = BTreeMap::new();
    for c in first.values() {
        *want
            .entry((c.day.clone(), c.event_type.clone()))
            .or_default() += 1;
    }
    let ours = format!("(app_id = '{app_id}' OR app_id = 'direct')");
    let ours_f = format!("(f.app_id = '{app_id}' OR f.app_id = 'direct')");
    let got: BTreeMap<(String, String), u64> = sql(
        &cloud.edge_url,
        &format!(
            "SELECT CAST(client_time AS DATE) AS day, event_type, count(*) AS events \
             FROM fact_events WHERE {ours} GROUP BY 1, 2"
        ),
    )
    .into_iter()
    .map(|r| {
        (
            (
                r["day"].as_str().unwrap().to_string(),
                r["event_type"].as_str().unwrap().to_string(),
            ),
            r["events"].as_u64().unwrap(),
        )
    })
    .collect();
    assert_eq!(got, want, "events per type per day");
    let totals = &sql(
        &cloud.edge_url,
        &format!(
            "SELECT count(*) AS n, count(DISTINCT app_id || '/' || event_id) AS d FROM fact_events WHERE {ours}"
        ),
    )[0];
    assert_eq!(
        (totals["n"].as_u64(), totals["d"].as_u64()),
        (Some(first.len() as u64), Some(first.len() as u64))
    );
    for t in ["purchase", "clip_play"] {
        let rows = sql(
            &cloud.edge_url,
            &format!(
                "SELECT count(*) AS n FROM event_{t} e JOIN fact_events f ON f.event_id = e.event_id AND f.app_id = e.app_id WHERE {ours_f}"
            ),
        );
        let n = first.values().filter(|c| c.event_type == t).count() as u64;
        assert_eq!(
            rows[0]["n"].as_u64(),
            Some(n),
            "event_{t}: each id once, in its type's table"
        );
    }
    let app = sql(
        &cloud.edge_url,
        &format!("SELECT name FROM dim_app WHERE app_id = '{app_id}'"),
    );
    assert_eq!(app, vec![json!({"name": "Flyers e2e"})]);
    // The forgery replaced nothing of the app's and named no app.
    let own = sql(
        &cloud.edge_url,
        &format!(
            "SELECT app_id, year(server_time) AS year FROM fact_events WHERE event_id = '{forged_id}' ORDER BY app_id"
        ),
    );
    let own: Vec<(String, i64)> = own
        .iter()
        .map(|r| {
            (
                r["app_id"].as_str().unwrap().to_string(),
                r["year"].as_i64().unwrap(),
            )
        })
        .collect();
    assert!(
        own.len() == 2 && own.iter().all(|(_, year)| *year >= 2026),
        "the app's row and direct's, neither dated 2000: {own:?}"
    );
    let forged_names = sql(
        &cloud.edge_url,
        "SELECT count(*) AS n FROM dim_app WHERE name = 'Forged'",
    );
    assert_eq!(forged_names[0]["n"].as_u64(), Some(0));
    let counted_ids: BTreeSet<&str> = first.keys().map(|(_, id)| id.as_str()).collect();
    let devices: BTreeSet<String> = generated
        .iter()
        .chain(
            lines
                .iter()
                .filter_map(|(_, l)| serde_json::from_str::<Value>(l).ok())
                .collect::<Vec<_>>()
                .iter(),
        )
        .filter(|e| {
            e["event_id"]
                .as_str()
                .is_some_and(|id| counted_ids.contains(id))
        })
        .filter_map(|e| e["device"]["id"].as_str().map(String::from))
        .collect();
    let listed: Vec<String> = devices.iter().map(|d| format!("'{d}'")).collect();
    let dim = sql(
        &cloud.edge_url,
        &format!(
            "SELECT count(*) AS n, count(DISTINCT device_id) AS d FROM dim_device WHERE device_id IN ({})",
            listed.join(", ")
        ),
    );
    assert_eq!(
        (dim[0]["n"].as_u64(), dim[0]["d"].as_u64()),
        (Some(devices.len() as u64), Some(devices.len() as u64))
    );
    let funnel = sql_file(&cloud.edge_url, "events/funnel");
    let sessions: Vec<u64> = funnel
        .iter()
        .map(|r| r["sessions"].as_u64().unwrap())
        .collect();
    assert!(
        sessions.len() == 3
            && sessions[0] >= sessions[1]
            && sessions[1] >= sessions[2]
            && sessions[2] > 0,
        "{funnel:?}"
    );

    // Typed bad rows, each once, the schema violation naming its pointer.
    let bad = sql(&cloud.edge_url, "SELECT reason_code, reason FROM bad_records WHERE source = 'events-metrics' ORDER BY reason_code");
    let codes: Vec<&str> = bad
        .iter()
        .map(|r| r["reason_code"].as_str().unwrap())
        .collect();
    let mut want_codes: Vec<&str> = invalid_events().into_iter().map(|(_, c)| c).collect();
    want_codes.sort();
    assert_eq!(codes, want_codes, "{bad:?}");
    assert!(
        bad.iter()
            .any(|r| r["reason"].as_str().unwrap().contains("/attributes/price")),
        "{bad:?}"
    );

    // The archive is partitioned by type: only known types, and the invalid events set aside.
    let bucket = format!("{}-archivebucket", shared_stack()).to_lowercase();
    let keys: Vec<String> = clients
        .s3
        .list_objects_v2()
        .bucket(&bucket)
        .prefix("raw/events/")
        .send()
        .await
        .unwrap()
        .contents()
        .iter()
        .filter_map(|o| o.key().map(String::from))
        .collect();
    let types: BTreeSet<&str> = keys
        .iter()
        .filter_map(|k| k.split('/').nth(2)?.strip_prefix("event_type="))
        .collect();
    let known: BTreeSet<&str> = first
        .values()
        .map(|c| c.event_type.as_str())
        .collect::<BTreeSet<_>>();
    assert!(
        known.is_subset(&types)
            && types
                .iter()
                .all(|t| tally_events::schema::TypeInfo::is_built_in(t)),
        "partitions {types:?}, ours {known:?}"
    );
    let failed = clients
        .s3
        .list_objects_v2()
        .bucket(&bucket)
        .prefix("errors/events/processing-failed/")
        .send()
        .await
        .unwrap();
    assert!(
        failed.key_count().unwrap_or(0) > 0,
        "invalid events kept apart by Firehose"
    );
    let _ = std::fs::remove_file(&file);
}

/// Request headers, by name.
type Headers = Vec<(&'static str, String)>;

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(data).unwrap();
    gz.finish().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collect_answers_every_documented_case_over_http() {
    let cloud = shared_cloud();
    let (_, key) = register(&cloud.edge_url, "Errors e2e");
    let url = format!("{}/collect", cloud.api_url);
    let event = |id: &str| json!({"event_id": id, "event_type": "app_open", "client_time": 1_764_000_000_000i64, "device": {"id": "d-http", "platform": "web"}});
    let one = json!([event("h1")]).to_string().into_bytes();
    let post = |headers: Vec<(&'static str, String)>, body: Vec<u8>| {
        let url = url.clone();
        async move {
            let h: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let r = http_send(hyper::Method::POST, &url, &h, body)
                .await
                .unwrap();
            let v: Value = serde_json::from_str(&r.body)
                .unwrap_or_else(|_| panic!("a JSON answer: {}", r.body));
            (r.status, v)
        }
    };
    let with_key = |extra: &[(&'static str, &str)]| {
        let mut h = vec![("x-api-key", key.clone())];
        h.extend(extra.iter().map(|(k, v)| (*k, v.to_string())));
        h
    };
    let cases: Vec<(Headers, Vec<u8>, u16, &str)> = vec![
        (vec![], one.clone(), 401, "x-api-key"),
        (
            vec![("x-api-key", "tk_unknown".into())],
            one.clone(),
            403,
            "unknown app key",
        ),
        (
            with_key(&[]),
            b"{not json".to_vec(),
            400,
            "not a JSON array",
        ),
        (
            with_key(&[]),
            vec![b' '; 1024 * 1024 + 1],
            413,
            "larger than",
        ),
        (
            with_key(&[("content-encoding", "gzip")]),
            b"not gzip".to_vec(),
            400,
            "not gzip",
        ),
        (
            with_key(&[("content-encoding", "br")]),
            one.clone(),
            415,
            "content-encoding",
        ),
    ];
    for (headers, body, status, says) in cases {
        let (got, v) = post(headers.clone(), body).await;
        assert_eq!(got, status, "{headers:?}: {v}");
        assert_eq!(v["status"], status);
        assert!(v["error"].as_str().unwrap().contains(says), "{v}");
    }
    // gzip and NDJSON bodies are accepted; each bad event is listed by its index.
    let mut bad = event("h3");
    bad["event_type"] = json!("teleport");
    let body = gzip(
        json!([event("h2"), bad, event("h4")])
            .to_string()
            .as_bytes(),
    );
    let (status, v) = post(with_key(&[("content-encoding", "gzip")]), body).await;
    assert_eq!((status, v["accepted"].as_u64()), (200, Some(2)), "{v}");
    assert_eq!(
        v["rejected"],
        json!([{"index": 1, "reason": "unknown event type \"teleport\"", "code": "unknown_type"}])
    );
    let ndjson = format!("{}\n{}\n", event("h5"), event("h6")).into_bytes();
    let (status, v) = post(
        with_key(&[("content-type", "application/x-ndjson")]),
        ndjson,
    )
    .await;
    assert_eq!((status, v["accepted"].as_u64()), (200, Some(2)), "{v}");
    // Another method or route: a JSON 4xx, never a 5xx.
    let r = http_get(&url).await.unwrap();
    assert!(r.0 == 404 || r.0 == 405, "{r:?}");
}
