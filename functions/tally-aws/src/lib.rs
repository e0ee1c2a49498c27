//! AWS adapters of tally: DynamoDB, Kinesis and S3 implementations of the engine's and the
//! pipelines' ports, the conversion of Lambda's Kinesis events, configuration from the
//! environment, telemetry, and the runners every Kinesis- or SQS-triggered function uses.

#[cfg(feature = "apps")]
pub mod apps_table;
pub mod config;
pub mod dead_letters;
pub mod errors;
pub mod firehose_transform;
#[cfg(feature = "http")]
pub mod http;
pub mod kinesis_event;
pub mod objects;
pub mod publisher;
pub mod results_table;
pub mod runner;
pub mod s3_events;
pub mod state_store;
pub mod table;
pub mod telemetry;

#[cfg(feature = "apps")]
pub use apps_table::{app_id_for, new_app_key, AppKey, DynamoAppKeys, DynamoSealKeys};
pub use aws_config::SdkConfig;
pub use config::{aggregation, sdk_config, ConfigError, Env};
pub use dead_letters::S3DeadLetters;
pub use lambda_runtime::Error;
pub use objects::S3Objects;
pub use publisher::KinesisPublisher;
pub use results_table::DynamoResultsTable;
pub use runner::{aws_engine, publisher, s3_dead_letters, state_store, AwsEngine, KinesisFunction};
pub use runner::{run_kinesis, run_queue};
pub use runner::{QueueFunction, QueueHandler, QueueMessage};
pub use state_store::DynamoStateStore;
pub use table::DynamoTable;
