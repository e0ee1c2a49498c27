//! SDK clients for the local cloud: fixed test credentials, one region, local endpoints.

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::config::Credentials;

/// Endpoints of each service (all the edge endpoint in the local cloud; emulators in tests).
#[derive(Debug, Clone)]
pub struct Endpoints {
    pub dynamodb: String,
    pub kinesis: String,
    pub s3: String,
    pub sqs: String,
}

impl Endpoints {
    pub fn all(url: &str) -> Self {
        Self {
            dynamodb: url.into(),
            kinesis: url.into(),
            s3: url.into(),
            sqs: url.into(),
        }
    }
}

#[derive(Clone)]
pub struct Clients {
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub kinesis: aws_sdk_kinesis::Client,
    pub s3: aws_sdk_s3::Client,
    pub sqs: aws_sdk_sqs::Client,
}

pub async fn local_config(endpoint: &str) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(crate::template::REGION))
        .credentials_provider(Credentials::new("test", "test", None, None, "tally-local"))
        .endpoint_url(endpoint)
        .load()
        .await
}

impl Clients {
    pub async fn new(endpoints: &Endpoints) -> Self {
        let s3_config = local_config(&endpoints.s3).await;
        let s3 = aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(&s3_config)
                .force_path_style(true)
                .build(),
        );
        Clients {
            dynamodb: aws_sdk_dynamodb::Client::new(&local_config(&endpoints.dynamodb).await),
            kinesis: aws_sdk_kinesis::Client::new(&local_config(&endpoints.kinesis).await),
            s3,
            sqs: aws_sdk_sqs::Client::new(&local_config(&endpoints.sqs).await),
        }
    }
}

/// What [`put_records`] did with one batch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PutOutcome {
    pub accepted: usize,
    /// Entries Kinesis refused at least once (throttling) and that were sent again.
    pub retried: usize,
    /// Entries still refused after the last attempt.
    pub refused: usize,
    /// PutRecords calls made.
    pub calls: u64,
}

/// Puts one PutRecords batch (up to 500 `(partition key, data)` entries), re-sending what Kinesis
/// refused with a growing pause, up to 10 attempts.
pub async fn put_records(
    kinesis: &aws_sdk_kinesis::Client,
    stream: &str,
    batch: &[(String, &[u8])],
) -> PutOutcome {
    use aws_sdk_kinesis::primitives::Blob;
    use aws_sdk_kinesis::types::PutRecordsRequestEntry;
    let mut pending: Vec<&(String, &[u8])> = batch.iter().collect();
    let mut outcome = PutOutcome::default();
    for attempt in 0..10u32 {
        let entries: Vec<PutRecordsRequestEntry> = pending
            .iter()
            .map(|(key, data)| {
                PutRecordsRequestEntry::builder()
                    .data(Blob::new(*data))
                    .partition_key(key)
                    .build()
                    .expect("data and key set")
            })
            .collect();
        outcome.calls += 1;
        match kinesis
            .put_records()
            .stream_name(stream)
            .set_records(Some(entries))
            .send()
            .await
        {
            Ok(out) => {
                let refused: Vec<_> = out
                    .records()
                    .iter()
                    .zip(&pending)
                    .filter(|(r, _)| r.error_code().is_some())
                    .map(|(_, e)| *e)
                    .collect();
                outcome.accepted += pending.len() - refused.len();
                outcome.retried += refused.len();
                pending = refused;
            }
            Err(_) => outcome.retried += pending.len(),
        }
        if pending.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50 << attempt.min(5))).await;
    }
    outcome.refused = pending.len();
    outcome
}
