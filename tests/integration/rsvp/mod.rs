//! The RSVP pipeline end to end on the shared local cloud: generated RSVPs served over a websocket
//! that drops its clients, the producer reconnecting (and so resending), the statistics on the API
//! against an independent computation, the lake's tables and the EDA's answers, and the dashboard
//! in a real browser.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{json, Value};
use tally_cloud::clients::{Clients, Endpoints};
use tally_cloud::http::http_get;
use tally_gen::meetup::producer::{produce, ProducerOptions, ProducerProgress};
use tally_gen::meetup::server::{serve, ServeOptions, Source};
use tally_gen::meetup::{default_start, mtime_of, Clock, RsvpGenerator, Shape};
use tokio::sync::watch;

use crate::support::{chromium_dom, shared_cloud, shared_stack, wait_for};

mod event_files;
mod lake;
mod producer;

/// A line as the pipeline counts it: JSON with an event and a yes or no (what the contract rejects
/// never counts).
fn counted(line: &str) -> Option<Value> {
    let v: Value = serde_json::from_str(line).ok()?;
    // An mtime from 1970 to five minutes after it arrived (these lines arrive now).
    let latest = chrono::Utc::now().timestamp_millis() + 300_000;
    let in_range = v["mtime"]
        .as_i64()
        .is_some_and(|m| (0..=latest).contains(&m));
    (in_range
        && v["event"]["event_id"].is_string()
        && matches!(v["response"].as_str(), Some("yes" | "no")))
    .then_some(v)
}

/// The statistics of the contract, computed from the RSVP lines as JSON: distinct (rsvp_id, mtime)
/// versions of valid RSVPs; the window is the 5 minutes ending with the newest minute; per minute over 60.
pub(crate) fn expected(lines: &[String]) -> Value {
    let mut versions: BTreeMap<(u64, i64), Value> = BTreeMap::new();
    for l in lines {
        if let Some(v) = counted(l) {
            if let (Some(id), Some(m)) = (v["rsvp_id"].as_u64(), v["mtime"].as_i64()) {
                versions.entry((id, m)).or_insert(v);
            }
        }
    }
    let mut latest: BTreeMap<u64, (i64, String)> = BTreeMap::new();
    for ((id, m), v) in &versions {
        let e = latest.entry(*id).or_insert((*m, String::new()));
        if *m >= e.0 {
            *e = (*m, v["response"].as_str().unwrap().to_string());
        }
    }
    let count = |r: &str| latest.values().filter(|(_, x)| x == r).count();
    let minute = |m: i64| m.div_euclid(60_000);
    let newest = versions.keys().map(|(_, m)| minute(*m)).max().unwrap();
    let mut yes: BTreeMap<String, (u64, String)> = BTreeMap::new();
    for ((_, m), v) in &versions {
        if v["response"] == "yes" && (newest - 4..=newest).contains(&minute(*m)) {
            let e = yes
                .entry(v["event"]["event_id"].as_str().unwrap().to_string())
                .or_insert((0, v["event"]["event_name"].as_str().unwrap().to_string()));
            e.0 += 1;
        }
    }
    let mut top: Vec<(String, u64, String)> = yes
        .into_iter()
        .map(|(id, (n, name))| (id, n, name))
        .collect();
    top.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    top.truncate(5);
    let iso = |min: i64| {
        chrono::DateTime::from_timestamp(min * 60, 0)
            .unwrap()
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    };
    json!({
        "window_start": iso(newest - 4),
        "window_end": iso(newest + 1),
        "top_events": top.iter().map(|(id, n, name)| json!({"event_id": id, "event_name": name, "yes": n})).collect::<Vec<_>>(),
        "totals": {"yes": count("yes"), "no": count("no"), "rsvps": latest.len()},
        "per_minute": (newest - 59..=newest)
            .map(|min| json!({"minute": iso(min), "rsvps": versions.keys().filter(|(_, m)| minute(*m) == min).count()}))
            .collect::<Vec<_>>(),
    })
}

