//! The threshold rules against the emulators: each rule on its events/ file, randomized input
//! with redelivery and different batch sizes against an independent computation, and the seed's
//! sample input end to end through the local cloud.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use chrono::{TimeZone, Utc};
use lambda_runtime::{Context, LambdaEvent};
use tally_aws::kinesis_event::KinesisEvent;
use tally_engine::testing::SeededRng;

use crate::support::{self, deliver_twice, event_file, kinesis_event, shared_cloud, tally, Stack};

const RULES: [(&str, &str); 3] = [
    ("PaidUserFunction", "PaidUserStream"),
    ("PropertyStatusFunction", "PropertyStatusStream"),
    ("PossibleBrokerFunction", "PossibleBrokerStream"),
];

async fn alerts_on(stack: &Stack, stream: &str) -> Vec<serde_json::Value> {
    stack
        .read_stream(stream)
        .await
        .iter()
        .map(|r| serde_json::from_slice(&r.data).unwrap())
        .collect()
}

#[tokio::test]
async fn each_rule_on_its_event_file_alerts_once_with_the_seed_counts() {
    let stack = Stack::new(&[]).await;
    let expected = [
        serde_json::json!({"user":1,"interactions_count":9,"alert_id":"paid_user:1"}),
        serde_json::json!({"property":1,"property_interactions_count":6,"alert_id":"property_status:1"}),
        serde_json::json!({"window.start":"2021-11-30T00:00:00.000Z","user_id":1,"threat_user_interactions":11,"alert_id":"possible_broker:1:2021-11-30T00:00:00.000Z"}),
    ];
    for ((function, stream), want) in RULES.into_iter().zip(expected) {
        let f = rule_engine::from_env(&stack.sdk, &stack.function_env(function)).unwrap();
        let event: KinesisEvent =
            serde_json::from_value(event_file(&format!("{function}.json"))).unwrap();
        // The second delivery is a redelivery: nothing counts twice.
        deliver_twice(&f, &event).await;
        assert_eq!(alerts_on(&stack, stream).await, vec![want], "{function}");
        let letters = stack
            .objects(
                "ArchiveBucket",
                &format!("dead-letter/{}/", f.handler.consumer.rule.name()),
            )
            .await;
        assert_eq!(letters.len(), 1, "the truncated seed line is dead-lettered");
    }
}

/// Alert ids computed independently from the interactions, as the seed's rules state them.
fn expected_ids(lines: &[String]) -> BTreeMap<String, u64> {
    let (mut users, mut props, mut windows) = (
        BTreeMap::<u64, u64>::new(),
        BTreeMap::<u64, u64>::new(),
        BTreeMap::<(u64, i64), u64>::new(),
    );
    for l in lines {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(l) else {
            continue;
        };
        if v["event"] != "Interaction" {
            continue;
        }
        let t =
            chrono::NaiveDateTime::parse_from_str(v["date"].as_str().unwrap(), "%Y-%m-%d %H:%M:%S")
                .unwrap()
                .and_utc()
                .timestamp();
        let (u, p) = (
            v["user_id"].as_u64().unwrap(),
            v["property_id"].as_u64().unwrap(),
        );
        *users.entry(u).or_default() += 1;
        *props.entry(p).or_default() += 1;
        *windows.entry((u, t - t.rem_euclid(60))).or_default() += 1;
    }
    let mut out = BTreeMap::new();
    out.extend(
        users
            .into_iter()
            .filter(|(_, n)| *n >= 9)
            .map(|(u, _)| (format!("paid_user:{u}"), 9)),
    );
    out.extend(
        props
            .into_iter()
            .filter(|(_, n)| *n > 5)
            .map(|(p, _)| (format!("property_status:{p}"), 6)),
    );
    out.extend(
        windows
            .into_iter()
            .filter(|(_, n)| *n > 10)
            .map(|((u, s), _)| {
                (
                    format!(
                        "possible_broker:{u}:{}",
                        Utc.timestamp_opt(s, 0)
                            .unwrap()
                            .format("%Y-%m-%dT%H:%M:%S%.3fZ")
                    ),
                    11,
                )
            }),
    );
    out
}

