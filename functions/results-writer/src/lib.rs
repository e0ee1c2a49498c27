//! The results writer Lambda: `GenderResultsStream` -> results table, newest revision per `_id`.

use aws_config::SdkConfig;
use aws_lambda_events::event::streams::KinesisEventResponse;
use lambda_runtime::{Error, LambdaEvent};
use tally_aws::config::s3_client;
use tally_aws::kinesis_event::KinesisEvent;
use tally_aws::kinesis_event::{batch_response, stream_records};
use tally_aws::telemetry::emit_metrics;
use tally_aws::{DynamoResultsTable, Env, S3DeadLetters};
use tally_core::ports::{DeadLetterSink, ResultsUpsert};
use tally_core::results_writer::{write_results, SOURCE};
use tally_core::Aggregation;

pub struct ResultsWriterFunction<U, D> {
    pub table: U,
    pub dead_letters: D,
    pub aggregation: Aggregation,
}

impl ResultsWriterFunction<DynamoResultsTable, S3DeadLetters> {
    /// Reads `RESULTS_TABLE`, `DEAD_LETTER_BUCKET`, `DEAD_LETTER_PREFIX` and `AGGREGATION`.
    pub fn from_env(config: &SdkConfig, env: &Env) -> Result<Self, Error> {
        Ok(ResultsWriterFunction {
            table: DynamoResultsTable::new(
                aws_sdk_dynamodb::Client::new(config),
                env.var("RESULTS_TABLE")?,
            ),
            dead_letters: S3DeadLetters::new(
                s3_client(config),
                env.var("DEAD_LETTER_BUCKET")?,
                env.var("DEAD_LETTER_PREFIX")?,
            ),
            aggregation: tally_aws::config::aggregation(env)?,
        })
    }
}

impl<U: ResultsUpsert, D: DeadLetterSink> ResultsWriterFunction<U, D> {
    pub async fn handle(
        &self,
        event: LambdaEvent<KinesisEvent>,
    ) -> Result<KinesisEventResponse, Error> {
        let records = stream_records(&event.payload)?;
        let report =
            write_results(&self.table, &self.dead_letters, &records, self.aggregation).await;
        emit_metrics(SOURCE, &report);
        Ok(batch_response(&report))
    }
}
