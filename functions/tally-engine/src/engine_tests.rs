//! The engine with a consumer of its own (words counted per word, told once at three), so that
//! what the engine promises every pipeline is tested without any pipeline.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use chrono::{DateTime, TimeZone, Utc};

use crate::testing::*;
use crate::*;

const TOLD: &str = "told";

struct Words;

impl Consumer for Words {
    type Event = String;
    type Key = String;

    fn name(&self) -> &str {
        "words"
    }

    fn decode(&self, r: &StreamRecord) -> Result<Option<String>, Rejection> {
        let text = std::str::from_utf8(&r.data).map_err(|e| Rejection::NotUtf8 {
            at: e.valid_up_to(),
        })?;
        match text {
            "" => Err(Rejection::MissingField("word")),
            t if t.starts_with('#') => Ok(None),
            t => Ok(Some(t.to_string())),
        }
    }

    fn key(&self, word: &String) -> String {
        word.clone()
    }

    /// Words starting with "old" also leave a counter that housekeeping removes.
    fn fold(
        &self, word: &String, events: &[Sequenced<String>], _: DateTime<Utc>,
    ) -> Option<StateDelta> {
        let mut counters = BTreeMap::from([("count".to_string(), events.len() as u64)]);
        if word.starts_with("old") {
            counters.insert("stale".to_string(), 1);
        }
        Some(StateDelta {
            counters,
            ..Default::default()
        })
    }

    fn emit(&self, word: &String, stored: &StoredState, _: DateTime<Utc>) -> Emit {
        let told = stored.counters["count"] >= 3 && !stored.flags.contains(TOLD);
        Emit {
            outputs: told
                .then(|| {
                    let record = ports::OutRecord {
                        partition_key: word.clone(),
                        data: format!(r#"{{"word":"{word}"}}"#).into_bytes(),
                    };
                    Output::once(format!("words:{word}"), record, TOLD)
                })
                .into_iter()
                .collect(),
            prune: stored
                .counters
                .keys()
                .filter(|c| *c == "stale")
                .cloned()
                .collect(),
        }
    }

    fn finished(&self, stored: &StoredState) -> bool {
        stored.flags.contains(TOLD)
    }
}

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 22, 12, 0, 0).unwrap()
}

fn records(words: &[&str]) -> Vec<StreamRecord> {
    words
        .iter()
        .enumerate()
        .map(|(i, w)| StreamRecord {
            shard_id: "shardId-000000000000".into(),
            sequence_number: kinesis_sequence(i as u64),
            partition_key: w.to_string(),
            data: w.as_bytes().to_vec(),
            arrival: now(),
        })
        .collect()
}

#[tokio::test]
async fn decodes_ignores_and_dead_letters_in_one_pass() {
    let (store, publisher, dl) = memory_ports();
    let engine = Engine::new(Words, &store, &publisher, &dl);
    let report = engine
        .run(&records(&["a", "#note", "", "b", "a"]), now())
        .await;
    assert_eq!(
        (report.records, report.valid, report.ignored, report.keys),
        (5, 3, 1, 2)
    );
    assert_eq!(report.rejected, BTreeMap::from([("missing_field", 1)]));
    assert_eq!(
        report.retry_from, None,
        "a bad record never fails the batch"
    );
    let letters = dl.letters.lock().unwrap();
    let letter = letters.values().next().unwrap();
    assert_eq!(
        (letter.source.as_str(), letter.reason.as_str()),
        ("words", "missing field word")
    );
    assert_eq!(store.item("words#a").unwrap().counters["count"], 2);
}

#[tokio::test]
async fn an_emit_once_output_is_published_once_flagged_and_its_key_then_skipped() {
    for (aggregation, skipped) in [(Aggregation::PerKey, 4), (Aggregation::PerRecord, 0)] {
        let (store, publisher, dl) = memory_ports();
        let engine = Engine::new(Words, &store, &publisher, &dl).with_aggregation(aggregation);
        let first = engine.run(&records(&["a", "a", "a", "a"]), now()).await;
        assert_eq!(
            first.published, 1,
            "{aggregation:?}: once, however often written"
        );
        assert!(store.item("words#a").unwrap().flags.contains(TOLD));
        let again = engine
            .run(&records(&["a", "a", "a", "a", "a"])[1..], now())
            .await;
        assert_eq!(again.skipped, skipped, "{aggregation:?}");
        assert_eq!(publisher.json(), vec![serde_json::json!({"word": "a"})]);
    }
}

#[tokio::test]
async fn a_failed_housekeeping_write_is_not_counted_and_fails_nothing() {
    let (store, publisher, dl) = memory_ports();
    let engine = Engine::new(Words, &store, &publisher, &dl);
    store.housekeeping_fails.store(true, Ordering::SeqCst);
    let report = engine.run(&records(&["old"]), now()).await;
    assert_eq!(
        report.writes, 1,
        "one conditional write; the failed prune is not one"
    );
    assert_eq!(report.retry_from, None);
    assert!(store
        .item("words#old")
        .unwrap()
        .counters
        .contains_key("stale"));
    store.housekeeping_fails.store(false, Ordering::SeqCst);
    let report = engine.run(&records(&["x", "old"])[1..], now()).await;
    assert_eq!(report.writes, 2, "the write and the prune");
    assert!(!store
        .item("words#old")
        .unwrap()
        .counters
        .contains_key("stale"));
}

