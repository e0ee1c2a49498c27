//! The RSVP statistics on in-memory ports: equal to an independent computation whatever the
//! batching, with duplicated versions, later versions, versions out of order, redelivery and a
//! crash after any write.

use chrono::{DateTime, TimeZone, Utc};

use tally_engine::testing::*;
use tally_engine::{Aggregation, SequenceNumber, StreamRecord};

use super::stats::{read_stats, RsvpStats, RsvpStatsHandler, Stats};
use super::{expected_stats, Rsvp, RsvpDecoder};

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 22, 12, 0, 0).unwrap()
}

const SHARDS: [&str; 2] = ["shardId-000000000000", "shardId-000000000001"];

/// When the generated RSVPs start (ms): an evening of the Meetup stream's time.
fn meetup_evening() -> i64 {
    Utc.with_ymd_and_hms(2020, 10, 13, 22, 0, 0)
        .unwrap()
        .timestamp_millis()
}

/// An RSVP to event `e{event}` at position `i` of shard `s`, partitioned by event as the
/// producer partitions them.
fn on_shard(s: usize, i: u64, event: u64, data: String) -> StreamRecord {
    StreamRecord {
        shard_id: SHARDS[s].into(),
        sequence_number: kinesis_sequence(i),
        partition_key: format!("e{event}"),
        data: data.into_bytes(),
        arrival: now(),
    }
}

fn rsvp_json(id: u64, mtime_ms: i64, yes: bool, event: u64, member: u64) -> String {
    format!(
        r#"{{"visibility":"public","response":"{}","guests":0,"member":{{"member_id":{member},"member_name":"Member {member}"}},"rsvp_id":{id},"mtime":{mtime_ms},"event":{{"event_name":"Event | {event}","event_id":"e{event}","time":{},"event_url":"https://www.meetup.com/g/events/e{event}/"}},"group":{{"group_topics":[],"group_city":"Leeds","group_country":"gb","group_id":{},"group_name":"Group","group_lon":-1.5,"group_urlname":"g","group_lat":53.8}}}}"#,
        if yes { "yes" } else { "no" },
        mtime_ms + 86_400_000,
        event % 3
    )
}

/// RSVPs over 12 minutes as a producer that reconnects would send them: later versions with a
/// changed response, some out of order, exact duplicates (retries, replays) and garbage, on two
/// shards by event, as the stream is partitioned.
fn random_records(seed: u64, n: u64) -> Vec<StreamRecord> {
    let mut rng = SeededRng::new(seed);
    let start = meetup_evening();
    let mut sent: Vec<(String, u64)> = Vec::new();
    let mut known: Vec<(u64, i64, u64, u64)> = Vec::new();
    for i in 0..n {
        let t = start + (i as i64) * 720_000 / n as i64;
        let (data, event) = match rng.below(20) {
            0 if !sent.is_empty() => sent[rng.below(sent.len() as u64) as usize].clone(),
            1 => ("{\"rsvp_id\":".to_string(), 0),
            2..=4 if !known.is_empty() => {
                // A later version (or, one time in four, an older one arriving late).
                let (id, at, event, member) = known[rng.below(known.len() as u64) as usize];
                let mtime = if rng.below(4) == 0 {
                    at - 1 - rng.below(60_000) as i64
                } else {
                    t
                };
                (
                    rsvp_json(id, mtime, rng.below(2) == 0, event, member),
                    event,
                )
            }
            _ => {
                let (id, event, member) = (1_000 + i, rng.below(9), rng.below(50));
                known.push((id, t, event, member));
                (rsvp_json(id, t, rng.below(5) > 0, event, member), event)
            }
        };
        sent.push((data, event));
    }
    let mut positions = [0u64; 2];
    sent.into_iter()
        .map(|(data, event)| {
            let s = (event % 2) as usize;
            positions[s] += 1;
            on_shard(s, positions[s], event, data)
        })
        .collect()
}

fn versions(records: &[StreamRecord]) -> Vec<Rsvp> {
    records
        .iter()
        .filter_map(|r| RsvpDecoder::default().decode(r).ok())
        .collect()
}

type Handler<'a> =
    RsvpStatsHandler<&'a MemoryStateStore, &'a MemoryPublisher, &'a MemoryDeadLetters>;

