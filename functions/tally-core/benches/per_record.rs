//! Per-record CPU of the stream functions: decode, validate and aggregate one 500-record batch (the
//! template's batch size) of a skewed workload (Zipf s=1.1 over 10,000 keys), as the gender models
//! and the rules do before they write. `make bench` reads the estimates and divides by 500.

use std::hint::black_box;

use chrono::{TimeZone, Utc};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use tally_core::dispatch::fold_change;
use tally_core::exactly_once::{group_by_key, Sequenced};
use tally_core::rules::{InteractionDecoder, Rule};
use tally_core::{model_by_name, Aggregation, ModelSettings, SequenceNumber, StreamRecord};
use tally_core::{GenderResult, VisitDecoder};

const BATCH: usize = 500;
const SHARD: &str = "shardId-000000000000";

/// Zipf(s = 1.1) ranks over 10,000 keys from a fixed-seed generator: the same batch every run.
fn zipf_ranks(n: usize) -> Vec<u64> {
    let weights: Vec<f64> = (1..=10_000).map(|k| (k as f64).powf(-1.1)).collect();
    let total: f64 = weights.iter().sum();
    let mut cumulative = Vec::with_capacity(weights.len());
    let mut acc = 0.0;
    for w in weights {
        acc += w / total;
        cumulative.push(acc);
    }
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..n)
        .map(|_| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let u = (state >> 11) as f64 / (1u64 << 53) as f64;
            cumulative.partition_point(|c| *c < u) as u64 + 1
        })
        .collect()
}

fn batch(data: impl Fn(usize, u64) -> String) -> Vec<StreamRecord> {
    let arrival = Utc.with_ymd_and_hms(2026, 11, 22, 12, 0, 0).unwrap();
    zipf_ranks(BATCH)
        .into_iter()
        .enumerate()
        .map(|(i, rank)| StreamRecord {
            shard_id: SHARD.into(),
            sequence_number: SequenceNumber::parse(&format!(
                "49590338271490256608559692538361571095921575989{i:09}"
            ))
            .unwrap(),
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
                let change = fold_change(&spec, &key_batch.shard_id, &key_batch.records, now);
                results += usize::from(change.is_some());
            }
            results
        })
    });
    group.finish();
    // The result a key's write leads to, encoded for the results stream: once per key, not record.
    let stored = tally_core::ports::StoredState::default();
    let cid = tally_core::Cid::parse("C1").unwrap();
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
