//! The live RSVP statistics Lambda: `RsvpStream` -> RSVP versions, minute buckets and totals in the
//! state table -> one `RsvpStatsStream` record per batch that changed them.

use tally_aws::{aggregation, publisher, s3_dead_letters, state_store};
use tally_aws::{DynamoStateStore, KinesisPublisher, S3DeadLetters};
use tally_aws::{Env, Error, KinesisFunction, SdkConfig};
use tally_pipelines::rsvp::{RsvpStats, RsvpStatsHandler};

pub type RsvpStatsFunction =
    KinesisFunction<RsvpStatsHandler<DynamoStateStore, KinesisPublisher, S3DeadLetters>>;

/// Reads `STATE_TABLE`, `STATS_STREAM`, `DEAD_LETTER_BUCKET`, `DEAD_LETTER_PREFIX`, `AGGREGATION`
/// and `BUCKET_GRACE_SECONDS` (how long a minute bucket outlives the hour that can show it).
pub fn from_env(config: &SdkConfig, env: &Env) -> Result<RsvpStatsFunction, Error> {
    let mut handler = RsvpStats::handler(
        state_store(config, env)?,
        publisher(config, env, "STATS_STREAM")?,
        s3_dead_letters(config, env)?,
    );
    handler.aggregation = aggregation(env)?;
    // Its mapping keeps ParallelizationFactor 1 (its minute buckets rely on each shard's order).
    handler.completion_marks = true;
    handler.consumer.grace_seconds = env
        .parse_at_least("BUCKET_GRACE_SECONDS", 86_400, 0)?
        .into();
    Ok(KinesisFunction::new(handler))
}
