use gender_api::GenderApi;
use lambda_http::{run, service_fn, Error, Request};
use tally_aws::config::{env_var, model_settings, sdk_config};
use tally_aws::DynamoResultsTable;

#[tokio::main]
async fn main() -> Result<(), Error> {
    tally_aws::telemetry::init_tracing();
    let config = sdk_config().await;
    let api = GenderApi {
        lookup: DynamoResultsTable::new(aws_sdk_dynamodb::Client::new(&config), env_var("RESULTS_TABLE")?),
        settings: model_settings()?,
    };
    let api = &api;
    run(service_fn(move |request: Request| async move { api.handle(request).await })).await
}
