//! Every archive's transformation but the events' (whose router stamps the same way): Firehose
//! shows a record's shard and sequence number only here, and replay needs them
//! (`tally_engine::archive`).

use lambda_runtime::{service_fn, Error, LambdaEvent};
use tally_aws::firehose_transform::{stamp_all, TransformationEvent, TransformationResponse};

#[tokio::main]
async fn main() -> Result<(), Error> {
    tally_aws::telemetry::init_tracing();
    lambda_runtime::run(service_fn(
        |event: LambdaEvent<TransformationEvent>| async move {
            Ok::<TransformationResponse, Error>(stamp_all(&event.payload))
        },
    ))
    .await
}
