//! Event source mappings with AWS's semantics, against a consumer that fails on purpose.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use tally_cloud::cloud::LocalCloud;

use crate::support::{cloud_options, local_root, wait_for};

/// The flaky consumer's ledger table, read consistently: `pk` -> item.
async fn ledger(
    db: &aws_sdk_dynamodb::Client, table: &str,
) -> Option<BTreeMap<String, HashMap<String, AttributeValue>>> {
    let out = db
        .scan()
        .table_name(table)
        .consistent_read(true)
        .send()
        .await
        .ok()?;
    Some(
        out.items()
            .iter()
            .map(|i| (i["pk"].as_s().unwrap().clone(), i.clone()))
            .collect(),
    )
}

/// The ids completed in each `order#...` ledger item, in completion order.
fn orders(
    ledger: &BTreeMap<String, HashMap<String, AttributeValue>>,
) -> BTreeMap<String, Vec<u64>> {
    ledger
        .iter()
        .filter(|(pk, _)| pk.starts_with("order#"))
        .map(|(pk, i)| {
            let ids = i["ids"].as_l().unwrap();
            let ids = ids.iter().map(|v| v.as_n().unwrap().parse().unwrap());
            (pk.clone(), ids.collect())
        })
        .collect()
}

/// Whether the ids, each at its first completion, come in increasing order (a redelivered id
/// may complete again later).
fn first_completions_increase(order: &[u64]) -> bool {
    let mut firsts = Vec::new();
    for id in order {
        if !firsts.contains(id) {
            firsts.push(*id);
        }
    }
    firsts.windows(2).all(|w| w[0] < w[1])
}

