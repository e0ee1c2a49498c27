//! Configuration from the environment the template gives each function.

use aws_config::{BehaviorVersion, SdkConfig};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("missing environment variable {0}: the template must set it for this function")]
    Missing(&'static str),
    #[error("environment variable {name}={value:?} is invalid: {reason}")]
    Invalid { name: &'static str, value: String, reason: String },
}

pub fn env_var(name: &'static str) -> Result<String, ConfigError> {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => Ok(v),
        _ => Err(ConfigError::Missing(name)),
    }
}

/// A variable parsed with `FromStr`, with a default when it is unset.
pub fn env_parse<T: std::str::FromStr>(name: &'static str, default: T) -> Result<T, ConfigError>
where
    T::Err: std::fmt::Display,
{
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => v.trim().parse().map_err(|e: T::Err| ConfigError::Invalid { name, value: v, reason: e.to_string() }),
        _ => Ok(default),
    }
}

/// The model settings (`WINDOW_DAYS`, default 7).
pub fn model_settings() -> Result<tally_core::ModelSettings, ConfigError> {
    let window_days: u32 = env_parse("WINDOW_DAYS", 7)?;
    if window_days == 0 {
        return Err(ConfigError::Invalid { name: "WINDOW_DAYS", value: "0".into(), reason: "must be at least 1".into() });
    }
    Ok(tally_core::ModelSettings { window_days })
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
