use lambda_runtime::{service_fn, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    tally_aws::telemetry::init_tracing();
    let router = events_router::EventsRouter::default();
    let router = &router;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<events_router::TransformationEvent>| async move {
            Ok::<_, lambda_runtime::Error>(router.transform(event.payload))
        },
    ))
    .await
}