/// A private cloud of the mappings' fixture template (the flaky consumer and its queues).
async fn flaky_cloud(name: &str, params: &[(&str, &str)]) -> LocalCloud {
    let mut opts = cloud_options(&format!("{name}{}", std::process::id()));
    opts.template = local_root().join("tests/fixtures/esm/template.yaml");
    for (k, v) in params {
        opts.params.insert(k.to_string(), v.to_string());
    }
    LocalCloud::start(opts)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_source_mapping_retries_bisects_filters_and_sends_exhausted_batches_to_the_queue() {
    let cloud = flaky_cloud("esm", &[]).await;
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
        tally_stack::template::ACCOUNT,
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
            let orders = orders(&ledger(&db, &table).await?);
            let done: BTreeSet<u64> = orders.values().flatten().copied().collect();
            let wanted = (1..=40u64).filter(|id| kind(*id) != "skip").count();
            (done.len() == wanted).then_some(orders)
        }
    })
    .await;
    for order in orders.values() {
        assert!(
            first_completions_increase(order),
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
    for (id, at_least, why) in [
        (3, 2, "a partial batch failure is redelivered"),
        (17, 2, "a crashed invocation is bisected and retried"),
        (
            100,
            3,
            "a poison record is retried until its retries are exhausted",
        ),
        (
            22,
            2,
            "a process that died is replaced and the record retried",
        ),
        (31, 2, "a timed-out invocation is stopped and retried"),
    ] {
        assert!(deliveries(id).await >= at_least, "record {id}: {why}");
    }
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
async fn after_a_reshard_the_children_follow_their_parent_and_the_mapping_catches_up() {
    let cloud = flaky_cloud("rsh", &[]).await;
    let stream = cloud.template.physical_name("InputStream");
    let kinesis = cloud.clients.kinesis.clone();
    let put = |id: u64| {
        let (kinesis, stream) = (kinesis.clone(), stream.clone());
        async move {
            kinesis
                .put_record()
                .stream_name(stream)
                .partition_key("k0")
                .data(aws_sdk_kinesis::primitives::Blob::new(
                    format!(r#"{{"id":{id},"kind":"ok"}}"#).into_bytes(),
                ))
                .send()
                .await
                .unwrap()
                .shard_id()
                .to_string()
        }
    };
    let mut parent = String::new();
    for id in 1..=5 {
        parent = put(id).await;
    }
    // Split the shard k0 went to in the middle of its hash range, as UpdateShardCount would.
    let shards = kinesis
        .list_shards()
        .stream_name(&stream)
        .send()
        .await
        .unwrap();
    let range = shards
        .shards()
        .iter()
        .find(|s| s.shard_id() == parent)
        .unwrap()
        .hash_key_range()
        .unwrap()
        .clone();
    let (low, high): (u128, u128) = (
        range.starting_hash_key().parse().unwrap(),
        range.ending_hash_key().parse().unwrap(),
    );
    kinesis
        .split_shard()
        .stream_name(&stream)
        .shard_to_split(&parent)
        .new_starting_hash_key((low + (high - low) / 2).to_string())
        .send()
        .await
        .unwrap();
    wait_for(
        "the stream to be active again",
        Duration::from_secs(30),
        || {
            let (kinesis, stream) = (kinesis.clone(), stream.clone());
            async move {
                let d = kinesis
                    .describe_stream_summary()
                    .stream_name(stream)
                    .send()
                    .await
                    .ok()?;
                (d.stream_description_summary()?.stream_status().as_str() == "ACTIVE").then_some(())
            }
        },
    )
    .await;
    let mut child = String::new();
    for id in 6..=10 {
        child = put(id).await;
    }
    assert_ne!(child, parent, "k0 now goes to a child shard");

    let db = cloud.clients.dynamodb.clone();
    let table = cloud.template.physical_name("LedgerTable");
    let order = |shard: String| {
        let (db, table) = (db.clone(), table.clone());
        async move {
            let item = db
                .get_item()
                .table_name(table)
                .key("pk", AttributeValue::S(format!("order#{shard}")))
                .consistent_read(true)
                .send()
                .await
                .ok()?
                .item?;
            Some(
                item["ids"]
                    .as_l()
                    .ok()?
                    .iter()
                    .map(|v| v.as_n().unwrap().parse::<u64>().unwrap())
                    .collect::<Vec<u64>>(),
            )
        }
    };
    wait_for(
        "every record processed and the mapping caught up",
        Duration::from_secs(60),
        || {
            let (order, parent, child, cloud) = (&order, parent.clone(), child.clone(), &cloud);
            async move {
                let done = order(parent).await? == [1, 2, 3, 4, 5]
                    && order(child).await? == [6, 7, 8, 9, 10];
                (done && cloud.caught_up()).then_some(())
            }
        },
    )
    .await;
    cloud.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parallelization_factor_runs_batches_of_one_shard_at_once_in_order_per_key() {
    let cloud = flaky_cloud("par", &[("Parallelization", "4")]).await;
    let name = |id: &str| cloud.template.physical_name(id);
    // 12 keys with slow records (so lanes overlap), a few failures to redeliver (few enough for
    // MaximumRetryAttempts 2, so that none goes to the on-failure queue).
    let kind = |id: u64| match id {
        4 | 50 => "fail_once",
        27 => "crash_once",
        _ if id.is_multiple_of(3) => "slow",
        _ => "ok",
    };
    let ids = 1..=96u64;
    let entries: Vec<aws_sdk_kinesis::types::PutRecordsRequestEntry> = ids
        .clone()
        .map(|id| {
            aws_sdk_kinesis::types::PutRecordsRequestEntry::builder()
                .partition_key(format!("key{}", id % 12))
                .data(aws_sdk_kinesis::primitives::Blob::new(format!(
                    r#"{{"id":{id},"kind":"{}"}}"#,
                    kind(id)
                )))
                .build()
                .unwrap()
        })
        .collect();
    // One call: the poller finds many keys at once, as under load.
    let out = cloud
        .clients
        .kinesis
        .put_records()
        .stream_name(name("InputStream"))
        .set_records(Some(entries))
        .send()
        .await
        .unwrap();
    assert_eq!(out.failed_record_count(), Some(0));

    let db = cloud.clients.dynamodb.clone();
    let table = name("LedgerTable");
    let items = wait_for("all records completed", Duration::from_secs(90), || {
        let (db, table, cloud) = (db.clone(), table.clone(), &cloud);
        async move {
            let items = ledger(&db, &table).await?;
            let done: BTreeSet<u64> = orders(&items).values().flatten().copied().collect();
            (done.len() == 96 && cloud.caught_up()).then_some(items)
        }
    })
    .await;
    let per_key: BTreeMap<String, Vec<u64>> = orders(&items)
        .into_iter()
        .filter(|(pk, _)| pk.matches('#').count() == 2)
        .collect();
    assert_eq!(per_key.len(), 12, "every key's ledger");
    for (pk, order) in &per_key {
        assert!(
            first_completions_increase(order),
            "order kept per partition key ({pk}): {order:?}"
        );
    }
    let peak = items
        .iter()
        .filter(|(pk, _)| pk.starts_with("peak#"))
        .map(|(_, i)| i["n"].as_n().unwrap().parse::<u64>().unwrap())
        .max()
        .unwrap();
    assert!(peak >= 2, "batches of one shard ran at once (peak {peak})");
    let host = cloud.functions["FlakyFunction"].stats();
    assert!(host.instances >= 2, "the function scaled out: {host:?}");
    assert!(
        (2..=3).contains(&host.max_concurrent) && host.instances <= 3,
        "ReservedConcurrentExecutions 3 caps the instances: {host:?}"
    );
    let stats = cloud.mappings[0].stats.lock().unwrap().clone();
    assert!(stats.partial_failures >= 1, "{stats:?}");
    assert_eq!(stats.sent_to_destination, 0, "{stats:?}");
    cloud.stop().await;
}

/// `StreamMode`: provisioned streams get `StreamShardCount` shards, InteractionsStream its own
/// `InteractionsShardCount` (3 by default: seed 003's 100,000 a minute); on-demand ones start as
/// Kinesis starts them, with 4 (the stats stream, keyed by one value, stays a provisioned shard).
#[tokio::test]
async fn streams_get_the_shards_their_mode_gives() {
    // (parameters, shards of most streams, of InteractionsStream)
    for (params, most, interactions) in [
        (&[][..], 1, 3),
        (
            &[("StreamShardCount", "2"), ("InteractionsShardCount", "1")][..],
            2,
            1,
        ),
        (
            &[("StreamMode", "ON_DEMAND"), ("StreamShardCount", "2")][..],
            4,
            4,
        ),
    ] {
        let stack = crate::support::Stack::new(params).await;
        for id in [
            "VisitsStream",
            "InteractionsStream",
            "EventsStream",
            "RsvpStatsStream",
        ] {
            let name = stack.template.physical_name(id);
            let shards = tally_cloud::kinesis::reader::list_shards(&stack.clients.kinesis, &name)
                .await
                .unwrap();
            let want = match id {
                "RsvpStatsStream" => 1,
                "InteractionsStream" => interactions,
                _ => most,
            };
            assert_eq!(shards.len(), want, "{id} with {params:?}");
        }
    }
}

/// `AT_TIMESTAMP` as Kinesis answers it: from the first record at or after the time, or at the
/// shard's end when there is none yet (kinesalite alone never answers that; its launcher does).
#[tokio::test]
async fn an_at_timestamp_read_after_the_last_record_starts_at_the_end() {
    use tally_cloud::kinesis::{ShardReader, StartAt};
    let stack = crate::support::Stack::new(&[]).await;
    let kinesis = &stack.clients.kinesis;
    let name = stack.template.physical_name("VisitsStream");
    let put = |data: &'static [u8]| {
        kinesis
            .put_record()
            .stream_name(&name)
            .partition_key("k")
            .data(aws_sdk_kinesis::primitives::Blob::new(data))
            .send()
    };
    let before = chrono::Utc::now().timestamp_millis() as f64 / 1e3 - 1.0;
    put(b"first").await.unwrap();
    let first = ShardReader::new(
        kinesis.clone(),
        &name,
        "shardId-000000000000",
        StartAt::TrimHorizon,
    )
    .read_to_end()
    .await
    .unwrap();
    // A time after the record's arrival (the clock passes it within milliseconds).
    let arrival = first[0].arrival;
    let after = crate::support::wait_for(
        "the clock to pass the record",
        Duration::from_secs(5),
        || async move {
            let now = chrono::Utc::now().timestamp_millis() as f64 / 1e3;
            (now > arrival + 0.005).then_some(now)
        },
    )
    .await;
    let reader = |at: f64| {
        ShardReader::new(
            kinesis.clone(),
            &name,
            "shardId-000000000000",
            StartAt::AtTimestamp(at),
        )
    };
    let mut at_end = reader(after);
    let page = tokio::time::timeout(Duration::from_secs(10), at_end.read(100))
        .await
        .expect("GetShardIterator AT_TIMESTAMP answers")
        .unwrap();
    assert!(page.records.is_empty());
    put(b"second").await.unwrap();
    let data = |r: Vec<tally_cloud::kinesis::reader::ShardRecord>| -> Vec<Vec<u8>> {
        r.into_iter().map(|r| r.data).collect()
    };
    assert_eq!(
        data(at_end.read_to_end().await.unwrap()),
        [b"second".to_vec()]
    );
    assert_eq!(
        data(reader(before).read_to_end().await.unwrap()),
        [b"first".to_vec(), b"second".to_vec()]
    );
}
