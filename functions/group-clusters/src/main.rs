// The lake reader's futures (S3, Parquet) nest deeper than the default limit allows.
#![recursion_limit = "256"]

use lambda_runtime::{service_fn, Error, LambdaEvent};
use tally_aws::{sdk_config, Env};

#[tokio::main]
async fn main() -> Result<(), Error> {
    tally_aws::telemetry::init_tracing();
    let function = group_clusters::from_env(&sdk_config().await, &Env::process())?;
    let function = &function;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<group_clusters::Request>| async move {
            let report = function
                .step
                .run(&event.payload, chrono::Utc::now())
                .await?;
            // Where the dashboard reads it.
            function
                .dashboard
                .keep_answer(&tally_pipelines::rsvp::CLUSTERS_ANSWER, &report)
                .await?;
            if let Some(m) = &report.model {
                tracing::info!(
                    groups = report.groups,
                    accuracy = m.accuracy,
                    baseline = m.baseline_accuracy,
                    "clusters and model written"
                );
            }
            Ok::<group_clusters::Report, Error>(report)
        },
    ))
    .await
}