/// [`Words`] publishing its count after every change, as the gender models publish their results.
struct Counts;

impl Consumer for Counts {
    type Event = String;
    type Key = String;

    fn name(&self) -> &str {
        "counts"
    }

    fn decode(&self, r: &StreamRecord) -> Result<Option<String>, Rejection> {
        Words.decode(r)
    }

    fn key(&self, word: &String) -> String {
        word.clone()
    }

    fn fold(
        &self, word: &String, events: &[Sequenced<String>], now: DateTime<Utc>,
    ) -> Option<StateDelta> {
        Words.fold(word, events, now)
    }

    fn emit(&self, word: &String, stored: &StoredState, _: DateTime<Utc>) -> Emit {
        let record = ports::OutRecord {
            partition_key: word.clone(),
            data: format!(
                r#"{{"word":"{word}","count":{}}}"#,
                stored.counters["count"]
            )
            .into_bytes(),
        };
        Emit {
            outputs: vec![Output::state(format!("counts:{word}"), record)],
            prune: Vec::new(),
        }
    }
}

#[tokio::test]
async fn a_batch_delivered_again_after_it_completed_publishes_nothing_again() {
    let batch = records(&["a", "b", "a", "c"]);
    let (store, publisher, dl) = memory_ports();
    let engine = Engine::new(Counts, &store, &publisher, &dl).with_completion_marks(true);
    let first = engine.run(&batch, now()).await;
    assert_eq!((first.published, first.retry_from), (3, None));
    let again = engine.run(&batch, now()).await;
    assert_eq!((again.published, again.published_before), (0, 4));
    // A replay in other batches: the first two records again, then two new ones.
    let mut more = records(&["a", "b", "a", "c", "b", "d"]);
    let replayed = engine.run(&more[..2], now()).await;
    assert_eq!(replayed.published, 0);
    let fresh = engine.run(&more.split_off(2), now()).await;
    assert_eq!(
        (fresh.published, fresh.published_before),
        (2, 2),
        "b and d changed; the a and c already out are not sent again"
    );
    let counts: Vec<_> = publisher
        .json()
        .iter()
        .map(|v| v["count"].clone())
        .collect();
    assert_eq!(counts, [2, 1, 1, 2, 1].map(serde_json::Value::from));
    assert_eq!(store.item("counts#a").unwrap().counters["count"], 2);
}

#[tokio::test]
async fn a_batch_whose_publish_failed_publishes_again_when_delivered_again() {
    for marks in [true, false] {
        let batch = records(&["a", "b"]);
        let (store, publisher, dl) = memory_ports();
        let engine = Engine::new(Counts, &store, &publisher, &dl).with_completion_marks(marks);
        publisher.failures_left.store(usize::MAX, Ordering::SeqCst);
        let crashed = engine.run(&batch, now()).await;
        assert!(crashed.retry_from.is_some(), "the publish failed");
        publisher.failures_left.store(0, Ordering::SeqCst);
        assert_eq!(store.item("counts#a").unwrap().counters["count"], 1);
        let again = engine.run(&batch, now()).await;
        assert_eq!(
            (again.published, again.retry_from),
            (2, None),
            "marks {marks}: the state as stored, sent now"
        );
        let once_more = engine.run(&batch, now()).await;
        assert_eq!(
            once_more.published,
            if marks { 0 } else { 2 },
            "marks {marks}"
        );
    }
}

#[tokio::test]
async fn an_item_created_mid_stream_takes_the_older_records_from_a_replay_once() {
    let all = records(&["a", "b", "a", "a", "b", "a", "c"]);
    let (store, publisher, dl) = memory_ports();
    let engine = Engine::new(Counts, &store, &publisher, &dl).with_completion_marks(true);
    // The consumer starts late: it sees the stream from the fourth record on.
    engine.run(&all[3..], now()).await;
    assert_eq!(store.item("counts#a").unwrap().counters["count"], 2);
    // A replay of everything, in batches of two, twice (a retried replay changes nothing).
    for _ in 0..2 {
        for batch in all.chunks(2) {
            let report = engine.run(batch, now()).await;
            assert_eq!(report.retry_from, None);
        }
    }
    let count = |w: &str| store.item(&format!("counts#{w}")).unwrap().counters["count"];
    assert_eq!((count("a"), count("b"), count("c")), (4, 2, 1));
    let last = |w: &str| {
        let published = publisher.json();
        let mine: Vec<_> = published.iter().filter(|v| v["word"] == w).collect();
        mine.last().unwrap()["count"].clone()
    };
    assert_eq!(last("a"), 4, "the newest output holds every record");
}
