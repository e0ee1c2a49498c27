//! Per-record CPU of the stream functions: decode, validate and aggregate one 500-record batch (the
//! template's batch size) of a skewed workload (Zipf s=1.1 over 10,000 keys), as the gender models
//! and the rules do before they write. `make bench` reads the estimates and divides by 500.

use std::hint::black_box;

use chrono::{TimeZone, Utc};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use tally_engine::grouping::group_by_key;
use tally_engine::testing::{kinesis_sequence, SeededRng, ZipfKeys};
use tally_engine::{Aggregation, Sequenced, StoredState, StreamRecord};
use tally_pipelines::gender::consumer::fold_change;
use tally_pipelines::gender::{model_by_name, Cid, GenderResult, ModelSettings, VisitDecoder};
use tally_pipelines::rules::{InteractionDecoder, Rule};

const BATCH: usize = 500;
const SHARD: &str = "shardId-000000000000";

/// Zipf(s = 1.1) ranks over 10,000 keys from a fixed-seed generator: the same batch every run.
fn zipf_ranks(n: usize) -> Vec<u64> {
    let keys = ZipfKeys::new(10_000, 1.1);
    let mut rng = SeededRng::new(0x9E37_79B9_7F4A_7C15);
    (0..n).map(|_| keys.rank(&mut rng)).collect()
}

fn batch(data: impl Fn(usize, u64) -> String) -> Vec<StreamRecord> {
    let arrival = Utc.with_ymd_and_hms(2026, 11, 22, 12, 0, 0).unwrap();
    zipf_ranks(BATCH)
        .into_iter()
        .enumerate()
        .map(|(i, rank)| StreamRecord {
            shard_id: SHARD.into(),
            sequence_number: kinesis_sequence(i as u64),
            partition_key: rank.to_string(),
            data: data(i, rank).into_bytes(),
            arrival,
        })
        .collect()
}

fn gender(c: &mut Criterion) {
    let records = batch(|i, rank| {
        let gndr = if i % 3 == 0 { "male" } else { "female" };
        format!(
            r#"{{"cid":"C{rank}","gndr":"{gndr}","ts":"2026-11-22T11:{:02}:00Z"}}"#,
            i % 60
        )
    });
    let now = Utc.with_ymd_and_hms(2026, 11, 22, 12, 0, 0).unwrap();
    let model = model_by_name("MODEL3", ModelSettings { window_days: 7 }).unwrap();
    let decoder = VisitDecoder::default();
    let mut group = c.benchmark_group("gender");
    group.throughput(Throughput::Elements(BATCH as u64));
    group.bench_function("decode_validate_aggregate_500", |b| {
        b.iter(|| {
            let spec = model.state_spec();
            let visits = black_box(&records).iter().filter_map(|r| {
                let v = decoder.decode(r).ok()?;
                Some((
                    r.shard_id.clone(),
                    v.cid.clone(),
                    Sequenced {
                        sequence_number: r.sequence_number.clone(),
                        value: v,
                    },
                ))
            });
            let mut results = 0;
            for key_batch in group_by_key(visits, Aggregation::PerKey) {
                let change = fold_change(&[spec], &key_batch.records, now);
                results += usize::from(change.is_some());
            }
            results
        })
    });
    group.finish();
    // The result a key's write leads to, encoded for the results stream: once per key, not record.
    let stored = StoredState::default();
    let cid = Cid::parse("C1").unwrap();
    c.bench_function("gender/encode_result_per_key", |b| {
        b.iter(|| {
            let result = GenderResult::from_state(model.as_ref(), black_box(&cid), &stored, now);
            serde_json::to_vec(&result).unwrap().len()
        })
    });
}

fn rules(c: &mut Criterion) {
    let records = batch(|i, rank| {
        format!(
            r#"{{"user_id":{rank},"property_id":{},"date":"2026-11-22 11:{:02}:00","event":"Interaction"}}"#,
            (rank * 7919) % 10_000,
            i % 60
        )
    });
    let rule = Rule::by_name("possible_broker", 10, 60, 86_400).unwrap();
    let decoder = InteractionDecoder::default();
    let mut group = c.benchmark_group("rules");
    group.throughput(Throughput::Elements(BATCH as u64));
    group.bench_function("decode_validate_aggregate_500", |b| {
        b.iter(|| {
            let events = black_box(&records).iter().filter_map(|r| {
                let i = decoder.decode(r).ok()?;
                let key = rule.key(&i);
                Some((
                    r.shard_id.clone(),
                    key,
                    Sequenced {
                        sequence_number: r.sequence_number.clone(),
                        value: i,
                    },
                ))
            });
            group_by_key(events, Aggregation::PerKey).len()
        })
    });
    group.finish();
}

criterion_group! {
    name = per_record;
    // Short runs: `make bench` has a 15-minute budget for every figure.
    config = Criterion::default()
        .warm_up_time(std::time::Duration::from_secs(1))
        .measurement_time(std::time::Duration::from_secs(3))
        .sample_size(30);
    targets = gender, rules
}
criterion_main!(per_record);
