//! The local cloud: runs tally's `template.yaml` on one machine, without Docker or an AWS
//! account, laid out by service as LocalStack lays out its providers, and the `tally` CLI.
//!
//! - `cloud.rs`: starts and stops everything below, from the template
//! - `template.rs`, `provision.rs`: the template read, its resources created in the emulators
//! - `emulators.rs`, `edge.rs`: the AWS-API emulators behind one edge endpoint
//! - `kinesis/`: the one shard reader and the one batching writer everything uses
//! - `lambda/`: functions as the template declares them, each run behind the Runtime API
//! - `esm/`: Kinesis event source mappings
//! - `firehose/`: delivery from Kinesis to S3
//! - `api_gateway/`: the HTTP API
//! - `http.rs`, `clients.rs`: what the servers and the SDK clients share
//! - `pipelines.rs`: what the template says of each pipeline (the CLI, demo and bench read it)
//! - `lake.rs`: the lake's Glue catalog and local views, from the lake's table definitions
//! - `meetup/`: the Meetup RSVP source (generator, websocket server, websocket producer)
//! - `cli/`: the `tally` commands; `bench/`: `tally bench`

pub mod api_gateway;
pub mod bench;
pub mod cli;
pub mod clients;
pub mod cloud;
pub mod edge;
pub mod emulators;
pub mod esm;
pub mod faults;
pub mod firehose;
pub mod http;
pub mod kinesis;
pub mod lake;
pub mod lambda;
pub mod meetup;
pub mod mobile;
pub mod pipelines;
pub mod provision;
pub mod template;

/// Resolves once the shutdown flag turns true (or its sender is gone).
pub async fn stopped(rx: &mut tokio::sync::watch::Receiver<bool>) {
    loop {
        let now = *rx.borrow_and_update();
        if now || rx.changed().await.is_err() {
            return;
        }
    }
}
