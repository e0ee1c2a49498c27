//! The results writer Lambda: `GenderResultsStream` -> the results table, newest revision per `_id`.

use tally_aws::{aggregation, s3_dead_letters, DynamoResultsTable, S3DeadLetters};
use tally_aws::{Env, Error, KinesisFunction, SdkConfig};
use tally_pipelines::gender::ResultsWriter;

pub type ResultsWriterFunction = KinesisFunction<ResultsWriter<DynamoResultsTable, S3DeadLetters>>;

/// Reads `RESULTS_TABLE`, `DEAD_LETTER_BUCKET`, `DEAD_LETTER_PREFIX` and `AGGREGATION`.
pub fn from_env(config: &SdkConfig, env: &Env) -> Result<ResultsWriterFunction, Error> {
    Ok(KinesisFunction::new(ResultsWriter {
        table: DynamoResultsTable::from_env(config, env)?,
        dead_letters: s3_dead_letters(config, env)?,
        aggregation: aggregation(env)?,
    }))
}
