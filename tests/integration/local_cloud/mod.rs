//! The local cloud itself, service by service: the CLI, event source mappings, Firehose, Athena,
//! the Lambda host. The pipelines' end-to-end tests are in their own modules.

mod api;
mod athena;
mod cli;
mod cloudformation;
mod core_db;
mod firehose;
mod iam;
mod lambda;
mod mappings;
