//! `tally replay STREAM [--since DAY] [--until DAY] [--function LOGICAL_ID]`: the archived records
//! of a stream delivered again to its consumers as Lambda delivers them: per shard, in sequence
//! order, with their original shard ids and sequence numbers (the archive keeps them:
//! `tally_engine::archive`), in batches of each mapping's size, through its filters, by Lambda
//! `Invoke` (locally the edge's). A consumer that applied a record already changes nothing (its
//! state keeps each shard's last applied sequence number); one that never saw it (a model added
//! later) applies it once.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{bail, Context as _, Result};
use chrono::NaiveDate;

use crate::Context;
use tally_aws::S3Objects;
use tally_cloud::esm::event::{kinesis_event, payload_bytes, PAYLOAD_LIMIT};
use tally_cloud::esm::filters::{filter_view, pattern_matches};
use tally_cloud::esm::spec::MappingSpec;
use tally_cloud::kinesis::ShardRecord;
use tally_engine::ports::ObjectStore;
use tally_engine::SequenceNumber;
use tally_stack::template::Template;

#[derive(clap::Args)]
pub struct Args {
    /// The stream whose archive to replay (logical id): VisitsStream, InteractionsStream, ...
    pub stream: String,
    /// The first archive day (UTC arrival day), default the first there is.
    #[arg(long, value_name = "YYYY-MM-DD")]
    pub since: Option<NaiveDate>,
    /// The last archive day, default the last there is.
    #[arg(long, value_name = "YYYY-MM-DD")]
    pub until: Option<NaiveDate>,
    /// Only this consumer (logical id), e.g. a model added after the records came.
    #[arg(long, value_name = "LOGICAL_ID")]
    pub function: Option<String>,
}

/// How often a batch is tried again (its failed part, as Lambda retries from the first failed
/// record) before replay stops.
const ATTEMPTS: usize = 5;

/// The folder of `stream`'s archive (`raw/visits/`, `raw/events/`): the prefix of the delivery
/// stream that reads it, up to its first variable part.
pub(crate) fn archive_folder(template: &Template, stream: &str) -> Result<String> {
    let name = template.physical_name(stream);
    for d in template.of_kind("AWS::KinesisFirehose::DeliveryStream") {
        let Ok(spec) = tally_cloud::firehose::DeliverySpec::from_template(template, d) else {
            continue;
        };
        if spec.stream_name != name {
            continue;
        }
        let fixed = spec.prefix.split("!{").next().unwrap_or_default();
        let folder = fixed[..fixed.rfind('/').map_or(0, |i| i + 1)].trim_end_matches("dt=");
        if folder.starts_with("raw/") {
            return Ok(folder.to_string());
        }
    }
    bail!("{stream} is not archived: no delivery stream of the template reads it")
}

/// The `dt=` day of an archived object's key.
fn day_of(key: &str) -> Option<NaiveDate> {
    key.split('/')
        .find_map(|part| part.strip_prefix("dt="))
        .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
}

/// A record's sequence number as the engine orders them (by value, not as text).
pub(crate) fn sequence_of(r: &ShardRecord) -> Option<SequenceNumber> {
    SequenceNumber::parse(&r.sequence_number).ok()
}

/// The records of the archived objects, each once (Firehose may archive one twice), per shard
/// in sequence order; and how many lines had no origin (archived before origins were kept).
fn records_of(
    objects: Vec<(String, Vec<u8>)>,
) -> Result<(BTreeMap<String, Vec<ShardRecord>>, usize)> {
    let mut seen = BTreeSet::new();
    let mut shards: BTreeMap<String, Vec<ShardRecord>> = BTreeMap::new();
    let mut without_origin = 0;
    for (key, body) in objects {
        // The lake's own reading of an archived object: gunzipped, each line's origin taken off.
        for line in tally_lake::raw::lines(&key, &body)?
            .into_iter()
            .filter(|l| !l.data.is_empty())
        {
            let Some(origin) = line.origin else {
                without_origin += 1;
                continue;
            };
            if !seen.insert((origin.shard_id.clone(), origin.sequence_number.clone())) {
                continue;
            }
            shards
                .entry(origin.shard_id.clone())
                .or_default()
                .push(ShardRecord {
                    data: origin.record_data(&line.data),
                    shard_id: origin.shard_id,
                    sequence_number: origin.sequence_number,
                    partition_key: origin.partition_key,
                    arrival: origin.arrival_ms as f64 / 1e3,
                });
        }
    }
    for records in shards.values_mut() {
        records.sort_by_key(sequence_of);
    }
    Ok((shards, without_origin))
}

