//! The extractor as a Lambda (`CoreExtractorFunction`), on a schedule or invoked by
//! `tally extract`: the database's address from the template, its credentials from Secrets
//! Manager on every run (so a rotated password is picked up), the dimensions in the lake's bucket.

use serde::{Deserialize, Serialize};
use tally_aws::config::s3_client;
use tally_aws::{ConfigError, Env, Error, S3Objects, SdkConfig};

use crate::mysql::{Connection, MySqlSource, SslMode};
use crate::{Extractor, TableReport};

/// What a run answers: a report per source table.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub tables: Vec<TableReport>,
}

/// The secret's fields the extractor reads, as RDS and Secrets Manager's rotation keep them
/// (other fields, such as `host` or `engine`, are ignored: the template says where the database is).
#[derive(Deserialize)]
struct Credentials {
    username: String,
    password: String,
}

pub struct CoreExtractorFunction {
    secrets: aws_sdk_secretsmanager::Client,
    secret_arn: String,
    host: String,
    port: u16,
    database: String,
    ssl: SslMode,
    /// The lake's bucket.
    store: S3Objects,
}

/// `HOST:PORT` (3306 when the port is left out).
fn endpoint(value: &str) -> Result<(String, u16), ConfigError> {
    let invalid = |reason: &str| ConfigError::Invalid {
        name: "CORE_DB_ENDPOINT",
        value: value.to_string(),
        reason: reason.to_string(),
    };
    match value.rsplit_once(':') {
        None => Ok((value.to_string(), 3306)),
        Some((host, port)) if !host.is_empty() => port
            .parse()
            .map(|p| (host.to_string(), p))
            .map_err(|_| invalid("expected HOST:PORT, the port a number")),
        Some(_) => Err(invalid("expected HOST:PORT")),
    }
}

/// Reads `CORE_DB_ENDPOINT` (`HOST:PORT`), `CORE_DB_NAME`, `CORE_DB_SECRET_ARN`,
/// `CORE_DB_SSL_MODE` (REQUIRED when unset) and `ARCHIVE_BUCKET` (the lake's bucket).
pub fn from_env(config: &SdkConfig, env: &Env) -> Result<CoreExtractorFunction, Error> {
    let (host, port) = endpoint(&env.var("CORE_DB_ENDPOINT")?)?;
    let ssl = env.get("CORE_DB_SSL_MODE").unwrap_or("REQUIRED".into());
    Ok(CoreExtractorFunction {
        secrets: aws_sdk_secretsmanager::Client::new(config),
        secret_arn: env.var("CORE_DB_SECRET_ARN")?,
        host,
        port,
        database: env.get("CORE_DB_NAME").unwrap_or("core".into()),
        ssl: ssl.parse().map_err(|reason| ConfigError::Invalid {
            name: "CORE_DB_SSL_MODE",
            value: ssl.clone(),
            reason,
        })?,
        store: S3Objects::new(s3_client(config), env.var("ARCHIVE_BUCKET")?),
    })
}

impl CoreExtractorFunction {
    async fn credentials(&self) -> Result<Credentials, String> {
        let secret = self
            .secrets
            .get_secret_value()
            .secret_id(&self.secret_arn)
            .send()
            .await
            .map_err(|e| {
                format!(
                    "cannot read the core database's secret {}: {}",
                    self.secret_arn,
                    aws_sdk_secretsmanager::error::DisplayErrorContext(&e)
                )
            })?;
        serde_json::from_str(secret.secret_string().unwrap_or_default()).map_err(|_| {
            format!(
                "secret {} is not JSON with username and password (as RDS keeps them)",
                self.secret_arn
            )
        })
    }

    /// One extraction of every table, now.
    pub async fn run(&self, now: chrono::DateTime<chrono::Utc>) -> Result<Report, String> {
        let credentials = self.credentials().await?;
        let extractor = Extractor {
            source: MySqlSource::new(&Connection {
                host: self.host.clone(),
                port: self.port,
                database: self.database.clone(),
                user: credentials.username,
                password: credentials.password,
                ssl: self.ssl,
            }),
            store: self.store.clone(),
        };
        let tables = extractor.run(now).await;
        extractor.source.close().await;
        Ok(Report { tables: tables? })
    }
}

#[cfg(test)]
mod tests {
    use super::endpoint;

    #[test]
    fn an_endpoint_is_a_host_and_a_port() {
        assert_eq!(
            endpoint("db.example.internal:3307").unwrap(),
            ("db.example.internal".into(), 3307)
        );
        assert_eq!(endpoint("db").unwrap(), ("db".into(), 3306));
        assert!(endpoint("db:x").is_err());
        assert!(endpoint(":3306").is_err());
    }
}
