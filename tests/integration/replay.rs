//! `tally replay` and `tally redrive`: the archive (or the stream) delivered again to the
//! consumers, with the records' original shard ids and sequence numbers (kept by the archive's
//! transformation), on a local cloud of its own.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use tally_cloud::cloud::LocalCloud;

use crate::gender::oracle::{self, parse_visit, RawVisit};
use crate::support::{cloud_options, local_root, tally_stdout};

/// Every item of one of the stack's tables (its logical id).
async fn items(cloud: &LocalCloud, table: &str) -> Vec<HashMap<String, AttributeValue>> {
    let name = cloud.template.physical_name(table);
    let mut pages = cloud
        .clients
        .dynamodb
        .scan()
        .table_name(&name)
        .into_paginator()
        .items()
        .send();
    let mut out = Vec::new();
    while let Some(item) = pages.next().await {
        out.push(item.unwrap());
    }
    out
}

/// Every item of every DynamoDB table of the stack (counts, stats, metrics, results, watermarks),
/// as text, by table.
async fn state(cloud: &LocalCloud) -> BTreeMap<String, Vec<String>> {
    let mut out = BTreeMap::new();
    for t in cloud.template.of_kind("AWS::DynamoDB::Table") {
        let mut texts: Vec<String> = items(cloud, &t.logical_id)
            .await
            .iter()
            .map(|item| {
                let sorted: BTreeMap<_, _> = item
                    .iter()
                    // The revision counts writes, which depend on how records were batched; where
                    // an item's records started (`ws_`) and what a replay filled in below that
                    // (`wb_`) depend on when it was first written.
                    .filter(|(k, _)| *k != "rev" && !k.starts_with("ws_") && !k.starts_with("wb_"))
                    .map(|(k, v)| (k.clone(), format!("{v:?}")))
                    .collect();
                format!("{sorted:?}")
            })
            .collect();
        texts.sort();
        out.insert(t.logical_id.clone(), texts);
    }
    out
}

/// Records on every output stream (alerts, gender results, RSVP stats), by stream.
async fn outputs(cloud: &LocalCloud) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for id in [
        "GenderResultsStream",
        "PaidUserStream",
        "PropertyStatusStream",
        "PossibleBrokerStream",
        "RsvpStatsStream",
    ] {
        let name = cloud.template.physical_name(id);
        let records = tally_cloud::kinesis::read_stream(&cloud.clients.kinesis, &name)
            .await
            .unwrap();
        out.insert(id.to_string(), records.len());
    }
    out
}

/// The items one state has and the other not, by table (empty: the same).
fn differences(
    a: &BTreeMap<String, Vec<String>>, b: &BTreeMap<String, Vec<String>>,
) -> BTreeMap<String, (Vec<String>, Vec<String>)> {
    let mut out = BTreeMap::new();
    for (table, items) in a {
        let other = b.get(table).cloned().unwrap_or_default();
        let only_a: Vec<String> = items
            .iter()
            .filter(|i| !other.contains(i))
            .cloned()
            .collect();
        let only_b: Vec<String> = other
            .iter()
            .filter(|i| !items.contains(i))
            .cloned()
            .collect();
        if !only_a.is_empty() || !only_b.is_empty() {
            out.insert(table.clone(), (only_a, only_b));
        }
    }
    out
}

/// Deletes the items of a table whose key starts with `prefix`, as if a function had never
/// applied a record; returns how many.
async fn forget(cloud: &LocalCloud, table: &str, prefix: &str) -> usize {
    let name = cloud.template.physical_name(table);
    let mut gone = 0;
    for item in items(cloud, table).await {
        if item["pk"].as_s().unwrap().starts_with(prefix) {
            cloud
                .clients
                .dynamodb
                .delete_item()
                .table_name(&name)
                .key("pk", item["pk"].clone())
                .send()
                .await
                .unwrap();
            gone += 1;
        }
    }
    gone
}

/// The state once every function is done: a flush (the stream functions idle) reaches the
/// functions a record passes through one after the other (a model, then the dashboard's feed of
/// its results) one hop at a time, so until two flushes in a row see the same state.
async fn settled(cloud: &LocalCloud) -> BTreeMap<String, Vec<String>> {
    cloud.flush(Duration::from_secs(120)).await.unwrap();
    let mut last = state(cloud).await;
    for _ in 0..10 {
        cloud.flush(Duration::from_secs(120)).await.unwrap();
        let now = state(cloud).await;
        if now == last {
            return now;
        }
        last = now;
    }
    panic!("the state kept changing over 10 flushes");
}

