#[tokio::main]
async fn main() -> Result<(), tally_aws::Error> {
    tally_aws::run_kinesis(results_writer::from_env).await
}
