//! The Lambda host: a function's process behind its own Runtime API.

use std::collections::HashMap;
use std::time::Duration;

use tally_cloud::lambda::{FunctionHost, FunctionSpec};

use crate::support::{bin_dir, wait_for};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_a_host_stops_its_runtime_api() {
    let spec = FunctionSpec {
        logical_id: "Probe".into(),
        physical_name: "probe".into(),
        arn: "arn:aws:lambda:us-east-1:000000000000:function:probe".into(),
        binary: bin_dir().join("flaky-consumer"),
        env: HashMap::new(),
        timeout: Duration::from_secs(3),
        memory_mb: 128,
        log_file: bin_dir().join("test-logs/probe.log"),
        reserved_concurrency: None,
        faults: tally_cloud::faults::Faults::none(),
    };
    let host = FunctionHost::start(spec).await.unwrap();
    let address = host.runtime_apis()[0].clone();
    assert!(
        tokio::net::TcpStream::connect(&address).await.is_ok(),
        "the Runtime API listens"
    );
    host.stop().await;
    wait_for("the Runtime API to close", Duration::from_secs(5), || {
        let address = address.clone();
        async move {
            tokio::net::TcpStream::connect(&address)
                .await
                .is_err()
                .then_some(())
        }
    })
    .await;
}
