#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    tally_aws::telemetry::init_tracing();
    let router = events_router::EventsRouter::from_env(
        &tally_aws::sdk_config().await,
        &tally_aws::Env::process(),
    )?;
    let router = &router;
    lambda_runtime::run(lambda_runtime::service_fn(
        move |event: lambda_runtime::LambdaEvent<events_router::TransformationEvent>| async move {
            Ok::<_, lambda_runtime::Error>(
                router.transform(event.payload, chrono::Utc::now()).await?,
            )
        },
    ))
    .await
}
