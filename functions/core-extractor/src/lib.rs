//! Seed 002's extractor: the rows of the core database changed since the lake's newest version of
//! each table, validated and cleaned, become new versions of the type-2 dimensions (`dim_vendor`,
//! `dim_flyer`, `dim_user`); a row that fails is a `bad_records` row (source `core:<table>`).
//!
//! The watermark is the newest `row_valid_from` the dimension holds, read back from the lake, so
//! no crash can separate it from the data: a run that dies after writing reads the same rows
//! again, and a version written twice is the same (`id`, `updated_at`), kept once by the view.
//! Rows are read from the watermark on (`>=`), so changes at the same millisecond are not lost.

pub mod function;
pub mod mysql;
pub mod tables;

use std::collections::BTreeSet;
use std::future::Future;

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::Serialize;
use tally_engine::ports::ObjectStore;
use tally_lake::bad_records::BAD_RECORDS;
use tally_lake::rows::{write_parquet, Row, Value};
use tally_lake::unique::{key_text, new_file, partition_of, read_unique};
use tally_lake::Table;

pub use tables::{SourceTable, SOURCES};

/// A source row: its columns as text (`CAST(... AS CHAR)`), in [`SourceTable::columns`]' order.
pub type SourceRow = Vec<Option<String>>;

/// The core database, as the extractor reads it.
pub trait CoreSource: Send + Sync {
    /// The rows of `table` with `updated_at` at or after `since` (all when `None`).
    fn rows_since(
        &self, table: &SourceTable, since: Option<NaiveDateTime>,
    ) -> impl Future<Output = Result<Vec<SourceRow>, String>> + Send;
}

/// What one table's extraction did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TableReport {
    pub table: &'static str,
    /// The dimension its versions go to.
    pub dimension: &'static str,
    /// The watermark it read from: the dimension's newest `row_valid_from`.
    pub since: Option<String>,
    pub read: usize,
    pub versions: usize,
    pub bad: usize,
}

/// How `updated_at` and the watermark are written, as MySQL prints a `DATETIME(3)`.
pub const DATETIME: &str = "%Y-%m-%d %H:%M:%S%.3f";

pub struct Extractor<S, O> {
    pub source: S,
    /// The lake's bucket.
    pub store: O,
}

impl<S: CoreSource, O: ObjectStore> Extractor<S, O> {
    /// Every source table, one after the other; the first error stops the run (the next one
    /// starts again from each table's watermark).
    pub async fn run(&self, now: DateTime<Utc>) -> Result<Vec<TableReport>, String> {
        let mut reports = Vec::new();
        for table in SOURCES {
            reports.push(self.extract(table, now).await?);
        }
        Ok(reports)
    }

    /// The dimension's newest version start, as of the lake, and the keys of the versions that
    /// start then (read again from the source, they are not news).
    async fn watermark(
        &self, dim: &Table,
    ) -> Result<(Option<NaiveDateTime>, BTreeSet<String>), String> {
        let from = dim.column("row_valid_from").expect("a type-2 dimension");
        let rows = read_unique(&self.store, dim)
            .await
            .map_err(|e| format!("cannot read {}: {e}", dim.name))?;
        let start = |r: &Row| match &r[from] {
            Value::Timestamp(t) => Some(t.naive_utc()),
            _ => None,
        };
        let newest = rows.iter().filter_map(start).max();
        let keys = rows
            .iter()
            .filter(|r| newest.is_some() && start(r) == newest)
            .map(|r| key_text(&r[0]))
            .collect();
        Ok((newest, keys))
    }

    async fn extract(
        &self, table: &SourceTable, now: DateTime<Utc>,
    ) -> Result<TableReport, String> {
        let (since, known) = self.watermark(table.dim).await?;
        let at_since = since.map(|s| s.format(DATETIME).to_string());
        let last = table.columns.len() - 1;
        let rows: Vec<SourceRow> = self
            .source
            .rows_since(table, since)
            .await?
            .into_iter()
            .filter(|r| {
                let already = r[last].as_deref().map(str::trim) == at_since.as_deref()
                    && r[0].as_deref().is_some_and(|k| known.contains(k.trim()));
                !already
            })
            .collect();
        let mut versions = Vec::new();
        let mut bad = Vec::new();
        let mut names = BTreeSet::new();
        for row in &rows {
            let id = table.row_id(row);
            names.insert(id.clone());
            match (table.clean)(row) {
                Ok(version) => versions.push(version),
                Err((code, reason)) => bad.push(vec![
                    Value::Str(format!("core:{}", table.name)),
                    Value::str(code),
                    Value::Str(reason),
                    Value::Str(table.as_text(row)),
                    Value::Str(id),
                    Value::Null,
                    Value::Null,
                    // Filed by the change's time, so that reading it again files it with itself.
                    Value::Timestamp(table.updated_at(row).unwrap_or(now)),
                ]),
            }
        }
        // Bad rows first: the watermark moves only with the versions, so a crash in between
        // reads the same rows again, and a bad row's id (table, key, updated_at) is kept once.
        if !bad.is_empty() {
            let partition = partition_of(&BAD_RECORDS, &bad[0]).map_err(|e| e.to_string())?;
            self.put(&BAD_RECORDS, &partition, &names, &bad).await?;
        }
        if !versions.is_empty() {
            self.put(table.dim, &table.dim.prefix(), &names, &versions)
                .await?;
        }
        Ok(TableReport {
            table: table.name,
            dimension: table.dim.name,
            since: at_since,
            read: rows.len(),
            versions: versions.len(),
            bad: bad.len(),
        })
    }

    /// One new file of `rows`, named after what was read: a run that reads the same rows again
    /// writes the same file.
    async fn put(
        &self, table: &Table, partition: &str, names: &BTreeSet<String>, rows: &[Row],
    ) -> Result<(), String> {
        let file = new_file(partition, names);
        let data = write_parquet(table, rows).map_err(|e| e.to_string())?;
        self.store
            .put(&file, data)
            .await
            .map_err(|e| format!("cannot write {file}: {e}"))
    }
}

#[cfg(test)]
mod tests;