pub(crate) fn without_as_of(mut v: Value) -> Value {
    if let Some(o) = v.as_object_mut() {
        o.remove("as_of");
    }
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rsvps_from_a_reconnecting_websocket_reach_the_stats_the_lake_and_the_dashboard_exactly() {
    let cloud = shared_cloud();
    let clock = Clock::Simulated {
        start: default_start(),
        rate: 20.0,
    };
    let generator = RsvpGenerator::new(11, clock, Shape::default());
    let bots = generator.bot_ids();
    let mut lines: Vec<String> = generator.take(900).collect();
    // Garbage the stream might carry: dead-lettered, never counted.
    lines.insert(100, "{\"rsvp_id\":".into());
    lines.insert(
        400,
        r#"{"rsvp_id":1,"mtime":1602629755622,"response":"maybe"}"#.into(),
    );
    let last_mtime = lines.iter().filter_map(|l| mtime_of(l)).max();

    // The source drops every client after 0.3 s: the producer reconnects asking for what it may
    // have missed, so it receives (and puts) some RSVPs twice.
    let (stop_tx, stop) = watch::channel(false);
    let options = ServeOptions {
        rate: 1500.0,
        drop_after: Some(Duration::from_millis(300)),
    };
    let server = serve(
        "127.0.0.1:0".parse().unwrap(),
        Source::Lines(lines.clone()),
        options,
        stop,
    )
    .await
    .unwrap();
    let clients = Clients::new(&Endpoints::all(&cloud.edge_url)).await;
    let mut producer = ProducerOptions::new(
        &format!("ws://{}/2/rsvps", server.addr),
        &format!("{}-RsvpStream", shared_stack()),
    );
    producer.partition_field = Some("event.event_id".into());
    let (progress_tx, progress) = watch::channel(ProducerProgress::default());
    let (stop_producer, producer_stop) = watch::channel(false);
    let kinesis = clients.kinesis.clone();
    let running =
        tokio::spawn(async move { produce(&kinesis, &producer, producer_stop, progress_tx).await });
    wait_for(
        "the producer to receive the last RSVP",
        Duration::from_secs(60),
        || {
            let seen = progress.borrow().last_mtime;
            async move { (seen == last_mtime).then_some(()) }
        },
    )
    .await;
    stop_producer.send(true).unwrap();
    let done = running.await.unwrap().unwrap();
    stop_tx.send(true).unwrap();
    assert!(
        done.connections > 1,
        "the source dropped the producer: {done:?}"
    );
    assert!(
        done.received > lines.len() as u64,
        "reconnects resent some RSVPs: {done:?}"
    );
    assert_eq!(done.put, done.received, "everything received was put");

    let want = expected(&lines);
    let api = cloud.api_url.clone();
    let last = std::sync::Arc::new(std::sync::Mutex::new(Value::Null));
    let seen = last.clone();
    let got = tokio::time::timeout(
        Duration::from_secs(240),
        wait_for(
            "the stats API to equal the independent computation",
            Duration::from_secs(600),
            || {
                let (api, want, seen) = (api.clone(), want.clone(), seen.clone());
                async move {
                    let (status, body) =
                        http_get(&format!("{api}/api/v1/rsvp/stats")).await.ok()?;
                    let body: Value = serde_json::from_str(&body).ok()?;
                    *seen.lock().unwrap() = body.clone();
                    (status == 200 && without_as_of(body.clone()) == want).then_some(body)
                }
            },
        ),
    )
    .await
    .unwrap_or_else(|_| {
        panic!(
            "stats differ:\n got {}\nwant {}",
            without_as_of(last.lock().unwrap().clone()),
            want
        )
    });
    assert_eq!(got["top_events"].as_array().unwrap().len(), 5);
    assert!(got["totals"]["no"].as_u64().unwrap() > 0);

    // The same RSVPs in the lake's tables, the EDA's answers, the clusters.
    lake::check_lake(&cloud.edge_url, &lines, &bots);

    // The dashboard, rendered by Chromium: what a person sees.
    let dom = chromium_dom(&format!("{api}/dashboard"));
    for event in got["top_events"].as_array().unwrap() {
        assert!(
            dom.contains(event["event_name"].as_str().unwrap()),
            "{} not shown",
            event["event_name"]
        );
        assert!(dom.contains(&format!("#{}", event["event_id"].as_str().unwrap())));
    }
    let thousands = |n: &Value| {
        let s = n.as_u64().unwrap().to_string();
        let mut out = String::new();
        for (i, c) in s.chars().enumerate() {
            if i > 0 && (s.len() - i).is_multiple_of(3) {
                out.push(',');
            }
            out.push(c);
        }
        out
    };
    for (id, key) in [
        ("total-yes", "yes"),
        ("total-no", "no"),
        ("total-rsvps", "rsvps"),
    ] {
        let shown = format!(r#"id="{id}">{}<"#, thousands(&got["totals"][key]));
        assert!(dom.contains(&shown), "{shown} not in the page");
    }
    assert!(
        dom.contains("class=\"status live\""),
        "the page says it is live"
    );
    assert!(dom.contains("<canvas"), "the charts are drawn");
    assert!(
        dom.contains(r#"class="ratio" id="ratio""#),
        "the yes/no bar in its colours once there are answers"
    );

    // The clusters panel: the latest run of `tally clusters` (made by the lake check above).
    let (_, body) = tally_cloud::http::http_get(&format!("{api}/api/v1/dashboard"))
        .await
        .unwrap();
    let clusters = serde_json::from_str::<Value>(&body).unwrap()["clusters"].clone();
    let sizes: Vec<u64> = clusters["per_cluster"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["groups"].as_u64().unwrap())
        .collect();
    assert_eq!(sizes.len(), 6, "{clusters}");
    assert_eq!(
        sizes.iter().sum::<u64>(),
        clusters["groups"].as_u64().unwrap()
    );
    for c in clusters["per_cluster"].as_array().unwrap() {
        let topics = c["topics"].as_array().unwrap();
        let shown = topics
            .iter()
            .map(|t| t.as_str().unwrap())
            .collect::<Vec<_>>()
            .join(", ");
        assert!(
            dom.contains(&shown),
            "cluster {} named {shown:?}",
            c["cluster"]
        );
    }
    let accuracy = clusters["model"]["accuracy"].as_f64().unwrap();
    let shown: f64 = dom
        .split(r#"id="model-accuracy">"#)
        .nth(1)
        .and_then(|rest| rest.split('%').next())
        .and_then(|n| n.parse().ok())
        .expect("the model's accuracy shown");
    assert!(
        (shown - 100.0 * accuracy).abs() <= 0.5,
        "{shown}% for {accuracy}"
    );
}
