#[tokio::main]
async fn main() -> Result<(), tally_aws::Error> {
    tally_aws::run_kinesis(events_metrics::from_env).await
}
