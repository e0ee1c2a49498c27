//! The local cloud: runs tally's `template.yaml` on one machine, without Docker or an AWS account.

pub mod api_gateway;
pub mod bench;
pub mod clients;
pub mod cloud;
pub mod edge;
pub mod emulators;
pub mod esm;
pub mod firehose;
pub mod function_host;
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
