#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    tally_aws::http::run_http(collect::CollectApi::from_env).await
}
