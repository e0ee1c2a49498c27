#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    tally_aws::http::run_http(gender_api::GenderApi::from_env).await
}
