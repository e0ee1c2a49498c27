//! Configuration from the environment the template gives each function.

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;

use aws_config::{BehaviorVersion, SdkConfig};
use tally_engine::Aggregation;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("missing environment variable {0}: the template must set it for this function")]
    Missing(&'static str),
    #[error("environment variable {name}={value:?} is invalid: {reason}")]
    Invalid {
        name: &'static str,
        value: String,
        reason: String,
    },
}

/// Where configuration comes from: the process environment in Lambda, a map in tests (the
/// variables the template gives the function). It remembers which variables were read, so a test
/// can tell that the template gives a function nothing it does not read.
#[derive(Debug, Default)]
pub struct Env {
    vars: Option<HashMap<String, String>>,
    read: Mutex<BTreeSet<String>>,
}

impl Clone for Env {
    fn clone(&self) -> Self {
        Env {
            vars: self.vars.clone(),
            read: Mutex::new(self.read.lock().expect("env reads").clone()),
        }
    }
}

impl Env {
    pub fn process() -> Self {
        Env::default()
    }

    pub fn from_map(vars: HashMap<String, String>) -> Self {
        Env {
            vars: Some(vars),
            read: Mutex::default(),
        }
    }

    pub fn get(&self, name: &str) -> Option<String> {
        self.read
            .lock()
            .expect("env reads")
            .insert(name.to_string());
        let v = match &self.vars {
            None => std::env::var(name).ok(),
            Some(m) => m.get(name).cloned(),
        };
        v.filter(|v| !v.trim().is_empty())
    }

    /// Variables of the map that nothing has read (empty for the process environment).
    pub fn unread(&self) -> Vec<String> {
        let read = self.read.lock().expect("env reads");
        let mut unread: Vec<String> = self
            .vars
            .iter()
            .flat_map(|m| m.keys())
            .filter(|k| !read.contains(*k))
            .cloned()
            .collect();
        unread.sort();
        unread
    }

    pub fn var(&self, name: &'static str) -> Result<String, ConfigError> {
        self.get(name).ok_or(ConfigError::Missing(name))
    }

    /// A variable parsed with `FromStr`, with a default when it is unset.
    pub fn parse<T: std::str::FromStr>(
        &self, name: &'static str, default: T,
    ) -> Result<T, ConfigError>
    where
        T::Err: std::fmt::Display,
    {
        match self.get(name) {
            Some(v) => v.trim().parse().map_err(|e: T::Err| ConfigError::Invalid {
                name,
                value: v,
                reason: e.to_string(),
            }),
            None => Ok(default),
        }
    }

    /// A required variable parsed with `FromStr`.
    pub fn required<T: std::str::FromStr>(&self, name: &'static str) -> Result<T, ConfigError>
    where
        T::Err: std::fmt::Display,
    {
        let v = self.var(name)?;
        v.trim().parse().map_err(|e: T::Err| ConfigError::Invalid {
            name,
            value: v.clone(),
            reason: e.to_string(),
        })
    }

    /// A whole number of at least `min`, with a default when unset.
    pub fn parse_at_least(
        &self, name: &'static str, default: u32, min: u32,
    ) -> Result<u32, ConfigError> {
        let n: u32 = self.parse(name, default)?;
        if n < min {
            return Err(ConfigError::Invalid {
                name,
                value: n.to_string(),
                reason: format!("must be at least {min}"),
            });
        }
        Ok(n)
    }
}

/// `AGGREGATION`: `per-key` (the default: one write per key per batch) or `per-record`.
pub fn aggregation(env: &Env) -> Result<Aggregation, ConfigError> {
    match env.get("AGGREGATION").as_deref() {
        None | Some("per-cid") | Some("per-key") => Ok(Aggregation::PerKey),
        Some("per-record") => Ok(Aggregation::PerRecord),
        Some(other) => Err(ConfigError::Invalid {
            name: "AGGREGATION",
            value: other.to_string(),
            reason: "expected per-key or per-record".into(),
        }),
    }
}

/// The SDK configuration. Honours `AWS_ENDPOINT_URL` (the local cloud's edge endpoint).
/// The functions' SDK configuration: the environment's credentials, region and endpoint, and
/// retries for throttling as DynamoDB and Kinesis advise (up to 8 attempts from 50 ms, at most
/// 5 s apart): with the SDK's default 3 attempts from 1 s, a batch of hundreds of writes at 10%
/// throttling failed on one write in two tries (one failed write retries the whole batch).
pub async fn sdk_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .retry_config(
            aws_config::retry::RetryConfig::standard()
                .with_max_attempts(8)
                .with_initial_backoff(std::time::Duration::from_millis(50))
                .with_max_backoff(std::time::Duration::from_secs(5)),
        )
        .load()
        .await
}

/// The retry partition of every client of a function: the SDK's attempts (above) without its
/// retry quota. The default quota is a bucket that a first-try success refills by one token and a
/// throttled retry empties by five; a batch run again after a failure makes mostly conditional
/// writes that fail (already applied), which refill nothing, so at 10% throttling the bucket ran
/// dry, every later throttle failed at once, and the batch could never pass (measured: the models
/// held 4 events/s of 468). Each request's own attempts and backoff still bound its retries.
fn retry_partition() -> aws_smithy_runtime::client::retries::RetryPartition {
    use aws_smithy_runtime::client::retries::{RetryPartition, TokenBucket};
    static PARTITION: std::sync::OnceLock<RetryPartition> = std::sync::OnceLock::new();
    PARTITION
        .get_or_init(|| {
            RetryPartition::custom("tally-function")
                .token_bucket(TokenBucket::unlimited())
                .build()
        })
        .clone()
}

/// A DynamoDB client of a function.
pub fn dynamodb_client(config: &SdkConfig) -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(config)
            .retry_partition(retry_partition())
            .build(),
    )
}

/// A Kinesis client of a function.
pub fn kinesis_client(config: &SdkConfig) -> aws_sdk_kinesis::Client {
    aws_sdk_kinesis::Client::from_conf(
        aws_sdk_kinesis::config::Builder::from(config)
            .retry_partition(retry_partition())
            .build(),
    )
}

/// An S3 client; path-style addressing when a custom endpoint is set (emulators have no
/// per-bucket host names).
pub fn s3_client(config: &SdkConfig) -> aws_sdk_s3::Client {
    let mut b = aws_sdk_s3::config::Builder::from(config).retry_partition(retry_partition());
    if config.endpoint_url().is_some() {
        b = b.force_path_style(true);
    }
    aws_sdk_s3::Client::from_conf(b.build())
}
