//! The core database through MySQL's protocol (`mysql_async`): each table's changed rows as text.

use chrono::NaiveDateTime;
use mysql_async::prelude::Queryable;

use crate::{CoreSource, SourceRow, SourceTable, DATETIME};

pub struct MySqlSource {
    pool: mysql_async::Pool,
}

/// How the connection is protected, by MySQL's own names (`--ssl-mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    /// Encrypted, the server's certificate not checked (MySQL's default when the server has TLS;
    /// RDS's certificates chain to Amazon's RDS authority, which is in no public root store).
    Required,
    /// Encrypted, the certificate checked against the public roots and the host's name.
    VerifyIdentity,
    /// Plain text, for a database that offers no TLS.
    Disabled,
}

impl std::str::FromStr for SslMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "REQUIRED" => Ok(SslMode::Required),
            "VERIFY_IDENTITY" => Ok(SslMode::VerifyIdentity),
            "DISABLED" => Ok(SslMode::Disabled),
            other => Err(format!(
                "unknown ssl mode {other:?}: REQUIRED, VERIFY_IDENTITY or DISABLED"
            )),
        }
    }
}

/// Where the database is and who reads it.
#[derive(Debug, Clone)]
pub struct Connection {
    pub host: String,
    pub port: u16,
    pub database: String,
    pub user: String,
    pub password: String,
    pub ssl: SslMode,
}

impl MySqlSource {
    pub fn new(c: &Connection) -> Self {
        let ssl = match c.ssl {
            SslMode::Disabled => None,
            SslMode::VerifyIdentity => Some(mysql_async::SslOpts::default()),
            SslMode::Required => Some(
                mysql_async::SslOpts::default()
                    .with_danger_accept_invalid_certs(true)
                    .with_danger_skip_domain_validation(true),
            ),
        };
        let opts = mysql_async::OptsBuilder::default()
            .ip_or_hostname(c.host.clone())
            .tcp_port(c.port)
            .db_name(Some(c.database.clone()))
            .user(Some(c.user.clone()))
            .pass(Some(c.password.clone()))
            .prefer_socket(false)
            .ssl_opts(ssl);
        MySqlSource {
            pool: mysql_async::Pool::new(opts),
        }
    }
}

impl CoreSource for MySqlSource {
    async fn rows_since(
        &self, table: &SourceTable, since: Option<NaiveDateTime>,
    ) -> Result<Vec<SourceRow>, String> {
        // Every column as text: the extractor checks and converts them itself.
        let columns: Vec<String> = table
            .columns
            .iter()
            .map(|c| format!("CAST(`{c}` AS CHAR)"))
            .collect();
        let key = table.columns[0];
        let sql = format!(
            "SELECT {} FROM `{}` WHERE updated_at >= ? OR ? IS NULL ORDER BY updated_at, `{key}`",
            columns.join(", "),
            table.name
        );
        let since = since.map(|s| s.format(DATETIME).to_string());
        let mut conn = self
            .pool
            .get_conn()
            .await
            .map_err(|e| format!("cannot reach the core database: {e}"))?;
        let rows: Vec<mysql_async::Row> = conn
            .exec(sql, (since.clone(), since))
            .await
            .map_err(|e| format!("cannot read {}: {e}", table.name))?;
        Ok(rows
            .into_iter()
            .map(|r| {
                (0..table.columns.len())
                    .map(|i| r.get::<Option<String>, _>(i).flatten())
                    .collect()
            })
            .collect())
    }
}

impl MySqlSource {
    /// Closes the pool's connections (a dropped pool leaves them to the server's timeout).
    pub async fn close(self) {
        let _ = self.pool.disconnect().await;
    }
}
