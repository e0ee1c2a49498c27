#[tokio::main]
async fn main() -> Result<(), tally_aws::Error> {
    tally_aws::run_kinesis(gender_model::from_env).await
}
