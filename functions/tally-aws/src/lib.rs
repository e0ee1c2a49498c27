//! AWS adapters of tally: DynamoDB, Kinesis and S3 implementations of the core's ports, the
//! conversion of Lambda events, configuration from the environment and telemetry.

pub mod config;
pub mod dead_letters;
pub mod errors;
pub mod kinesis_event;
pub mod publisher;
pub mod results_table;
pub mod state_store;
pub mod telemetry;

pub use config::{sdk_config, ConfigError, Env};
pub use dead_letters::S3DeadLetters;
pub use publisher::KinesisPublisher;
pub use results_table::DynamoResultsTable;
pub use state_store::DynamoStateStore;
