//! AWS adapters of tally: DynamoDB, Kinesis and S3 implementations of the engine's and the
//! pipelines' ports, the conversion of Lambda's Kinesis events, configuration from the
//! environment, telemetry, and the one runner every Kinesis-triggered function uses.

pub mod config;
pub mod dead_letters;
pub mod errors;
pub mod kinesis_event;
pub mod publisher;
pub mod results_table;
pub mod runner;
pub mod state_store;
pub mod telemetry;

pub use aws_config::SdkConfig;
pub use config::{aggregation, sdk_config, ConfigError, Env};
pub use dead_letters::S3DeadLetters;
pub use lambda_runtime::Error;
pub use publisher::KinesisPublisher;
pub use results_table::DynamoResultsTable;
pub use runner::{aws_engine, run_kinesis, s3_dead_letters, AwsEngine, KinesisFunction};
pub use state_store::DynamoStateStore;
