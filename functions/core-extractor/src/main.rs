// The lake reader's futures (S3, Parquet) nest deeper than the default limit allows.
#![recursion_limit = "256"]

use lambda_runtime::{service_fn, Error, LambdaEvent};
use tally_aws::{sdk_config, Env};

#[tokio::main]
async fn main() -> Result<(), Error> {
    tally_aws::telemetry::init_tracing();
    let function = core_extractor::function::from_env(&sdk_config().await, &Env::process())?;
    let function = &function;
    lambda_runtime::run(service_fn(
        move |_: LambdaEvent<serde_json::Value>| async move {
            let report = function.run(chrono::Utc::now()).await?;
            for t in &report.tables {
                tracing::info!(
                    table = t.table,
                    read = t.read,
                    versions = t.versions,
                    bad = t.bad,
                    "extracted"
                );
            }
            Ok::<core_extractor::function::Report, Error>(report)
        },
    ))
    .await
}
