// The lake reader's futures (S3, Parquet) nest deeper than the default limit allows.
#![recursion_limit = "256"]

use lambda_runtime::{service_fn, Error, LambdaEvent};
use tally_aws::{sdk_config, Env};

#[tokio::main]
async fn main() -> Result<(), Error> {
    tally_aws::telemetry::init_tracing();
    let function = vendor_opens::from_env(&sdk_config().await, &Env::process())?;
    let function = &function;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<vendor_opens::Request>| async move {
            let now = chrono::Utc::now();
            let day = event.payload.day.unwrap_or(now.date_naive());
            let answer = function.step.run(day, now).await?;
            // Where the dashboard reads it.
            function
                .answers
                .keep_answer(&tally_events::VENDOR_OPENS_ANSWER, &answer)
                .await?;
            tracing::info!(day = %answer.day, opens = answer.opens, "vendor opens kept");
            Ok::<vendor_opens::VendorOpens, Error>(answer)
        },
    ))
    .await
}
