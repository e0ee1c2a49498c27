//! Configuration from the environment the template gives each function.

use std::collections::HashMap;

use aws_config::{BehaviorVersion, SdkConfig};

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
/// variables the template gives the function).
#[derive(Debug, Clone, Default)]
pub struct Env(Option<HashMap<String, String>>);

impl Env {
    pub fn process() -> Self {
        Env(None)
    }

    pub fn from_map(vars: HashMap<String, String>) -> Self {
        Env(Some(vars))
    }

    pub fn get(&self, name: &str) -> Option<String> {
        let v = match &self.0 {
            None => std::env::var(name).ok(),
            Some(m) => m.get(name).cloned(),
        };
        v.filter(|v| !v.trim().is_empty())
    }

    pub fn var(&self, name: &'static str) -> Result<String, ConfigError> {
        self.get(name).ok_or(ConfigError::Missing(name))
    }

    /// A variable parsed with `FromStr`, with a default when it is unset.
    pub fn parse<T: std::str::FromStr>(
        &self,
        name: &'static str,
        default: T,
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

    /// The model settings (`WINDOW_DAYS`, default 7).
    pub fn model_settings(&self) -> Result<tally_core::ModelSettings, ConfigError> {
        let window_days: u32 = self.parse("WINDOW_DAYS", 7)?;
        if window_days == 0 {
            return Err(ConfigError::Invalid {
                name: "WINDOW_DAYS",
                value: "0".into(),
                reason: "must be at least 1".into(),
            });
        }
        Ok(tally_core::ModelSettings { window_days })
    }
}

/// `AGGREGATION`: `per-key` (the default: one write per key per batch) or `per-record`.
pub fn aggregation(env: &Env) -> Result<tally_core::Aggregation, ConfigError> {
    match env.get("AGGREGATION").as_deref() {
        None | Some("per-cid") | Some("per-key") => Ok(tally_core::Aggregation::PerKey),
        Some("per-record") => Ok(tally_core::Aggregation::PerRecord),
        Some(other) => Err(ConfigError::Invalid {
            name: "AGGREGATION",
            value: other.to_string(),
            reason: "expected per-key or per-record".into(),
        }),
    }
}

/// The SDK configuration. Honours `AWS_ENDPOINT_URL` (the local cloud's edge endpoint).
pub async fn sdk_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest()).load().await
}

/// An S3 client; path-style addressing when a custom endpoint is set (emulators have no
/// per-bucket host names).
pub fn s3_client(config: &SdkConfig) -> aws_sdk_s3::Client {
    let mut b = aws_sdk_s3::config::Builder::from(config);
    if config.endpoint_url().is_some() {
        b = b.force_path_style(true);
    }
    aws_sdk_s3::Client::from_conf(b.build())
}
