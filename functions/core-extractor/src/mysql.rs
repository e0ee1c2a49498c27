//! The core database through MySQL's protocol (`mysql_async`): each table's changed rows as text.

use chrono::NaiveDateTime;
use mysql_async::prelude::Queryable;

use crate::{CoreSource, SourceRow, SourceTable, DATETIME};

pub struct MySqlSource {
    pool: mysql_async::Pool,
}

impl MySqlSource {
    /// `mysql://USER:PASSWORD@HOST:PORT/DATABASE`.
    pub fn new(url: &str) -> Result<Self, String> {
        let opts = mysql_async::Opts::from_url(url)
            .map_err(|e| format!("not a MySQL URL (mysql://USER:PASSWORD@HOST:PORT/DB): {e}"))?;
        Ok(MySqlSource {
            pool: mysql_async::Pool::new(opts),
        })
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
