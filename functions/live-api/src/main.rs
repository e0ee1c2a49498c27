#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    tally_aws::http::run_http(live_api::LiveApi::from_env).await
}
