//! A gender model Lambda: `VisitsStream` -> model state -> `GenderResultsStream`.
//! Which model it runs comes from the `MODEL` environment variable; the dispatch is shared.

use aws_lambda_events::event::kinesis::KinesisEvent;
use aws_lambda_events::event::streams::KinesisEventResponse;
use lambda_runtime::{Error, LambdaEvent};
use tally_aws::kinesis_event::{batch_response, stream_records};
use tally_aws::telemetry::emit_metrics;
use tally_core::ports::{DeadLetterSink, ModelStateStore, ResultPublisher};
use tally_core::{Aggregation, GenderModel, ModelDispatch};

/// What the handler needs, built once per execution environment.
pub struct ModelFunction<S, P, D> {
    pub model: Box<dyn GenderModel>,
    pub store: S,
    pub publisher: P,
    pub dead_letters: D,
    pub aggregation: Aggregation,
}

impl<S: ModelStateStore, P: ResultPublisher, D: DeadLetterSink> ModelFunction<S, P, D> {
    pub async fn handle(&self, event: LambdaEvent<KinesisEvent>) -> Result<KinesisEventResponse, Error> {
        let records = stream_records(&event.payload)?;
        let mut dispatch = ModelDispatch::new(self.model.as_ref(), &self.store, &self.publisher, &self.dead_letters);
        dispatch.aggregation = self.aggregation;
        let report = dispatch.run(&records, chrono::Utc::now()).await;
        emit_metrics(self.model.name(), &report);
        Ok(batch_response(&report))
    }
}