/// The records archived under `folder` on the days from `since` to `until` (each open when
/// absent), each once, per shard in sequence order; and how many lines had no origin.
pub(crate) async fn archived_records(
    archive: &S3Objects, folder: &str, since: Option<NaiveDate>, until: Option<NaiveDate>,
) -> Result<(BTreeMap<String, Vec<ShardRecord>>, usize)> {
    let keys: Vec<String> = archive
        .list(folder)
        .await
        .with_context(|| format!("listing {folder} of the archive"))?
        .into_iter()
        .map(|o| o.key)
        .filter(|key| {
            key.ends_with(".gz")
                && day_of(key)
                    .is_some_and(|d| since.is_none_or(|s| d >= s) && until.is_none_or(|u| d <= u))
        })
        .collect();
    let reading = indicatif::ProgressBar::new(keys.len() as u64).with_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} archived objects read")
            .expect("a valid template"),
    );
    let mut objects = Vec::new();
    for key in keys {
        let body = archive
            .get(&key)
            .await
            .with_context(|| format!("reading {key} of the archive"))?
            .unwrap_or_default();
        objects.push((key, body));
        reading.inc(1);
    }
    reading.finish_and_clear();
    records_of(objects)
}

/// Whether a mapping's filters let `record` through (no filters: every record).
pub(crate) fn passes(mapping: &MappingSpec, record: &ShardRecord) -> bool {
    mapping.filters.is_empty()
        || mapping
            .filters
            .iter()
            .any(|p| pattern_matches(p, &filter_view(record)))
}

/// `records` in the batches the mapping would make: its size, under the payload limit.
pub(crate) fn batches<'a>(
    mapping: &MappingSpec, stream_arn: &str, records: &'a [ShardRecord],
) -> Vec<&'a [ShardRecord]> {
    let mut out = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, r) in records.iter().enumerate() {
        let size = payload_bytes(stream_arn, r);
        if i > start && (i - start >= mapping.batch_size || bytes + size > PAYLOAD_LIMIT) {
            out.push(&records[start..i]);
            (start, bytes) = (i, 0);
        }
        bytes += size;
    }
    if start < records.len() {
        out.push(&records[start..]);
    }
    out
}

/// One batch through the function, as Lambda delivers it: what a partial batch response asks
/// for again is sent again, from the first failed record.
pub(crate) async fn deliver(
    lambda: &aws_sdk_lambda::Client, function: &str, stream_arn: &str, mut batch: &[ShardRecord],
) -> Result<()> {
    for _ in 0..ATTEMPTS {
        let event = serde_json::to_vec(&kinesis_event(stream_arn, batch))?;
        let (payload, failed) = crate::invoke::invoke_payload(lambda, function, event).await?;
        if let Some(kind) = failed {
            eprintln!(
                "{function} failed ({kind}): {}; trying the batch again",
                String::from_utf8_lossy(&payload)
            );
            continue;
        }
        let answer: serde_json::Value = serde_json::from_slice(&payload).unwrap_or_default();
        let failed: Vec<&str> = answer["batchItemFailures"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|f| f["itemIdentifier"].as_str())
            .collect();
        let Some(first) = batch
            .iter()
            .position(|r| failed.contains(&r.sequence_number.as_str()))
        else {
            return Ok(());
        };
        batch = &batch[first..];
    }
    bail!(
        "{function} kept failing a batch of {} from {} {}: fix it and replay again (what it applied stays applied once)",
        batch.len(),
        batch[0].shard_id,
        batch[0].sequence_number
    )
}

