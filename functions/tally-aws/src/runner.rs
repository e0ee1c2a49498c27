//! The one Kinesis Lambda runner. A stream function is a `from_env` that builds its handler from
//! the template's variables; [`run_kinesis`] builds it once per execution environment and serves
//! every invocation the same way: Lambda's event -> records -> handler -> metrics -> the partial
//! batch response.

use std::future::Future;

use aws_config::SdkConfig;
use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use aws_lambda_events::event::streams::KinesisEventResponse;
use lambda_runtime::{service_fn, Error, LambdaEvent};
use tally_engine::{BatchHandler, Consumer, Engine};

use crate::config::{aggregation, s3_client, sdk_config, ConfigError, Env};
use crate::kinesis_event::{batch_response, stream_records, KinesisEvent};
use crate::telemetry::{emit_metrics, init_tracing};
use crate::{DynamoStateStore, DynamoTable, KinesisPublisher, S3DeadLetters};

/// A Kinesis-triggered function around its batch handler.
pub struct KinesisFunction<H> {
    pub handler: H,
}

impl<H> KinesisFunction<H> {
    pub fn new(handler: H) -> Self {
        KinesisFunction { handler }
    }

    /// The same function with its handler changed (tests wrap ports to inject faults).
    pub fn map<H2>(self, change: impl FnOnce(H) -> H2) -> KinesisFunction<H2> {
        KinesisFunction::new(change(self.handler))
    }
}

impl<H: BatchHandler> KinesisFunction<H> {
    pub async fn handle(
        &self, event: LambdaEvent<KinesisEvent>,
    ) -> Result<KinesisEventResponse, Error> {
        let records = stream_records(&event.payload)?;
        let report = self.handler.handle(&records, chrono::Utc::now()).await;
        emit_metrics(self.handler.name(), &report);
        Ok(batch_response(&report))
    }
}

/// Runs a stream function: `from_env` once (clients, settings), then every invocation.
pub async fn run_kinesis<H: BatchHandler>(
    from_env: impl FnOnce(&SdkConfig, &Env) -> Result<KinesisFunction<H>, Error>,
) -> Result<(), Error> {
    init_tracing();
    let function = from_env(&sdk_config().await, &Env::process())?;
    let function = &function;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<KinesisEvent>| async move { function.handle(event).await },
    ))
    .await
}

/// One SQS message: its id and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueMessage {
    pub id: String,
    pub body: String,
}

/// Anything that handles a batch of SQS messages and says which to retry.
pub trait QueueHandler: Send + Sync {
    /// The function's name in metrics and logs.
    fn name(&self) -> &str;

    /// Handles the messages; returns the ids of those that must come again.
    fn handle(&self, messages: &[QueueMessage]) -> impl Future<Output = Vec<String>> + Send;
}

/// An SQS-triggered function around its handler: the messages it could not handle are reported
/// as partial batch failures (`ReportBatchItemFailures`) and come again; the rest are deleted.
pub struct QueueFunction<H> {
    pub handler: H,
}

impl<H: QueueHandler> QueueFunction<H> {
    pub fn new(handler: H) -> Self {
        QueueFunction { handler }
    }

    pub async fn handle(&self, event: LambdaEvent<SqsEvent>) -> Result<SqsBatchResponse, Error> {
        let messages: Vec<QueueMessage> = event
            .payload
            .records
            .into_iter()
            .map(|m| QueueMessage {
                id: m.message_id.unwrap_or_default(),
                body: m.body.unwrap_or_default(),
            })
            .collect();
        let mut response = SqsBatchResponse::default();
        for id in self.handler.handle(&messages).await {
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = id;
            response.batch_item_failures.push(failure);
        }
        Ok(response)
    }
}

/// Runs a queue function: `from_env` once, then every invocation.
pub async fn run_queue<H: QueueHandler>(
    from_env: impl FnOnce(&SdkConfig, &Env) -> Result<QueueFunction<H>, Error>,
) -> Result<(), Error> {
    init_tracing();
    let function = from_env(&sdk_config().await, &Env::process())?;
    let function = &function;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        function.handle(event).await
    }))
    .await
}

/// An engine with its AWS ports.
pub type AwsEngine<C> = Engine<C, DynamoStateStore, KinesisPublisher, S3DeadLetters>;

/// `consumer` on the engine with the ports every stream consumer's template block gives it:
/// `STATE_TABLE`, the output stream named by `output_stream` (`RESULTS_STREAM`, `ALERTS_STREAM`),
/// the dead letters, `AGGREGATION` and `PARALLELIZATION_FACTOR` (the mapping's, 1 when unset).
pub fn aws_engine<C: Consumer>(
    consumer: C, config: &SdkConfig, env: &Env, output_stream: &'static str,
) -> Result<AwsEngine<C>, ConfigError> {
    let engine = Engine::new(
        consumer,
        state_store(config, env)?,
        publisher(config, env, output_stream)?,
        s3_dead_letters(config, env)?,
    );
    // The mapping's factor: at 1 a shard's batches complete in order, which completion marks need.
    let factor = env.parse_at_least("PARALLELIZATION_FACTOR", 1, 1)?;
    Ok(engine
        .with_aggregation(aggregation(env)?)
        .with_completion_marks(factor == 1))
}

/// The state table: `STATE_TABLE`.
pub fn state_store(config: &SdkConfig, env: &Env) -> Result<DynamoStateStore, ConfigError> {
    DynamoTable::from_env(config, env, "STATE_TABLE").map(DynamoStateStore::on)
}

/// A publisher to the stream the variable `output_stream` names.
pub fn publisher(
    config: &SdkConfig, env: &Env, output_stream: &'static str,
) -> Result<KinesisPublisher, ConfigError> {
    Ok(KinesisPublisher::new(
        crate::config::kinesis_client(config),
        env.var(output_stream)?,
    ))
}

/// The dead-letter location: `DEAD_LETTER_BUCKET` under `DEAD_LETTER_PREFIX`.
pub fn s3_dead_letters(config: &SdkConfig, env: &Env) -> Result<S3DeadLetters, ConfigError> {
    Ok(S3DeadLetters::new(
        s3_client(config),
        env.var("DEAD_LETTER_BUCKET")?,
        env.var("DEAD_LETTER_PREFIX")?,
    ))
}