async fn deliver(h: &Handler<'_>, records: &[StreamRecord], batch: usize, repeats: usize) {
    deliver_like_lambda(h, records, batch, repeats, now()).await
}

fn without_as_of(mut s: Stats) -> Stats {
    s.as_of = now();
    s
}

/// After a crash: the store works again, Lambda delivers every batch from the retry on, and the
/// stats are `expected` (`after` says which crash, when they are not).
async fn recover(
    h: &Handler<'_>, store: &MemoryStateStore, records: &[StreamRecord], batch: usize,
    expected: &Stats, after: String,
) {
    store.fail_after(usize::MAX);
    deliver(h, records, batch, 1).await;
    let got = read_stats(store, now()).await.unwrap();
    assert_eq!(&without_as_of(got), expected, "{after}");
}

#[tokio::test]
async fn stats_equal_an_independent_computation_whatever_the_batching() {
    for seed in 0..4u64 {
        let records = random_records(seed, 600);
        let expected = expected_stats(&versions(&records), now());
        assert!(
            expected.top_events.len() == 5 && expected.totals.no > 0,
            "a workload that tests something"
        );
        for (batch, repeats, aggregation) in [
            (1, 1, Aggregation::PerKey),
            (7, 2, Aggregation::PerKey),
            (100, 1, Aggregation::PerRecord),
            (600, 3, Aggregation::PerKey),
        ] {
            let (store, publisher, dl) = memory_ports();
            let mut h = RsvpStats::handler(&store, &publisher, &dl);
            h.aggregation = aggregation;
            deliver(&h, &records, batch, repeats).await;
            let got = read_stats(&store, now()).await.unwrap();
            assert_eq!(
                without_as_of(got),
                expected,
                "seed {seed} batch {batch} x{repeats} {aggregation:?}"
            );
            let garbage = records
                .iter()
                .filter(|r| r.data.starts_with(b"{\"rsvp_id\":") && r.data.len() < 12)
                .count();
            assert_eq!(
                dl.letters.lock().unwrap().len(),
                garbage,
                "every bad record dead-lettered, once"
            );
            // The last record published is the stats as they are now.
            let last = publisher.json().pop().unwrap();
            assert_eq!(
                last["totals"],
                serde_json::to_value(&expected.totals).unwrap()
            );
            assert!(publisher
                .published
                .lock()
                .unwrap()
                .iter()
                .all(|r| r.partition_key == "stats"));
        }
    }
}

