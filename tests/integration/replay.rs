//! `tally replay` and `tally redrive`: the archive (or the stream) delivered again to the
//! consumers, with the records' original shard ids and sequence numbers (kept by the archive's
//! transformation), on a local cloud of its own.

use std::collections::BTreeMap;
use std::time::Duration;

use tally_cloud::cloud::LocalCloud;

use crate::support::{cloud_options, local_root, tally_stdout};

/// Every item of every DynamoDB table of the stack (counts, stats, metrics, results, watermarks),
/// as text, by table.
async fn state(cloud: &LocalCloud) -> BTreeMap<String, Vec<String>> {
    let mut out = BTreeMap::new();
    for t in cloud.template.of_kind("AWS::DynamoDB::Table") {
        let name = cloud.template.physical_name(&t.logical_id);
        let mut items = Vec::new();
        let mut pages = cloud
            .clients
            .dynamodb
            .scan()
            .table_name(&name)
            .into_paginator()
            .items()
            .send();
        while let Some(item) = pages.next().await {
            let item = item.unwrap();
            let sorted: BTreeMap<_, _> = item
                .iter()
                // The revision counts writes, which depend on how records were batched.
                .filter(|(k, _)| *k != "rev")
                .map(|(k, v)| (k.clone(), format!("{v:?}")))
                .collect();
            items.push(format!("{sorted:?}"));
        }
        items.sort();
        out.insert(t.logical_id.clone(), items);
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

/// The items one state has and the other not, by table (empty: the same). The dashboard's answer
/// counters are left out: they count the models' published results, and a model publishes its
/// stored results again for a batch it had applied (a redelivery after a crash between its write
/// and its publish, or a replay), which the counters count again (a known gap: issue note).
fn differences(
    a: &BTreeMap<String, Vec<String>>, b: &BTreeMap<String, Vec<String>>,
) -> BTreeMap<String, (Vec<String>, Vec<String>)> {
    let mut out = BTreeMap::new();
    let kept = |items: &Vec<String>| -> Vec<String> {
        items
            .iter()
            .filter(|i| !i.contains("dash#answers#"))
            .cloned()
            .collect()
    };
    for (table, items) in a {
        let items = kept(items);
        let other = kept(&b.get(table).cloned().unwrap_or_default());
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
    let table = cloud.template.physical_name(table);
    let db = &cloud.clients.dynamodb;
    let items = db.scan().table_name(&table).send().await.unwrap();
    let mut gone = 0;
    for item in items.items() {
        if item["pk"].as_s().unwrap().starts_with(prefix) {
            let key = std::collections::HashMap::from([("pk".to_string(), item["pk"].clone())]);
            db.delete_item()
                .table_name(&table)
                .set_key(Some(key))
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replaying_the_archive_changes_nothing_and_refills_a_consumer_that_lost_its_state() {
    let stack = format!("rpl{}", std::process::id());
    let cloud = LocalCloud::start(cloud_options(&stack))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let demo = local_root().join("infra/demo");
    let inputs = [
        ("VisitsStream", "visits.jsonl"),
        ("InteractionsStream", "interactions.jsonl"),
        ("RsvpStream", "rsvps.jsonl"),
        ("EventsStream", "events.jsonl"),
    ];
    for (stream, file) in inputs {
        let path = demo.join(file);
        tally_stdout(
            &stack,
            &["put", stream, path.to_str().unwrap()],
            &cloud.edge_url,
        );
    }
    let before = settled(&cloud).await;
    let published = outputs(&cloud).await;
    assert!(
        published["PaidUserStream"] > 0,
        "the demo raises alerts: {published:?}"
    );

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

    // The gender models' state lost (as a model added later has none): replaying to them alone
    // makes it again, exactly.
    assert!(forget(&cloud, "GenderStateTable", "").await > 0);
    let said = tally_stdout(
        &stack,
        &[
            "replay",
            "VisitsStream",
            "--function",
            "GenderModelsFunction",
        ],
        &cloud.edge_url,
    );
    assert!(said.contains("to 1 function"), "{said}");
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