#[tokio::test]
async fn random_interactions_with_redelivery_and_any_batch_size_give_the_independent_alerts() {
    let stack = Stack::new(&[("InteractionsShardCount", "2")]).await;
    let mut rng = SeededRng::new(17);
    let mut next = move |m: u64| rng.below(m);
    let base = Utc.with_ymd_and_hms(2021, 11, 30, 0, 0, 0).unwrap();
    let lines: Vec<String> = (0..500)
        .map(|_| {
            let at =
                (base + chrono::Duration::seconds(next(300) as i64)).format("%Y-%m-%d %H:%M:%S");
            let event = if next(10) == 0 { "View" } else { "Interaction" };
            format!(
                r#"{{"user_id":{},"property_id":{},"date":"{at}","event":"{event}"}}"#,
                next(5),
                next(8)
            )
        })
        .collect();
    let records: Vec<(String, Vec<u8>)> = lines
        .iter()
        .map(|l| {
            (
                serde_json::from_str::<serde_json::Value>(l).unwrap()["user_id"].to_string(),
                l.clone().into_bytes(),
            )
        })
        .collect();
    stack.put_records("InteractionsStream", &records).await;
    let stored = stack.read_stream("InteractionsStream").await;
    let arn = stack.template.arn("InteractionsStream").unwrap();
    let expected = expected_ids(&lines);
    assert!(expected.len() > 5);
    for (function, stream) in RULES {
        let f = rule_engine::from_env(&stack.sdk, &stack.function_env(function)).unwrap();
        // Per shard, batches of 7, then a redelivery of everything in batches of 64, then all at once.
        for batch in [7, 64, 500] {
            let shards: BTreeSet<&str> = stored.iter().map(|r| r.shard_id.as_str()).collect();
            for shard in shards {
                let in_shard: Vec<_> = stored
                    .iter()
                    .filter(|r| r.shard_id == shard)
                    .cloned()
                    .collect();
                for chunk in in_shard.chunks(batch) {
                    let response = f
                        .handle(LambdaEvent::new(
                            kinesis_event(&arn, chunk),
                            Context::default(),
                        ))
                        .await
                        .unwrap();
                    assert!(response.batch_item_failures.is_empty());
                }
            }
        }
        let got = alerts_on(&stack, stream).await;
        let ids: Vec<&str> = got
            .iter()
            .map(|a| a["alert_id"].as_str().unwrap())
            .collect();
        let mut unique = ids.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(
            ids.len(),
            unique.len(),
            "{function}: each alert once: {ids:?}"
        );
        let want: Vec<&String> = expected
            .keys()
            .filter(|k| k.starts_with(f.handler.consumer.rule.name()))
            .collect();
        assert_eq!(
            unique,
            want.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
            "{function}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seed_sample_through_the_local_cloud_raises_exactly_the_three_seed_alerts() {
    let cloud = shared_cloud();
    let root = support::local_root();
    let mut input = std::fs::read_to_string(root.join("infra/demo/interactions.jsonl")).unwrap();
    input.push_str("{\n"); // the seed's truncated last line
    let file = std::env::temp_dir().join(format!("tally-seed-{}.jsonl", std::process::id()));
    std::fs::write(&file, input).unwrap();
    let out = tally(
        &["put", "InteractionsStream", file.to_str().unwrap()],
        &cloud.edge_url,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let expected = [
        (
            "PaidUserStream",
            r#"{"alert_id":"paid_user:1","interactions_count":9,"user":1}"#,
        ),
        (
            "PropertyStatusStream",
            r#"{"alert_id":"property_status:1","property":1,"property_interactions_count":6}"#,
        ),
        (
            "PossibleBrokerStream",
            r#"{"alert_id":"possible_broker:1:2021-11-30T00:00:00.000Z","threat_user_interactions":11,"user_id":1,"window.start":"2021-11-30T00:00:00.000Z"}"#,
        ),
    ];
    // Other tests share this cloud's alert streams (the lake's end-to-end test raises alerts for
    // users of its own): the seed's alerts are those of its user and property, 1.
    let of_the_seed = |line: &&str| {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        v["alert_id"].as_str().unwrap().split(':').nth(1) == Some("1")
    };
    for (stream, alert) in expected {
        let lines = support::wait_for(
            &format!("the alert on {stream}"),
            Duration::from_secs(120),
            || async {
                let out = tally(&["tail", stream, "--from-beginning"], &cloud.edge_url);
                let text = String::from_utf8_lossy(&out.stdout).to_string();
                let seed: Vec<&str> = text.lines().filter(of_the_seed).collect();
                (!seed.is_empty()).then(|| seed.join("\n"))
            },
        )
        .await;
        assert_eq!(lines.trim(), alert, "{stream}");
    }
}
