//! Rows of a table as plain values, and Parquet files of them (Snappy), both ways.

use std::sync::Arc;

use arrow_array::{
    Array, ArrayRef, BooleanArray, Float64Array, Int32Array, Int64Array, RecordBatch, StringArray,
    TimestampMillisecondArray,
};
use chrono::{DateTime, Utc};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;

use crate::table::{Column, ColumnType, Table};
use crate::LakeError;

#[derive(Debug, Clone, PartialEq, PartialOrd)]
pub enum Value {
    Null,
    Str(String),
    BigInt(i64),
    Int(i32),
    Double(f64),
    Bool(bool),
    Timestamp(DateTime<Utc>),
}

impl Value {
    pub fn str(s: impl Into<String>) -> Self {
        Value::Str(s.into())
    }

    pub fn opt_timestamp(t: Option<DateTime<Utc>>) -> Self {
        t.map_or(Value::Null, Value::Timestamp)
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_bigint(&self) -> Option<i64> {
        match self {
            Value::BigInt(n) => Some(*n),
            _ => None,
        }
    }

    pub fn as_timestamp(&self) -> Option<DateTime<Utc>> {
        match self {
            Value::Timestamp(t) => Some(*t),
            _ => None,
        }
    }
}

/// An id or count of a record as a `bigint`, or why it cannot be one.
pub fn bigint(field: &'static str, n: u64) -> Result<Value, tally_engine::Rejection> {
    i64::try_from(n)
        .map(Value::BigInt)
        .map_err(|_| tally_engine::Rejection::InvalidField {
            field,
            reason: format!("{n} does not fit a bigint"),
        })
}

/// One row: a value per column of its table, in the table's order.
pub type Row = Vec<Value>;

fn wrong(table: &Table, column: &str, v: &Value) -> LakeError {
    LakeError::Schema(format!("{}.{column} cannot hold {v:?}", table.name))
}

/// The values of column `i` as `T` (`None` for nulls), or an error naming the first that is not
/// of the column's type.
fn typed<'a, T>(
    table: &Table, column: &Column, rows: &'a [Row], i: usize,
    pick: impl Fn(&'a Value) -> Option<T>,
) -> Result<Vec<Option<T>>, LakeError> {
    rows.iter()
        .map(|r| match r.get(i).unwrap_or(&Value::Null) {
            Value::Null => Ok(None),
            v => pick(v)
                .map(Some)
                .ok_or_else(|| wrong(table, column.name, v)),
        })
        .collect()
}

/// Rows as one Arrow batch of the table's schema.
pub fn to_batch(table: &Table, rows: &[Row]) -> Result<RecordBatch, LakeError> {
    let mut arrays: Vec<ArrayRef> = Vec::with_capacity(table.columns.len());
    for (i, column) in table.columns.iter().enumerate() {
        // One Arrow array type per column type, filled from the values of one variant.
        macro_rules! array {
            ($array:ty, $variant:pat => $value:expr) => {
                Arc::new(<$array>::from(typed(
                    table,
                    column,
                    rows,
                    i,
                    |v| match v {
                        $variant => Some($value),
                        _ => None,
                    },
                )?))
            };
        }
        arrays.push(match column.kind {
            ColumnType::String => array!(StringArray, Value::Str(s) => s.as_str()),
            ColumnType::BigInt => array!(Int64Array, Value::BigInt(n) => *n),
            ColumnType::Int => array!(Int32Array, Value::Int(n) => *n),
            ColumnType::Double => array!(Float64Array, Value::Double(n) => *n),
            ColumnType::Boolean => array!(BooleanArray, Value::Bool(b) => *b),
            ColumnType::Timestamp => {
                array!(TimestampMillisecondArray, Value::Timestamp(t) => t.timestamp_millis())
            }
        });
    }
    RecordBatch::try_new(table.schema(), arrays).map_err(|e| LakeError::Schema(e.to_string()))
}

/// A batch of the table's schema back to rows.
pub fn from_batch(table: &Table, batch: &RecordBatch) -> Result<Vec<Row>, LakeError> {
    let mut rows = vec![Vec::with_capacity(table.columns.len()); batch.num_rows()];
    for column in table.columns {
        let array = batch.column_by_name(column.name).ok_or_else(|| {
            LakeError::Schema(format!("{} has no column {}", table.name, column.name))
        })?;
        let missing =
            || LakeError::Schema(format!("{}.{} has another type", table.name, column.name));
        for (i, row) in rows.iter_mut().enumerate() {
            // The value at `i` of the column's Arrow array type, as a `Value`.
            macro_rules! value {
                ($array:ty, $wrap:expr) => {
                    ($wrap)(
                        array
                            .as_any()
                            .downcast_ref::<$array>()
                            .ok_or_else(missing)?
                            .value(i),
                    )
                };
            }
            row.push(if array.is_null(i) {
                Value::Null
            } else {
                match column.kind {
                    ColumnType::String => value!(StringArray, Value::str),
                    ColumnType::BigInt => value!(Int64Array, Value::BigInt),
                    ColumnType::Int => value!(Int32Array, Value::Int),
                    ColumnType::Double => value!(Float64Array, Value::Double),
                    ColumnType::Boolean => value!(BooleanArray, Value::Bool),
                    ColumnType::Timestamp => value!(TimestampMillisecondArray, |ms| {
                        Value::opt_timestamp(DateTime::from_timestamp_millis(ms))
                    }),
                }
            });
        }
    }
    Ok(rows)
}

/// Rows as a Parquet file (Snappy).
pub fn write_parquet(table: &Table, rows: &[Row]) -> Result<Vec<u8>, LakeError> {
    let batch = to_batch(table, rows)?;
    let props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_created_by("tally lake".to_string())
        .build();
    let mut out = Vec::new();
    let mut writer = ArrowWriter::try_new(&mut out, table.schema(), Some(props))
        .map_err(|e| LakeError::Parquet(e.to_string()))?;
    writer
        .write(&batch)
        .map_err(|e| LakeError::Parquet(e.to_string()))?;
    writer
        .close()
        .map_err(|e| LakeError::Parquet(e.to_string()))?;
    Ok(out)
}

/// A Parquet file of the table back to rows.
pub fn read_parquet(table: &Table, data: Vec<u8>) -> Result<Vec<Row>, LakeError> {
    let reader = ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(data))
        .and_then(|b| b.build())
        .map_err(|e| LakeError::Parquet(e.to_string()))?;
    let mut rows = Vec::new();
    for batch in reader {
        let batch = batch.map_err(|e| LakeError::Parquet(e.to_string()))?;
        rows.extend(from_batch(table, &batch)?);
    }
    Ok(rows)
}

/// A Parquet file's rows and the compressed bytes of each column's chunks, from its footer alone:
/// what Athena reads of the file for a query of those columns.
pub fn column_bytes(data: Vec<u8>) -> Result<(u64, Vec<(String, u64)>), LakeError> {
    let builder = ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(data))
        .map_err(|e| LakeError::Parquet(e.to_string()))?;
    let meta = builder.metadata();
    let mut columns: Vec<(String, u64)> = meta
        .file_metadata()
        .schema_descr()
        .columns()
        .iter()
        .map(|c| (c.name().to_string(), 0))
        .collect();
    for group in meta.row_groups() {
        for (i, chunk) in group.columns().iter().enumerate() {
            columns[i].1 += chunk.compressed_size().max(0) as u64;
        }
    }
    Ok((meta.file_metadata().num_rows().max(0) as u64, columns))
}
