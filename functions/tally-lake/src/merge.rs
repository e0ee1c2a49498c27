//! Tables unique by an id stay so however often a conversion runs: rows are merged into their
//! file by reading it, deduplicating, and writing it back only if nobody wrote it since it was read
//! (S3 conditional writes), the same optimistic concurrency the state store uses for items.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use tally_engine::ports::{ObjectStore, PutCondition};

use crate::rows::{read_parquet, write_parquet, Row, Value};
use crate::table::{Keep, Layout, Table};
use crate::LakeError;

/// How often a merge is tried before it is given up (and its inputs retried later).
const MAX_ATTEMPTS: usize = 8;

/// What a merge did to its file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Merged {
    /// The file already held every row: nothing written.
    Unchanged,
    /// Written with this many rows.
    Written(usize),
}

fn fnv1a(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Between the parts of an id of several columns: a control character no id holds.
const ID_SEPARATOR: &str = "\u{1f}";

/// A row's id (its id columns' texts) as one key.
fn row_key(row: &Row, id: &[usize]) -> String {
    id.iter()
        .map(|&i| key_text(&row[i]))
        .collect::<Vec<_>>()
        .join(ID_SEPARATOR)
}

/// An id as text: the key rows are deduplicated and filed by.
fn key_text(v: &Value) -> String {
    match v {
        Value::Str(s) => s.clone(),
        Value::BigInt(n) => n.to_string(),
        Value::Int(n) => n.to_string(),
        other => format!("{other:?}"),
    }
}

/// The file a row of a merged table belongs in.
pub fn file_of(table: &Table, row: &Row) -> Result<String, LakeError> {
    let value = |column: &str| {
        table
            .column(column)
            .and_then(|i| row.get(i))
            .ok_or_else(|| LakeError::Schema(format!("{} has no column {column}", table.name)))
    };
    match table.layout {
        Layout::MergedByDay { day, .. } => match value(day)? {
            Value::Timestamp(t) => Ok(day_file(table, t.date_naive())),
            other => Err(LakeError::Schema(format!(
                "{}.{day} must be a timestamp to file the row by day, not {other:?}",
                table.name
            ))),
        },
        Layout::MergedByHash { id, files, .. } => {
            let id = id
                .iter()
                .map(|c| value(c).map(key_text))
                .collect::<Result<Vec<_>, _>>()?
                .join(ID_SEPARATOR);
            Ok(format!(
                "{}part-{:02}.parquet",
                table.prefix(),
                fnv1a(&id) % u64::from(files.max(1))
            ))
        }
        Layout::PerRawObject | Layout::Replaced => Err(LakeError::Schema(format!(
            "{} is not a merged table",
            table.name
        ))),
    }
}

/// Every file a table merged by hash can have.
pub fn hash_files(table: &Table) -> Vec<String> {
    match table.layout {
        Layout::MergedByHash { files, .. } => (0..u64::from(files.max(1)))
            .map(|n| format!("{}part-{n:02}.parquet", table.prefix()))
            .collect(),
        _ => Vec::new(),
    }
}

fn day_file(table: &Table, dt: NaiveDate) -> String {
    format!(
        "{}dt={}/part.parquet",
        table.prefix(),
        dt.format("%Y-%m-%d")
    )
}

/// Rows unique by the table's id, in id order; of two with one id, the one `keep` prefers (the
/// first seen on a tie).
pub fn deduplicate(
    table: &Table, rows: impl IntoIterator<Item = Row>,
) -> Result<Vec<Row>, LakeError> {
    let (id, keep) = match table.layout {
        Layout::MergedByDay { id, keep, .. } | Layout::MergedByHash { id, keep, .. } => (id, keep),
        Layout::PerRawObject | Layout::Replaced => return Ok(rows.into_iter().collect()),
    };
    let column = |name: &str| {
        table
            .column(name)
            .ok_or_else(|| LakeError::Schema(format!("{} has no column {name}", table.name)))
    };
    let id = id
        .iter()
        .map(|c| column(c))
        .collect::<Result<Vec<_>, _>>()?;
    let id = &id[..];
    let (by, earliest) = match keep {
        Keep::Earliest(c) => (column(c)?, true),
        Keep::Latest(c) => (column(c)?, false),
        Keep::LatestSet { version, member } => {
            return Ok(latest_sets(rows, id, column(version)?, column(member)?))
        }
        Keep::Span { first, last } => return Ok(spans(rows, id, column(first)?, column(last)?)),
    };
    let mut unique: BTreeMap<String, Row> = BTreeMap::new();
    for row in rows {
        let key = row_key(&row, id);
        match unique.get(&key) {
            Some(kept) => {
                let better = if earliest {
                    row[by] < kept[by]
                } else {
                    row[by] > kept[by]
                };
                if better {
                    unique.insert(key, row);
                }
            }
            None => {
                unique.insert(key, row);
            }
        }
    }
    Ok(unique.into_values().collect())
}

/// Per id, the row with the largest `last` (the first of those on a tie), holding the smallest
/// `first` of all its rows, in id order.
fn spans(rows: impl IntoIterator<Item = Row>, id: &[usize], first: usize, last: usize) -> Vec<Row> {
    let mut unique: BTreeMap<String, Row> = BTreeMap::new();
    for row in rows {
        let key = row_key(&row, id);
        match unique.get_mut(&key) {
            Some(kept) => {
                let earliest = if row[first] < kept[first] && row[first] != Value::Null {
                    row[first].clone()
                } else {
                    kept[first].clone()
                };
                if row[last] > kept[last] {
                    *kept = row;
                }
                kept[first] = earliest;
            }
            None => {
                unique.insert(key, row);
            }
        }
    }
    unique.into_values().collect()
}

/// The rows of each id's latest version, one per member, in (id, member) order.
fn latest_sets(
    rows: impl IntoIterator<Item = Row>, id: &[usize], version: usize, member: usize,
) -> Vec<Row> {
    let rows: Vec<Row> = rows.into_iter().collect();
    let mut newest: BTreeMap<String, &Value> = BTreeMap::new();
    for row in &rows {
        let v = newest.entry(row_key(row, id)).or_insert(&row[version]);
        if row[version] > **v {
            *v = &row[version];
        }
    }
    let newest: BTreeMap<String, Value> = newest.into_iter().map(|(k, v)| (k, v.clone())).collect();
    let mut unique: BTreeMap<(String, String), Row> = BTreeMap::new();
    for row in rows {
        let key = row_key(&row, id);
        if newest.get(&key) == Some(&row[version]) {
            unique.entry((key, key_text(&row[member]))).or_insert(row);
        }
    }
    unique.into_values().collect()
}

/// Merges `rows` into the file `key` of `table`.
pub async fn merge_into<O: ObjectStore>(
    store: &O, table: &Table, key: &str, rows: &[Row],
) -> Result<Merged, LakeError> {
    for _ in 0..MAX_ATTEMPTS {
        let (existing, condition) = match store.get(key).await? {
            Some(o) => (
                read_parquet(table, o.data)?,
                PutCondition::IfUnchanged(o.etag),
            ),
            None => (Vec::new(), PutCondition::IfAbsent),
        };
        let merged = deduplicate(table, existing.iter().cloned().chain(rows.iter().cloned()))?;
        if merged == existing {
            return Ok(Merged::Unchanged);
        }
        let data = write_parquet(table, &merged)?;
        if store.put(key, data, condition).await? {
            return Ok(Merged::Written(merged.len()));
        }
    }
    Err(LakeError::Contended(key.to_string()))
}
