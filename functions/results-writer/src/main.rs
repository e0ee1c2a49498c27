use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use results_writer::ResultsWriterFunction;
use tally_aws::config::{env_var, s3_client, sdk_config};
use tally_aws::{DynamoResultsTable, S3DeadLetters};

#[tokio::main]
async fn main() -> Result<(), Error> {
    tally_aws::telemetry::init_tracing();
    let config = sdk_config().await;
    let function = ResultsWriterFunction {
        table: DynamoResultsTable::new(aws_sdk_dynamodb::Client::new(&config), env_var("RESULTS_TABLE")?),
        dead_letters: S3DeadLetters::new(s3_client(&config), env_var("DEAD_LETTER_BUCKET")?, env_var("DEAD_LETTER_PREFIX")?),
    };
    let function = &function;
    run(service_fn(move |event: LambdaEvent<_>| async move { function.handle(event).await })).await
}
