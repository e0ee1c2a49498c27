#[tokio::main]
async fn main() -> Result<(), tally_aws::Error> {
    tally_aws::run_kinesis(example_views::from_env).await
}
