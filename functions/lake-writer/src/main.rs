// The converter's futures (S3, Parquet, merges) nest deeper than the default limit allows.
#![recursion_limit = "256"]

#[tokio::main]
async fn main() -> Result<(), tally_aws::Error> {
    tally_aws::run_queue(lake_writer::from_env).await
}