/// Per cid, the visits by gender that the items under `owner` (`MODELS`, `MODELS+MODEL3`) have
/// counted, over every bucket they keep (MODELS all time, MODEL3 its days).
async fn counted_visits(cloud: &LocalCloud, owner: &str) -> BTreeMap<String, (u64, u64)> {
    let mut out = BTreeMap::new();
    for item in items(cloud, "GenderStateTable").await {
        let pk = item["pk"].as_s().unwrap();
        let Some(cid) = pk
            .strip_prefix(&format!("{owner}#"))
            .filter(|k| !k.starts_with('~'))
        else {
            continue;
        };
        let counts: &mut (u64, u64) = out.entry(cid.to_string()).or_default();
        for (name, value) in &item {
            let n: u64 = value.as_n().map_or(0, |n| n.parse().unwrap());
            if name.starts_with("c_") && name.ends_with("_male") && !name.ends_with("_female") {
                counts.0 += n;
            } else if name.starts_with("c_") && name.ends_with("_female") {
                counts.1 += n;
            }
        }
    }
    out
}

/// Per cid, `model`'s answer in the results table (what the API answers).
async fn stored_answers(cloud: &LocalCloud, model: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for item in items(cloud, "GenderResultsTable").await {
        if let Some(body) = item.get(&format!("body_{model}")) {
            let v: serde_json::Value = serde_json::from_str(body.as_s().unwrap()).unwrap();
            if let Some(g) = v["gndr"].as_str() {
                out.insert(v["cid"].as_str().unwrap().to_string(), g.to_string());
            }
        }
    }
    out
}

/// Removes `model`'s results from the results table, as if it had never published one.
async fn forget_results(cloud: &LocalCloud, model: &str) {
    let table = cloud.template.physical_name("GenderResultsTable");
    let db = &cloud.clients.dynamodb;
    for item in items(cloud, "GenderResultsTable").await {
        db.update_item()
            .table_name(&table)
            .key("_id", item["_id"].clone())
            .update_expression(format!("REMOVE rev_{model}, body_{model}, gndr_{model}"))
            .send()
            .await
            .unwrap();
    }
}

/// `tally put` of some lines of a demo file.
fn put_lines(stack: &str, cloud: &LocalCloud, stream: &str, lines: &[&str]) {
    let file = std::env::temp_dir().join(format!("{stack}-{stream}-{}.jsonl", lines.len()));
    std::fs::write(&file, lines.join("\n")).unwrap();
    tally_stdout(
        stack,
        &["put", stream, file.to_str().unwrap()],
        &cloud.edge_url,
    );
}

