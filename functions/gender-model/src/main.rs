use gender_model::ModelFunction;
use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use tally_aws::config::{env_var, model_settings, s3_client, sdk_config};
use tally_aws::{DynamoStateStore, KinesisResultPublisher, S3DeadLetters};
use tally_core::{model_by_name, Aggregation};

#[tokio::main]
async fn main() -> Result<(), Error> {
    tally_aws::telemetry::init_tracing();
    let model = model_by_name(&env_var("MODEL")?, model_settings()?)?;
    let aggregation = match std::env::var("AGGREGATION").as_deref() {
        Ok("per-record") => Aggregation::PerRecord,
        _ => Aggregation::PerCid,
    };
    let config = sdk_config().await;
    let function = ModelFunction {
        model,
        store: DynamoStateStore::new(aws_sdk_dynamodb::Client::new(&config), env_var("STATE_TABLE")?),
        publisher: KinesisResultPublisher::new(aws_sdk_kinesis::Client::new(&config), env_var("RESULTS_STREAM")?),
        dead_letters: S3DeadLetters::new(s3_client(&config), env_var("DEAD_LETTER_BUCKET")?, env_var("DEAD_LETTER_PREFIX")?),
        aggregation,
    };
    let function = &function;
    run(service_fn(move |event: LambdaEvent<_>| async move { function.handle(event).await })).await
}
