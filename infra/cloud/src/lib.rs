//! The local cloud: runs tally's `template.yaml` on one machine, without Docker or an AWS
//! account, laid out by service as LocalStack lays out its providers.
//!
//! - `cloud.rs`: starts and stops everything below, from the template (read by `tally-stack`)
//! - `provision.rs`: the template's resources created in the emulators
//! - `emulators.rs`, `edge.rs`: the AWS-API emulators behind one edge endpoint; `faults.rs`: the
//!   failures the edge and the Lambda host inject on demand (`tally up --faults`)
//! - `kinesis/`: the one shard reader and the one batching writer everything uses
//! - `lambda/`: functions as the template declares them, each run behind the Runtime API
//! - `esm/`: Kinesis and SQS event source mappings
//! - `firehose/`: delivery from Kinesis to S3
//! - `api_gateway/`: the HTTP API
//! - IAM, CloudFormation and Athena, which need no emulator, are answered by `tally-control`
//! - `http.rs`, `clients.rs`: what the servers and the SDK clients share

pub mod api_gateway;
pub mod clients;
pub mod cloud;
pub mod core_db;
pub mod edge;
pub mod emulators;
pub mod esm;
pub mod faults;
pub mod firehose;
pub mod http;
pub mod kinesis;
pub mod lambda;
pub mod provision;
pub mod scheduler;

/// Resolves once the shutdown flag turns true (or its sender is gone).
pub async fn stopped(rx: &mut tokio::sync::watch::Receiver<bool>) {
    loop {
        let now = *rx.borrow_and_update();
        if now || rx.changed().await.is_err() {
            return;
        }
    }
}
