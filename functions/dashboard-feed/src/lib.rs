//! The dashboard feed Lambda: `GenderResultsStream` and the three alert streams -> the answers
//! and alerts of each minute, for the dashboard's panels (`tally_pipelines::dashboard`).

use tally_aws::{aggregation, s3_dead_letters, state_store, DynamoStateStore, S3DeadLetters};
use tally_aws::{Env, Error, KinesisFunction, SdkConfig};
use tally_engine::ports::NoOutputStream;
use tally_engine::Engine;
use tally_pipelines::dashboard::FeedConsumer;

pub type DashboardFeedFunction =
    KinesisFunction<Engine<FeedConsumer, DynamoStateStore, NoOutputStream, S3DeadLetters>>;

/// Reads `STATE_TABLE`, `DEAD_LETTER_BUCKET`, `DEAD_LETTER_PREFIX` and `AGGREGATION`.
pub fn from_env(config: &SdkConfig, env: &Env) -> Result<DashboardFeedFunction, Error> {
    let engine = Engine::new(
        FeedConsumer,
        state_store(config, env)?,
        NoOutputStream,
        s3_dead_letters(config, env)?,
    );
    Ok(KinesisFunction::new(
        engine.with_aggregation(aggregation(env)?),
    ))
}
