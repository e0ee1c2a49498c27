//! A gender model Lambda: `VisitsStream` -> model state -> `GenderResultsStream`.
//! Which model it runs comes from the `MODEL` environment variable; the dispatch is shared.

use aws_config::SdkConfig;
use aws_lambda_events::event::streams::KinesisEventResponse;
use lambda_runtime::{Error, LambdaEvent};
use tally_aws::config::s3_client;
use tally_aws::kinesis_event::KinesisEvent;
use tally_aws::kinesis_event::{batch_response, stream_records};
use tally_aws::telemetry::emit_metrics;
use tally_aws::{DynamoStateStore, Env, KinesisPublisher, S3DeadLetters};
use tally_core::ports::{DeadLetterSink, RecordPublisher, StateStore};
use tally_core::{model_by_name, Aggregation, GenderModel, ModelDispatch};

/// What the handler needs, built once per execution environment.
pub struct ModelFunction<S, P, D> {
    pub model: Box<dyn GenderModel>,
    pub store: S,
    pub publisher: P,
    pub dead_letters: D,
    pub aggregation: Aggregation,
}

pub type AwsModelFunction = ModelFunction<DynamoStateStore, KinesisPublisher, S3DeadLetters>;

impl AwsModelFunction {
    /// Reads `MODEL`, `WINDOW_DAYS`, `STATE_TABLE`, `RESULTS_STREAM`, `DEAD_LETTER_BUCKET`,
    /// `DEAD_LETTER_PREFIX` and `AGGREGATION` (`per-key`, the default, or `per-record`).
    pub fn from_env(config: &SdkConfig, env: &Env) -> Result<Self, Error> {
        let aggregation = tally_aws::config::aggregation(env)?;
        Ok(ModelFunction {
            model: model_by_name(&env.var("MODEL")?, env.model_settings()?)?,
            store: DynamoStateStore::new(
                aws_sdk_dynamodb::Client::new(config),
                env.var("STATE_TABLE")?,
            ),
            publisher: KinesisPublisher::new(
                aws_sdk_kinesis::Client::new(config),
                env.var("RESULTS_STREAM")?,
            ),
            dead_letters: S3DeadLetters::new(
                s3_client(config),
                env.var("DEAD_LETTER_BUCKET")?,
                env.var("DEAD_LETTER_PREFIX")?,
            ),
            aggregation,
        })
    }
}

impl<S: StateStore, P: RecordPublisher, D: DeadLetterSink> ModelFunction<S, P, D> {
    pub async fn handle(
        &self,
        event: LambdaEvent<KinesisEvent>,
    ) -> Result<KinesisEventResponse, Error> {
        let records = stream_records(&event.payload)?;
        let mut dispatch = ModelDispatch::new(
            self.model.as_ref(),
            &self.store,
            &self.publisher,
            &self.dead_letters,
        );
        dispatch.aggregation = self.aggregation;
        let report = dispatch.run(&records, chrono::Utc::now()).await;
        emit_metrics(self.model.name(), &report);
        Ok(batch_response(&report))
    }
}
