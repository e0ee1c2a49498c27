use gender_api::GenderApi;
use lambda_http::{run, service_fn, Error, Request};
use tally_aws::{sdk_config, Env};

#[tokio::main]
async fn main() -> Result<(), Error> {
    tally_aws::telemetry::init_tracing();
    let api = GenderApi::from_env(&sdk_config().await, &Env::process())?;
    let api = &api;
    run(service_fn(move |request: Request| async move {
        api.handle(request).await
    }))
    .await
}
