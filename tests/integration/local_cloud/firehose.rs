//! Firehose from Kinesis to S3: every raw record archived, gzipped, newline-delimited, by day.

use std::time::Duration;

use chrono::Utc;
use tally_cloud::cloud::LocalCloud;

use crate::support::{cloud_options, wait_for};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn firehose_archives_every_raw_record_gzipped_and_newline_delimited_by_day() {
    let opts = cloud_options(&format!("arc{}", std::process::id()));
    let mut cloud = LocalCloud::start(opts)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let visits = vec![
        r#"{"cid":"A1","gndr":"male"}"#.to_string(),
        "not json".to_string(),
        r#"{"cid":"A2","gndr":"x"}"#.to_string(),
    ];
    let interactions = vec![
        r#"{"user_id":1,"property_id":1,"date":"2021-11-30 00:00:00","event":"Interaction"}"#
            .to_string(),
        r#"{"user_id":1,"property_id":2,"date":"2021-11-30 00:00:01","event":"View"}"#.to_string(),
    ];
    for (stream, lines) in [
        ("VisitsStream", &visits),
        ("InteractionsStream", &interactions),
    ] {
        for l in lines {
            cloud
                .clients
                .kinesis
                .put_record()
                .stream_name(cloud.template.physical_name(stream))
                .partition_key("k")
                .data(aws_sdk_kinesis::primitives::Blob::new(l.as_bytes()))
                .send()
                .await
                .unwrap();
        }
    }
    // Every record read by the two delivery streams, then stop: buffers are delivered, not lost.
    let deliveries: Vec<_> = cloud
        .deliveries
        .iter()
        .filter(|d| {
            d.spec.prefix.starts_with("raw/visits/")
                || d.spec.prefix.starts_with("raw/interactions/")
        })
        .cloned()
        .collect();
    assert_eq!(deliveries.len(), 2);
    wait_for(
        "Firehose to read both streams",
        Duration::from_secs(60),
        || {
            let d = deliveries.clone();
            async move {
                d.iter()
                    .all(|d| d.stats.lock().unwrap().records >= 2)
                    .then_some(())
            }
        },
    )
    .await;
    cloud.drain().await;
    let bucket = cloud.template.physical_name("ArchiveBucket");
    let today = Utc::now().format("%Y-%m-%d").to_string();
    for (prefix, lines) in [
        ("raw/visits/", &visits),
        ("raw/interactions/", &interactions),
    ] {
        let mut archived = String::new();
        for (key, body) in crate::support::read_objects(&cloud.clients.s3, &bucket, prefix).await {
            assert!(
                key.starts_with(&format!("{prefix}dt={today}/")) && key.ends_with(".gz"),
                "{key}"
            );
            archived.push_str(&records_of(&body).join(""));
        }
        assert_eq!(
            archived,
            lines.iter().map(|l| format!("{l}\n")).collect::<String>(),
            "{prefix}"
        );
    }
    cloud.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_put_just_before_the_cloud_stops_are_archived() {
    let mut cloud = LocalCloud::start(cloud_options(&format!("stp{}", std::process::id())))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let stream = cloud.template.physical_name("InteractionsStream");
    let lines: Vec<String> = (0..300)
        .map(|i| format!(r#"{{"user_id":{i},"property_id":1,"event":"View"}}"#))
        .collect();
    let entries: Vec<(String, &[u8])> = lines
        .iter()
        .enumerate()
        .map(|(i, l)| (i.to_string(), l.as_bytes()))
        .collect();
    let put =
        tally_cloud::kinesis::put_all(&cloud.clients.kinesis, &stream, &entries, |_| {}).await;
    assert_eq!(put.accepted, lines.len());
    // No waiting for Firehose to read them: stopping must read every shard to its end first.
    cloud.drain().await;
    let bucket = cloud.template.physical_name("ArchiveBucket");
    let mut archived = Vec::new();
    for body in crate::support::read_objects(&cloud.clients.s3, &bucket, "raw/interactions/")
        .await
        .values()
    {
        archived.extend(
            records_of(body)
                .into_iter()
                .map(|l| l.trim_end().to_string()),
        );
    }
    archived.sort();
    let mut expected = lines.clone();
    expected.sort();
    assert_eq!(
        archived, expected,
        "every record put before the stop is archived"
    );
    cloud.stop().await;
}

/// The records of an archived object as they were put, each with its newline: every line keeps
/// where its record came from (its shard and sequence number, for replay), and gives the record
/// back exactly.
fn records_of(gzipped: &[u8]) -> Vec<String> {
    let mut text = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(gzipped), &mut text).unwrap();
    text.split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|line| {
            let (origin, record) = tally_engine::archive::unstamp(line);
            let origin =
                origin.unwrap_or_else(|| panic!("no origin: {}", String::from_utf8_lossy(line)));
            assert!(origin.shard_id.starts_with("shardId-") && !origin.sequence_number.is_empty());
            format!("{}\n", String::from_utf8_lossy(&record))
        })
        .collect()
}
