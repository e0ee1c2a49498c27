//! Tables unique by an id, merged on read: a conversion adds a file of its new rows to the row's
//! partition (named from its inputs, so a conversion run again replaces its file), every reader
//! keeps one row per id (the table's view on Athena and in `tally sql`; [`deduplicate`] here), and
//! compaction (`compaction.rs`) merges small files. No conversion reads what is already there, so
//! its cost is that of its new rows whatever the table holds.

use std::collections::{BTreeMap, BTreeSet};

use chrono::NaiveDate;
use tally_engine::ports::ObjectStore;

use crate::rows::{read_parquet, Row, Value};
use crate::table::{Keep, Layout, Table};
use crate::LakeError;

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

/// An id as text: the key rows are deduplicated and filed by (a source prints it the same way).
pub fn key_text(v: &Value) -> String {
    match v {
        Value::Str(s) => s.clone(),
        Value::BigInt(n) => n.to_string(),
        Value::Int(n) => n.to_string(),
        other => format!("{other:?}"),
    }
}

/// The folder (partition) a row of a unique table is filed in: `lake/<table>/dt=<day>/` for a
/// table unique by day, `lake/<table>/` for one unique across the table.
pub fn partition_of(table: &Table, row: &Row) -> Result<String, LakeError> {
    match table.layout {
        Layout::UniqueByDay { day, .. } => match table.column(day).and_then(|i| row.get(i)) {
            Some(Value::Timestamp(t)) => Ok(day_partition(table, t.date_naive())),
            other => Err(LakeError::Schema(format!(
                "{}.{day} must be a timestamp to file the row by day, not {other:?}",
                table.name
            ))),
        },
        Layout::Unique { .. } => Ok(table.prefix()),
        Layout::PerRawObject | Layout::Replaced => Err(LakeError::Schema(format!(
            "{} is not unique by an id",
            table.name
        ))),
    }
}

fn day_partition(table: &Table, dt: NaiveDate) -> String {
    format!("{}dt={}/", table.prefix(), dt.format("%Y-%m-%d"))
}

/// The file of a conversion's new rows in `partition`, named from the inputs they came from: a
/// conversion of the same inputs again writes the same file.
pub fn new_file(partition: &str, inputs: &BTreeSet<String>) -> String {
    let names: Vec<&str> = inputs.iter().map(String::as_str).collect();
    format!("{partition}in-{}.parquet", name_hash(&names))
}

/// A name made from other names (of a compaction's inputs): the same inputs, the same name.
pub fn name_hash(names: &[&str]) -> String {
    format!("{:016x}", fnv1a(&names.join("\n")))
}

/// The Parquet files of a table's partition (not of the partitions below it).
pub async fn partition_files<O: ObjectStore>(
    store: &O, partition: &str,
) -> Result<Vec<tally_engine::ports::ListedObject>, LakeError> {
    Ok(store
        .list(partition)
        .await?
        .into_iter()
        .filter(|o| {
            let rest = &o.key[partition.len()..];
            !rest.contains('/') && rest.ends_with(".parquet")
        })
        .collect())
}

/// Every row of a unique table as its view shows it: each id once (within its partition).
pub async fn read_unique<O: ObjectStore>(store: &O, table: &Table) -> Result<Vec<Row>, LakeError> {
    let mut by_partition: BTreeMap<String, Vec<Row>> = BTreeMap::new();
    for object in store.list(&table.prefix()).await? {
        if !object.key.ends_with(".parquet") {
            continue;
        }
        let partition = object.key[..object.key.rfind('/').map_or(0, |i| i + 1)].to_string();
        let Some(file) = store.get(&object.key).await? else {
            continue;
        };
        by_partition
            .entry(partition)
            .or_default()
            .extend(read_parquet(table, file)?);
    }
    let mut out = Vec::new();
    for rows in by_partition.into_values() {
        out.extend(deduplicate(table, rows)?);
    }
    Ok(out)
}

/// Rows unique by the table's id, in id order; of two with one id, the one `keep` prefers (the
/// first seen on a tie).
pub fn deduplicate(
    table: &Table, rows: impl IntoIterator<Item = Row>,
) -> Result<Vec<Row>, LakeError> {
    let Some((id, keep)) = table.layout.unique() else {
        return Ok(rows.into_iter().collect());
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
        Keep::Versions { from, to, current } => {
            return Ok(versions(
                rows,
                id,
                column(from)?,
                column(to)?,
                column(current)?,
            ))
        }
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

/// Each id's versions, one per `from` (the first seen), with `to` the next version's `from`
/// (null for the last) and `current` true for the last, in (id, from) order: what the view says.
fn versions(
    rows: impl IntoIterator<Item = Row>, id: &[usize], from: usize, to: usize, current: usize,
) -> Vec<Row> {
    let mut by_id: BTreeMap<String, Vec<Row>> = BTreeMap::new();
    for row in rows {
        let kept = by_id.entry(row_key(&row, id)).or_default();
        if !kept.iter().any(|k| k[from] == row[from]) {
            kept.push(row);
        }
    }
    let mut out = Vec::new();
    for mut kept in by_id.into_values() {
        kept.sort_by(|a, b| {
            a[from]
                .partial_cmp(&b[from])
                .unwrap_or(std::cmp::Ordering::Equal)
        });
        let starts: Vec<Value> = kept.iter().map(|r| r[from].clone()).collect();
        for (i, mut row) in kept.into_iter().enumerate() {
            row[to] = starts.get(i + 1).cloned().unwrap_or(Value::Null);
            row[current] = Value::Bool(i + 1 == starts.len());
            out.push(row);
        }
    }
    out
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
