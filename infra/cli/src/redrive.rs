//! `tally redrive [--function LOGICAL_ID]`: the batches StreamFailureQueue describes (a stream
//! function failed them until its mapping gave up), delivered to their function again after a
//! fix: each batch's records read from the stream while it keeps them (24 hours), else from the
//! archive, and sent as Lambda sends them (`replay::deliver`). A record the function applied
//! before failing changes nothing; the others apply once. A batch's message is deleted once its
//! records are through, so redriving again finds nothing.

use anyhow::{anyhow, bail, Context as _, Result};
use serde::Deserialize;

use crate::replay::{archive_folder, archived_records, batches, deliver, passes, sequence_of};
use crate::Context;
use tally_aws::S3Objects;
use tally_cloud::esm::spec::MappingSpec;
use tally_cloud::kinesis::{ShardReader, ShardRecord, StartAt};
use tally_engine::SequenceNumber;

#[derive(clap::Args)]
pub struct Args {
    /// Only the batches of this function (logical id); the others stay on the queue.
    #[arg(long, value_name = "LOGICAL_ID")]
    pub function: Option<String>,
}

/// Lambda's on-failure record of a Kinesis batch (the fields a redrive needs).
#[derive(Debug, Deserialize)]
struct FailedBatch {
    #[serde(rename = "requestContext")]
    request: RequestContext,
    #[serde(rename = "KinesisBatchInfo")]
    batch: KinesisBatchInfo,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RequestContext {
    function_arn: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct KinesisBatchInfo {
    shard_id: String,
    start_sequence_number: String,
    end_sequence_number: String,
    #[serde(default)]
    approximate_arrival_of_first_record: Option<chrono::DateTime<chrono::Utc>>,
    #[serde(default)]
    approximate_arrival_of_last_record: Option<chrono::DateTime<chrono::Utc>>,
    stream_arn: String,
}

fn within(r: &ShardRecord, b: &KinesisBatchInfo) -> bool {
    let (seq, first, last) = (
        sequence_of(r),
        SequenceNumber::parse(&b.start_sequence_number).ok(),
        SequenceNumber::parse(&b.end_sequence_number).ok(),
    );
    r.shard_id == b.shard_id && seq.is_some() && seq >= first && seq <= last
}

/// The batch's records from the stream, when it still has the first of them.
async fn from_stream(
    kinesis: &aws_sdk_kinesis::Client, stream: &str, b: &KinesisBatchInfo,
) -> Option<Vec<ShardRecord>> {
    let mut reader = ShardReader::new(
        kinesis.clone(),
        stream,
        &b.shard_id,
        StartAt::AtSequenceNumber(b.start_sequence_number.clone()),
    );
    let mut out = Vec::new();
    loop {
        let page = reader.read(10_000).await.ok()?;
        let past_end = page.records.iter().any(|r| !within(r, b));
        out.extend(page.records.into_iter().filter(|r| within(r, b)));
        if past_end || page.at_end || reader.is_closed() {
            break;
        }
    }
    (out.first().map(|r| &r.sequence_number) == Some(&b.start_sequence_number)).then_some(out)
}

pub async fn run(args: Args, ctx: &Context) -> Result<()> {
    let template = ctx.template()?;
    let mappings = MappingSpec::all(&template)?;
    if let Some(f) = &args.function {
        if !mappings.iter().any(|m| &m.function == f) {
            bail!("{f} reads no stream: nothing of it is on StreamFailureQueue");
        }
    }
    if matches!(ctx.target, crate::Target::Local(_)) {
        super::sql::flushed_lake(ctx).await?;
    }
    let deployed = ctx.deployed().await?;
    let queue = deployed
        .physical("StreamFailureQueue", "AWS::SQS::Queue")?
        .to_string();
    let bucket = deployed
        .physical("ArchiveBucket", "AWS::S3::Bucket")?
        .to_string();
    let config = ctx.target.sdk_config().await;
    let (sqs, kinesis) = (
        aws_sdk_sqs::Client::new(&config),
        aws_sdk_kinesis::Client::new(&config),
    );
    let archive = S3Objects::new(aws_sdk_s3::Client::new(&config), &bucket);
    let lambda = aws_sdk_lambda::Client::new(&config);
    let logical_of = |kind: &str, physical: &str| {
        deployed
            .resources
            .iter()
            .find(|(_, (k, p))| k == kind && p == physical)
            .map(|(id, _)| id.clone())
    };
    let bar = indicatif::ProgressBar::new_spinner();
    let (mut redriven, mut records, mut skipped) = (0, 0, 0);
    loop {
        let received = sqs
            .receive_message()
            .queue_url(&queue)
            .max_number_of_messages(10)
            .visibility_timeout(300)
            .wait_time_seconds(1)
            .send()
            .await
            .context("reading StreamFailureQueue")?;
        if received.messages().is_empty() {
            break;
        }
        for message in received.messages() {
            let body = message.body().unwrap_or_default();
            let failed: FailedBatch = serde_json::from_str(body).with_context(|| {
                format!("not a failed Kinesis batch on StreamFailureQueue: {body}")
            })?;
            let b = &failed.batch;
            let name = failed
                .request
                .function_arn
                .rsplit(':')
                .next()
                .unwrap_or_default();
            let function = logical_of("AWS::Lambda::Function", name).ok_or_else(|| {
                anyhow!(
                    "{name} (a failed batch's function) is not in stack {}",
                    deployed.name
                )
            })?;
            let stream_name = b.stream_arn.rsplit('/').next().unwrap_or_default();
            let stream = logical_of("AWS::Kinesis::Stream", stream_name).ok_or_else(|| {
                anyhow!(
                    "{stream_name} (a failed batch's stream) is not in stack {}",
                    deployed.name
                )
            })?;
            if args.function.as_ref().is_some_and(|f| f != &function) {
                // Someone else's: back on the queue at once.
                sqs.change_message_visibility()
                    .queue_url(&queue)
                    .receipt_handle(message.receipt_handle().unwrap_or_default())
                    .visibility_timeout(0)
                    .send()
                    .await
                    .context("returning a message to StreamFailureQueue")?;
                skipped += 1;
                continue;
            }
            let mapping = mappings
                .iter()
                .find(|m| {
                    m.function == function && m.stream_name == template.physical_name(&stream)
                })
                .ok_or_else(|| {
                    anyhow!("{function} has no mapping from {stream} in template.yaml")
                })?;
            bar.set_message(format!(
                "{function}: {} from {}",
                b.shard_id, b.start_sequence_number
            ));
            let batch = match from_stream(&kinesis, stream_name, b).await {
                Some(batch) => batch,
                None => {
                    // Past the stream's retention: from the archive of the days it arrived.
                    let day = |t: Option<chrono::DateTime<chrono::Utc>>| t.map(|t| t.date_naive());
                    let folder = archive_folder(&template, &stream)?;
                    let (shards, _) = archived_records(
                        &archive,
                        &folder,
                        day(b.approximate_arrival_of_first_record),
                        day(b.approximate_arrival_of_last_record).map(|d| d + chrono::Days::new(1)),
                    )
                    .await?;
                    let mut batch: Vec<ShardRecord> = shards
                        .into_values()
                        .flatten()
                        .filter(|r| within(r, b))
                        .collect();
                    batch.sort_by_key(sequence_of);
                    if batch.is_empty() {
                        bail!(
                            "the records of {function}'s failed batch ({} {}..{}) are neither on {stream} nor in the archive",
                            b.shard_id, b.start_sequence_number, b.end_sequence_number
                        );
                    }
                    batch
                }
            };
            let kept: Vec<ShardRecord> = batch.into_iter().filter(|r| passes(mapping, r)).collect();
            let stream_arn = &b.stream_arn;
            let physical = deployed.physical(&function, "AWS::Lambda::Function")?;
            for part in batches(mapping, stream_arn, &kept) {
                deliver(&lambda, physical, stream_arn, part).await?;
            }
            sqs.delete_message()
                .queue_url(&queue)
                .receipt_handle(message.receipt_handle().unwrap_or_default())
                .send()
                .await
                .context("deleting a redriven batch from StreamFailureQueue")?;
            redriven += 1;
            records += kept.len();
            bar.tick();
        }
    }
    bar.finish_and_clear();
    println!(
        "redrove {redriven} batch{} ({records} records){}",
        if redriven == 1 { "" } else { "es" },
        if skipped > 0 {
            format!("; {skipped} of other functions left on the queue")
        } else {
            String::new()
        }
    );
    Ok(())
}
