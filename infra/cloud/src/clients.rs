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

/// The tools retry a failed call up to 10 times from 50 ms (the SDK's default is 3 from 1 s):
/// under `--faults` a command or a test that makes thousands of calls must not fail on the one
/// that lost three draws.
pub async fn local_config(endpoint: &str) -> SdkConfig {
    local_config_as(endpoint, tally_control::iam::ADMIN_KEY).await
}

/// [`local_config`] signing with `access_key`: the administrator's, or a role's
/// ([`tally_control::iam::role_key`]), whose calls the edge checks against that role's policies.
pub async fn local_config_as(endpoint: &str, access_key: &str) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(tally_stack::template::REGION))
        .retry_config(
            aws_config::retry::RetryConfig::standard()
                .with_max_attempts(10)
                .with_initial_backoff(std::time::Duration::from_millis(50))
                .with_max_backoff(std::time::Duration::from_secs(2)),
        )
        .credentials_provider(Credentials::new(
            access_key,
            "test",
            None,
            None,
            "tally-local",
        ))
        .endpoint_url(endpoint)
        .load()
        .await
}

impl Clients {
    /// The administrator's clients.
    pub async fn new(endpoints: &Endpoints) -> Self {
        Self::signing_as(endpoints, tally_control::iam::ADMIN_KEY).await
    }

    /// Clients of any configuration (AWS itself, with the default credential chain): S3 path-style
    /// only when an endpoint is set, as emulators have no per-bucket host names.
    pub fn from_config(config: &SdkConfig) -> Self {
        let mut s3 = aws_sdk_s3::config::Builder::from(config);
        if config.endpoint_url().is_some() {
            s3 = s3.force_path_style(true);
        }
        Clients {
            dynamodb: aws_sdk_dynamodb::Client::new(config),
            kinesis: aws_sdk_kinesis::Client::new(config),
            s3: aws_sdk_s3::Client::from_conf(s3.build()),
            sqs: aws_sdk_sqs::Client::new(config),
        }
    }

    /// Clients that sign with `access_key`.
    pub async fn signing_as(endpoints: &Endpoints, access_key: &str) -> Self {
        let config = |endpoint| local_config_as(endpoint, access_key);
        let s3_config = config(&endpoints.s3).await;
        let s3 = aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(&s3_config)
                .force_path_style(true)
                .build(),
        );
        Clients {
            dynamodb: aws_sdk_dynamodb::Client::new(&config(&endpoints.dynamodb).await),
            kinesis: aws_sdk_kinesis::Client::new(&config(&endpoints.kinesis).await),
            s3,
            sqs: aws_sdk_sqs::Client::new(&config(&endpoints.sqs).await),
        }
    }
}

/// An SDK call's error as a one-line message that says what was being done and every cause the
/// SDK gives (its plain `Display` says only "service error"): `.map_err(failed("listing s3://b"))`.
pub fn failed<E: std::error::Error>(
    doing: impl std::fmt::Display,
) -> impl FnOnce(E) -> anyhow::Error {
    move |e| anyhow::anyhow!("{doing}: {}", aws_sdk_s3::error::DisplayErrorContext(e))
}
