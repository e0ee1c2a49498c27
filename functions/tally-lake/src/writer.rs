//! Newly archived objects into the curated tables. Converting an object again (a retried or
//! redelivered notification) gives the same files: an archived stream's object becomes one file
//! named after it, and the new rows of a table unique by id one file per partition named after
//! the inputs, which readers deduplicate (`unique.rs`) and compaction merges (`compaction.rs`).
//! A conversion reads nothing of what the lake already holds.

use std::collections::{BTreeMap, BTreeSet};

use tally_engine::ports::ObjectStore;

use crate::bad_records::{dead_letter_row, raw_line_row, BAD_RECORDS};
use crate::catalog::raw_table;
use crate::compaction::{compact, Compacted};
use crate::raw::{lines, Input, RawObject};
use crate::rows::{write_parquet, Row};
use crate::table::{Curated, Layout, Table};
use crate::unique::{deduplicate, new_file, partition_of};
use crate::LakeError;

/// What a conversion did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LakeReport {
    /// Input objects converted (archived objects and dead letters).
    pub objects: usize,
    /// Bytes of the archived objects read, as stored (GZIP).
    pub raw_bytes: usize,
    /// Rows written per table (for unique tables: each id once per file).
    pub rows: BTreeMap<&'static str, usize>,
    /// Raw lines that became bad records.
    pub bad_lines: usize,
    pub files_written: usize,
    /// Bytes of the Parquet files written.
    pub parquet_bytes: usize,
    /// Inputs that could not be converted, with why: their notifications are retried.
    pub failed: BTreeMap<String, String>,
    /// What compaction of the partitions written did, and how long it took.
    pub compacted: Compacted,
    pub compaction_time: std::time::Duration,
    /// Partitions whose compaction failed, with why (the next conversion into them tries again;
    /// their new files are written, so no input is retried for it).
    pub compaction_failed: BTreeMap<String, String>,
}

/// New rows of one partition of a unique table, and the inputs they came from.
struct Pending {
    table: &'static Table,
    rows: Vec<Row>,
    inputs: BTreeSet<String>,
}

pub struct LakeWriter<O> {
    pub store: O,
}

impl<O: ObjectStore> LakeWriter<O> {
    /// Converts the objects `keys` of the archive bucket (keys that are not inputs are skipped).
    pub async fn convert(&self, keys: &[String]) -> LakeReport {
        let mut report = LakeReport::default();
        let mut new_rows: BTreeMap<String, Pending> = BTreeMap::new();
        let mut converted = BTreeSet::new();
        for key in keys {
            match self.convert_one(key, &mut new_rows, &mut report).await {
                Ok(()) => {
                    converted.insert(key.clone());
                }
                Err(e) => {
                    report.failed.insert(key.clone(), e.to_string());
                }
            }
        }
        let mut written = Vec::new();
        for (partition, pending) in new_rows {
            match self.write_new(&partition, &pending).await {
                Ok((rows, bytes)) => {
                    report.files_written += 1;
                    report.parquet_bytes += bytes;
                    *report.rows.entry(pending.table.name).or_default() += rows;
                    written.push((partition, pending.table));
                }
                Err(e) => {
                    for input in pending.inputs {
                        converted.remove(&input);
                        report.failed.insert(input, format!("{partition}: {e}"));
                    }
                }
            }
        }
        let began = std::time::Instant::now();
        for (partition, table) in written {
            match compact(&self.store, table, &partition).await {
                Ok(done) => report.compacted.add(done),
                Err(e) => {
                    report.compaction_failed.insert(partition, e.to_string());
                }
            }
        }
        report.compaction_time = began.elapsed();
        report.objects = converted.len();
        report
    }

    /// Writes a partition's new rows (each id once) as the file named after their inputs.
    async fn write_new(
        &self, partition: &str, pending: &Pending,
    ) -> Result<(usize, usize), LakeError> {
        let rows = deduplicate(pending.table, pending.rows.iter().cloned())?;
        let data = write_parquet(pending.table, &rows)?;
        let bytes = data.len();
        let file = new_file(partition, &pending.inputs);
        self.store.put(&file, data).await?;
        Ok((rows.len(), bytes))
    }

    async fn convert_one(
        &self, key: &str, new_rows: &mut BTreeMap<String, Pending>, report: &mut LakeReport,
    ) -> Result<(), LakeError> {
        match Input::of(key) {
            Input::Other => Ok(()),
            Input::DeadLetter => {
                let Some(object) = self.store.get(key).await? else {
                    return Ok(());
                };
                let row = dead_letter_row(key, &object)?;
                add(new_rows, &BAD_RECORDS, row, key)
            }
            Input::Raw(raw) => self.convert_raw(&raw, new_rows, report).await,
        }
    }

    async fn convert_raw(
        &self, raw: &RawObject, new_rows: &mut BTreeMap<String, Pending>, report: &mut LakeReport,
    ) -> Result<(), LakeError> {
        // A stream the lake has no table for is archived only.
        let Some(curated) = raw_table(&raw.stream)
            .map(|t| t.curated)
            .filter(|c| !matches!(c, Curated::Archived))
        else {
            return Ok(());
        };
        let Some(object) = self.store.get(&raw.key).await? else {
            return Ok(());
        };
        report.raw_bytes += object.len();
        let mut tables: BTreeMap<&'static str, (&'static Table, Vec<Row>)> = BTreeMap::new();
        for (i, line) in lines(&raw.key, &object)?.iter().enumerate() {
            match curated.rows(&line.data, raw) {
                Ok(rows) => {
                    for (table, row) in rows {
                        tables
                            .entry(table.name)
                            .or_insert((table, Vec::new()))
                            .1
                            .push(row);
                    }
                }
                Err(why) => {
                    report.bad_lines += 1;
                    add(
                        new_rows,
                        &BAD_RECORDS,
                        raw_line_row(raw, i + 1, line, &why),
                        &raw.key,
                    )?;
                }
            }
        }
        for (table, rows) in tables.into_values() {
            if table.layout != Layout::PerRawObject {
                for row in rows {
                    add(new_rows, table, row, &raw.key)?;
                }
                continue;
            }
            let file = format!(
                "{}dt={}/{}.parquet",
                table.prefix(),
                raw.dt.format("%Y-%m-%d"),
                raw.stem
            );
            let data = write_parquet(table, &rows)?;
            report.parquet_bytes += data.len();
            self.store.put(&file, data).await?;
            report.files_written += 1;
            *report.rows.entry(table.name).or_default() += rows.len();
        }
        Ok(())
    }
}

fn add(
    new_rows: &mut BTreeMap<String, Pending>, table: &'static Table, row: Row, input: &str,
) -> Result<(), LakeError> {
    let partition = partition_of(table, &row)?;
    let pending = new_rows.entry(partition).or_insert_with(|| Pending {
        table,
        rows: Vec::new(),
        inputs: BTreeSet::new(),
    });
    pending.rows.push(row);
    pending.inputs.insert(input.to_string());
    Ok(())
}