pub async fn run(args: Args, ctx: &Context) -> Result<()> {
    if let (Some(since), Some(until)) = (args.since, args.until) {
        if since > until {
            bail!("--since {since} is after --until {until}");
        }
    }
    let template = ctx.template()?;
    let folder = archive_folder(&template, &args.stream)?;
    let local_name = template.physical_name(&args.stream);
    let mut mappings: Vec<MappingSpec> = MappingSpec::all(&template)?
        .into_iter()
        .filter(|m| m.stream_name == local_name)
        .collect();
    if let Some(f) = &args.function {
        let consumers: Vec<String> = mappings.iter().map(|m| m.function.clone()).collect();
        mappings.retain(|m| &m.function == f);
        if mappings.is_empty() {
            bail!(
                "{f} does not read {}: its consumers are {}",
                args.stream,
                consumers.join(", ")
            );
        }
    }
    if mappings.is_empty() {
        bail!("no function reads {} in this template", args.stream);
    }
    // Locally, everything put before the call is archived first.
    if matches!(ctx.target, crate::Target::Local(_)) {
        super::sql::flushed_lake(ctx).await?;
    }
    let deployed = ctx.deployed().await?;
    let bucket = deployed
        .physical("ArchiveBucket", "AWS::S3::Bucket")?
        .to_string();
    let stream_name = deployed.physical(&args.stream, "AWS::Kinesis::Stream")?;
    let stream_arn = deployed.arn("kinesis", &format!("stream/{stream_name}"));
    let config = ctx.target.sdk_config().await;
    let archive = S3Objects::new(aws_sdk_s3::Client::new(&config), &bucket);
    let lambda = aws_sdk_lambda::Client::new(&config);

    let (shards, without_origin) =
        archived_records(&archive, &folder, args.since, args.until).await?;
    if without_origin > 0 {
        eprintln!("{without_origin} archived records have no shard and sequence number (archived before they were kept): not replayed");
    }
    let total: usize = mappings.len() * shards.values().map(Vec::len).sum::<usize>();
    let bar = indicatif::ProgressBar::new(total as u64).with_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} records {per_sec} {msg}")
            .expect("a valid template"),
    );
    let mut replayed = 0;
    for m in &mappings {
        let function = deployed.physical(&m.function, "AWS::Lambda::Function")?;
        bar.set_message(m.function.clone());
        for records in shards.values() {
            let kept: Vec<ShardRecord> = records.iter().filter(|r| passes(m, r)).cloned().collect();
            for batch in batches(m, &stream_arn, &kept) {
                deliver(&lambda, function, &stream_arn, batch).await?;
                replayed += batch.len();
            }
            bar.inc(records.len() as u64);
        }
    }
    bar.finish_and_clear();
    println!(
        "replayed {replayed} records to {} function{}",
        mappings.len(),
        if mappings.len() == 1 { "" } else { "s" }
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(shard: &str, seq: &str) -> ShardRecord {
        ShardRecord {
            shard_id: shard.into(),
            sequence_number: seq.into(),
            partition_key: "k".into(),
            data: b"{}".to_vec(),
            arrival: 0.0,
        }
    }

    #[test]
    fn sequence_numbers_order_as_numbers() {
        let mut r = [record("s", "100"), record("s", "99"), record("s", "1000")];
        r.sort_by_key(sequence_of);
        let seqs: Vec<&str> = r.iter().map(|r| r.sequence_number.as_str()).collect();
        assert_eq!(seqs, ["99", "100", "1000"]);
    }

    #[test]
    fn days_come_from_the_dt_partition() {
        assert_eq!(
            day_of("raw/events/event_type=click/dt=2026-11-22/x.gz"),
            NaiveDate::from_ymd_opt(2026, 11, 22)
        );
        assert_eq!(day_of("raw/visits/x.gz"), None);
    }
}
