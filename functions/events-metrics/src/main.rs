// The handler's future (seal key, first sightings, the engine's writes) nests deeper than the
// default limit when its layout is computed.
#![recursion_limit = "256"]

#[tokio::main]
async fn main() -> Result<(), tally_aws::Error> {
    tally_aws::run_kinesis(events_metrics::from_env).await
}