/// Few RSVPs with many versions each, interleaved on one shard, so that a batch that fails part
/// way holds versions of one RSVP on both sides of the failure.
fn interleaved_versions(seed: u64) -> Vec<StreamRecord> {
    let mut rng = SeededRng::new(seed);
    let start = meetup_evening();
    (0..60u64)
        .map(|i| {
            let id = rng.below(8);
            let mtime = start + (i as i64) * 7_000 - if rng.below(5) == 0 { 30_000 } else { 0 };
            on_shard(
                0,
                i,
                id % 3,
                rsvp_json(id, mtime, rng.below(2) == 0, id % 3, id),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_crash_after_any_write_loses_and_doubles_nothing() {
    for (records, batch) in [
        (random_records(7, 160), 40),
        (interleaved_versions(1), 60),
        (interleaved_versions(2), 30),
    ] {
        let expected = expected_stats(&versions(&records), now());
        let shard: Vec<StreamRecord> = records
            .iter()
            .filter(|r| r.shard_id == SHARDS[0])
            .cloned()
            .collect();
        let clean_writes = {
            let (store, publisher, dl) = memory_ports();
            RsvpStats::handler(&store, &publisher, &dl)
                .run(&shard[..batch], now())
                .await
                .writes
        };
        assert!(clean_writes > 8, "steps 1 and 2 write: {clean_writes}");
        let mut reported = 0;
        for (n, only) in (0..clean_writes).flat_map(|n| [(n, false), (n, true)]) {
            let (store, publisher, dl) = memory_ports();
            let h = RsvpStats::handler(&store, &publisher, &dl);
            // A crash after n writes, or only the n-th write throttled and the others done.
            if only {
                store.fail_only(n);
            } else {
                store.fail_after(n);
            }
            reported += usize::from(h.run(&shard[..batch], now()).await.retry_from.is_some());
            let after = format!("write {n} failed (only it: {only})");
            recover(&h, &store, &records, batch, &expected, after).await;
        }
        assert_eq!(
            reported,
            2 * clean_writes,
            "every injected failure is reported for a retry"
        );
    }
}

#[tokio::test]
async fn a_batch_of_versions_seen_before_changes_nothing_and_publishes_nothing() {
    let records = random_records(3, 200);
    let (store, publisher, dl) = memory_ports();
    let h = RsvpStats::handler(&store, &publisher, &dl);
    deliver(&h, &records, 50, 1).await;
    let before = read_stats(&store, now()).await.unwrap();
    let published = publisher.published.lock().unwrap().len();
    // The producer reconnects and sends the last 50 again: new sequence numbers, same versions.
    let shard: Vec<&StreamRecord> = records.iter().filter(|r| r.shard_id == SHARDS[1]).collect();
    let replay: Vec<StreamRecord> = shard[shard.len() - 50..]
        .iter()
        .enumerate()
        .map(|(i, r)| StreamRecord {
            sequence_number: SequenceNumber::parse(&format!("5{:055}", i)).unwrap(),
            ..(*r).clone()
        })
        .collect();
    let report = h.run(&replay, now()).await;
    assert_eq!(report.retry_from, None);
    assert_eq!(
        read_stats(&store, now()).await.unwrap(),
        Stats {
            as_of: now(),
            ..before
        }
    );
    assert_eq!(
        publisher.published.lock().unwrap().len(),
        published,
        "no change, no record"
    );
}

#[tokio::test]
async fn a_later_version_replaces_the_response_and_an_older_one_does_not() {
    let at = meetup_evening();
    let record = |i: u64, data: String| on_shard(0, i, 1, data);
    let (store, publisher, dl) = memory_ports();
    let h = RsvpStats::handler(&store, &publisher, &dl);
    h.run(
        &[
            record(1, rsvp_json(1, at, true, 1, 1)),
            record(2, rsvp_json(2, at, true, 1, 2)),
        ],
        now(),
    )
    .await;
    let s = read_stats(&store, now()).await.unwrap();
    assert_eq!((s.totals.yes, s.totals.no, s.totals.rsvps), (2, 0, 2));
    assert_eq!(
        (
            s.top_events[0].event_id.as_str(),
            s.top_events[0].event_name.as_str(),
            s.top_events[0].yes
        ),
        ("e1", "Event | 1", 2)
    );
    // Member 1 changes their mind a minute later; an older version of member 2's arrives late.
    h.run(
        &[
            record(3, rsvp_json(1, at + 60_000, false, 1, 1)),
            record(4, rsvp_json(2, at - 5_000, false, 1, 2)),
        ],
        now(),
    )
    .await;
    let s = read_stats(&store, now()).await.unwrap();
    assert_eq!((s.totals.yes, s.totals.no, s.totals.rsvps), (1, 1, 2));
    assert_eq!(
        s.per_minute.iter().map(|m| m.rsvps).sum::<u64>(),
        4,
        "four distinct versions"
    );
    assert_eq!(s.per_minute.last().unwrap().rsvps, 1);
    assert_eq!(s.window_end.unwrap().timestamp_millis(), at + 120_000);
    assert_eq!(
        s.top_events[0].yes, 2,
        "the yes versions in the window still count"
    );
}

#[tokio::test]
async fn a_minute_of_many_events_is_written_in_several_updates_and_counted_exactly() {
    // 400 RSVPs to 300 events in one minute, in one batch: more names than one update can hold.
    let at = meetup_evening();
    let records: Vec<StreamRecord> = (0..400u64)
        .map(|i| {
            on_shard(
                0,
                i,
                i % 300,
                rsvp_json(i, at + i as i64, i % 7 != 0, i % 300, i),
            )
        })
        .collect();
    let expected = expected_stats(&versions(&records), now());
    for (crash_after, batch) in [(usize::MAX, 400), (3, 400), (usize::MAX, 137)] {
        let (store, publisher, dl) = memory_ports();
        let h = RsvpStats::handler(&store, &publisher, &dl);
        store.fail_after(crash_after);
        h.run(&records[..batch], now()).await;
        let after = format!("crash after {crash_after}, batch {batch}");
        recover(&h, &store, &records, batch, &expected, after).await;
    }
    assert_eq!(expected.per_minute.last().unwrap().rsvps, 400);
}