/// `tally replay VisitsStream --function GenderModelsFunction`, which must say it reached it.
fn replay_visits_to_the_models(stack: &str, cloud: &LocalCloud) {
    let said = tally_stdout(
        stack,
        &[
            "replay",
            "VisitsStream",
            "--function",
            "GenderModelsFunction",
        ],
        &cloud.edge_url,
    );
    assert!(said.contains("to 1 function"), "{said}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replaying_the_archive_changes_nothing_and_refills_a_consumer_that_lost_its_state() {
    let stack = format!("rpl{}", std::process::id());
    let mut options = cloud_options(&stack);
    // MODEL3 is a model added to the code after the stack was created: it runs in the same
    // function as MODEL1 and MODEL2, on items of its own.
    options
        .params
        .insert("GenderSharedModels".into(), "MODEL1,MODEL2".into());
    let cloud = LocalCloud::start(options)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let demo = local_root().join("infra/demo");
    let inputs = [
        ("VisitsStream", "visits.jsonl"),
        ("InteractionsStream", "interactions.jsonl"),
        ("RsvpStream", "rsvps.jsonl"),
        ("EventsStream", "events.jsonl"),
    ];
    let visits = std::fs::read_to_string(demo.join("visits.jsonl")).unwrap();
    let visits: Vec<&str> = visits.lines().collect();
    let (earlier, later) = visits.split_at(visits.len() / 2);
    put_lines(&stack, &cloud, "VisitsStream", earlier);
    for (stream, file) in &inputs[1..] {
        let path = demo.join(file);
        tally_stdout(
            &stack,
            &["put", stream, path.to_str().unwrap()],
            &cloud.edge_url,
        );
    }
    settled(&cloud).await;

    // MODEL3 deployed now: none of its items or results exist, and visits keep coming.
    assert!(forget(&cloud, "GenderStateTable", "MODELS+MODEL3#").await > 0);
    forget_results(&cloud, "MODEL3").await;
    put_lines(&stack, &cloud, "VisitsStream", later);
    settled(&cloud).await;
    let shared = counted_visits(&cloud, "MODELS").await;
    let joined = counted_visits(&cloud, "MODELS+MODEL3").await;
    assert_ne!(
        joined, shared,
        "MODEL3 counted only the visits since it was added"
    );
    let shared_items: Vec<String> = state(&cloud).await["GenderStateTable"]
        .iter()
        .filter(|i| i.contains("\"MODELS#"))
        .cloned()
        .collect();
    // Replayed to the function, MODEL3 gets the visits from before it, once; the others, which
    // applied them, change nothing.
    replay_visits_to_the_models(&stack, &cloud);
    let before = settled(&cloud).await;
    assert_eq!(
        before["GenderStateTable"]
            .iter()
            .filter(|i| i.contains("\"MODELS#"))
            .cloned()
            .collect::<Vec<_>>(),
        shared_items,
        "the models that had the visits changed nothing"
    );
    // As if MODEL3 had run from the start: an independent count of the demo's visits in its
    // window (some of them are months old), and its answers.
    let now = chrono::Utc::now();
    let raw: Vec<RawVisit> = visits
        .iter()
        .enumerate()
        .filter_map(|(i, line)| parse_visit(line.as_bytes(), now.timestamp_millis(), i))
        .collect();
    let first_day = now.date_naive() - chrono::Duration::days(6);
    let mut in_window: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for v in raw.iter().filter(|v| v.ts.date_naive() >= first_day) {
        let counts = in_window.entry(v.cid.clone()).or_default();
        match v.gndr {
            "male" => counts.0 += 1,
            _ => counts.1 += 1,
        }
    }
    assert_eq!(counted_visits(&cloud, "MODELS+MODEL3").await, in_window);
    assert_eq!(
        stored_answers(&cloud, "MODEL3").await,
        oracle::answers(&raw, "MODEL3", now, 7)
    );
    let published = outputs(&cloud).await;
    assert!(
        published["PaidUserStream"] > 0,
        "the demo raises alerts: {published:?}"
    );

    // Everything replayed: no count, stat, metric or dashboard panel changes, and nothing is
    // published again.
    for (stream, _) in inputs {
        let said = tally_stdout(&stack, &["replay", stream], &cloud.edge_url);
        let n: usize = said
            .split_whitespace()
            .nth(1)
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{stream}: {said}"));
        assert!(n > 0 && said.starts_with("replayed "), "{stream}: {said}");
    }
    let changed = differences(&before, &settled(&cloud).await);
    assert!(
        changed.is_empty(),
        "replay changed a count, stat or metric (before, after): {changed:#?}"
    );
    assert_eq!(outputs(&cloud).await, published, "nothing published again");

    // The gender models' state lost: replaying to them alone makes it again, exactly.
    assert!(forget(&cloud, "GenderStateTable", "").await > 0);
    replay_visits_to_the_models(&stack, &cloud);
    let after = settled(&cloud).await;
    let changed = differences(&before, &after);
    assert!(
        !changed.contains_key("GenderStateTable"),
        "the models' state made again from the archive (before, after): {:#?}",
        changed.get("GenderStateTable")
    );

    // A batch that failed until its mapping gave up (described on StreamFailureQueue as Lambda
    // describes it), of a rule that never applied it: redriven after the fix, it counts once,
    // and a second redrive finds nothing.
    assert!(forget(&cloud, "RuleStateTable", "paid_user#").await > 0);
    // A rule that never applied the batch has no instance that remembers its keys as finished.
    cloud.functions["PaidUserFunction"].recycle().await;
    let stream = cloud.template.physical_name("InteractionsStream");
    let stored = tally_cloud::kinesis::read_stream(&cloud.clients.kinesis, &stream)
        .await
        .unwrap();
    let shard = stored[0].shard_id.clone();
    let batch: Vec<_> = stored.into_iter().filter(|r| r.shard_id == shard).collect();
    assert_eq!(
        batch.len(),
        25,
        "the demo's interactions share one user, so one shard"
    );
    let message = tally_cloud::esm::destination::Failure {
        function_arn: &cloud.template.arn("PaidUserFunction").unwrap(),
        stream_arn: &cloud.template.arn("InteractionsStream").unwrap(),
        condition: "RetryAttemptsExhausted",
        invokes: 3,
        error: None,
    }
    .message(&batch);
    let queue = cloud
        .template
        .queue_url("StreamFailureQueue", &cloud.edge_url);
    cloud
        .clients
        .sqs
        .send_message()
        .queue_url(&queue)
        .message_body(message.to_string())
        .send()
        .await
        .unwrap();
    let said = tally_stdout(&stack, &["redrive"], &cloud.edge_url);
    assert!(said.starts_with("redrove 1 batch (25 records)"), "{said}");
    let changed = differences(&before, &settled(&cloud).await);
    assert!(
        !changed.contains_key("RuleStateTable"),
        "redriven once: {:#?}",
        changed.get("RuleStateTable")
    );
    let said = tally_stdout(&stack, &["redrive"], &cloud.edge_url);
    assert!(said.starts_with("redrove 0 batches"), "{said}");
    cloud.stop().await;
}
