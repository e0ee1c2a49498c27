use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use rule_engine::AwsRuleFunction;
use tally_aws::{sdk_config, Env};

#[tokio::main]
async fn main() -> Result<(), Error> {
    tally_aws::telemetry::init_tracing();
    let function = AwsRuleFunction::from_env(&sdk_config().await, &Env::process())?;
    let function = &function;
    run(service_fn(move |event: LambdaEvent<_>| async move {
        function.handle(event).await
    }))
    .await
}
