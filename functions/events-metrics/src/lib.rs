//! The live events metrics Lambda: `EventsStream` -> event ids seen and minute buckets per app and
//! event type in the state table. Invalid events become dead letters (and so typed rows of the
//! lake's `bad_records`); each batch's counts per type are in its metrics line (`Counted.<type>`).

use tally_aws::{aggregation, s3_dead_letters, state_store};
use tally_aws::{DynamoSealKeys, DynamoStateStore, S3DeadLetters};
use tally_aws::{Env, Error, KinesisFunction, SdkConfig};
use tally_events::{EventsMetrics, EventsMetricsHandler};

pub type EventsMetricsFunction =
    KinesisFunction<EventsMetricsHandler<DynamoStateStore, S3DeadLetters, DynamoSealKeys>>;

/// Reads `STATE_TABLE`, `DEAD_LETTER_BUCKET`, `DEAD_LETTER_PREFIX`, `AGGREGATION`,
/// `DEDUPE_SECONDS` (how long an event id is remembered) and `APPS_TABLE` (the ingest seal's key).
pub fn from_env(config: &SdkConfig, env: &Env) -> Result<EventsMetricsFunction, Error> {
    let mut handler = EventsMetrics::handler(
        state_store(config, env)?,
        s3_dead_letters(config, env)?,
        DynamoSealKeys::from_env(config, env)?,
    );
    handler.aggregation = aggregation(env)?;
    handler.consumer.dedupe_seconds = env.parse_at_least("DEDUPE_SECONDS", 7 * 86_400, 60)?.into();
    Ok(KinesisFunction::new(handler))
}
