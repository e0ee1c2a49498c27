//! Rows of a table as plain values, and Parquet files of them (Snappy), both ways.

use std::sync::Arc;

use arrow_array::builder::{
    BooleanBuilder, Float64Builder, Int32Builder, Int64Builder, StringBuilder,
    TimestampMillisecondBuilder,
};
use arrow_array::{
    Array, ArrayRef, BooleanArray, Float64Array, Int32Array, Int64Array, RecordBatch, StringArray,
    TimestampMillisecondArray,
};
use chrono::{DateTime, Utc};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;

use crate::table::{ColumnType, Table};
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

/// Rows as one Arrow batch of the table's schema.
pub fn to_batch(table: &Table, rows: &[Row]) -> Result<RecordBatch, LakeError> {
    let mut arrays: Vec<ArrayRef> = Vec::with_capacity(table.columns.len());
    for (i, column) in table.columns.iter().enumerate() {
        let values = rows.iter().map(|r| r.get(i).unwrap_or(&Value::Null));
        let array: ArrayRef = match column.kind {
            ColumnType::String => {
                let mut b = StringBuilder::new();
                for v in values {
                    match v {
                        Value::Null => b.append_null(),
                        Value::Str(s) => b.append_value(s),
                        other => return Err(wrong(table, column.name, other)),
                    }
                }
                Arc::new(b.finish())
            }
            ColumnType::BigInt => {
                let mut b = Int64Builder::new();
                for v in values {
                    match v {
                        Value::Null => b.append_null(),
                        Value::BigInt(n) => b.append_value(*n),
                        other => return Err(wrong(table, column.name, other)),
                    }
                }
                Arc::new(b.finish())
            }
            ColumnType::Int => {
                let mut b = Int32Builder::new();
                for v in values {
                    match v {
                        Value::Null => b.append_null(),
                        Value::Int(n) => b.append_value(*n),
                        other => return Err(wrong(table, column.name, other)),
                    }
                }
                Arc::new(b.finish())
            }
            ColumnType::Double => {
                let mut b = Float64Builder::new();
                for v in values {
                    match v {
                        Value::Null => b.append_null(),
                        Value::Double(n) => b.append_value(*n),
                        other => return Err(wrong(table, column.name, other)),
                    }
                }
                Arc::new(b.finish())
            }
            ColumnType::Boolean => {
                let mut b = BooleanBuilder::new();
                for v in values {
                    match v {
                        Value::Null => b.append_null(),
                        Value::Bool(x) => b.append_value(*x),
                        other => return Err(wrong(table, column.name, other)),
                    }
                }
                Arc::new(b.finish())
            }
            ColumnType::Timestamp => {
                let mut b = TimestampMillisecondBuilder::new();
                for v in values {
                    match v {
                        Value::Null => b.append_null(),
                        Value::Timestamp(t) => b.append_value(t.timestamp_millis()),
                        other => return Err(wrong(table, column.name, other)),
                    }
                }
                Arc::new(b.finish())
            }
        };
        arrays.push(array);
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
            let v = if array.is_null(i) {
                Value::Null
            } else {
                match column.kind {
                    ColumnType::String => Value::Str(
                        array
                            .as_any()
                            .downcast_ref::<StringArray>()
                            .ok_or_else(missing)?
                            .value(i)
                            .to_string(),
                    ),
                    ColumnType::BigInt => Value::BigInt(
                        array
                            .as_any()
                            .downcast_ref::<Int64Array>()
                            .ok_or_else(missing)?
                            .value(i),
                    ),
                    ColumnType::Int => Value::Int(
                        array
                            .as_any()
                            .downcast_ref::<Int32Array>()
                            .ok_or_else(missing)?
                            .value(i),
                    ),
                    ColumnType::Double => Value::Double(
                        array
                            .as_any()
                            .downcast_ref::<Float64Array>()
                            .ok_or_else(missing)?
                            .value(i),
                    ),
                    ColumnType::Boolean => Value::Bool(
                        array
                            .as_any()
                            .downcast_ref::<BooleanArray>()
                            .ok_or_else(missing)?
                            .value(i),
                    ),
                    ColumnType::Timestamp => {
                        let ms = array
                            .as_any()
                            .downcast_ref::<TimestampMillisecondArray>()
                            .ok_or_else(missing)?
                            .value(i);
                        Value::opt_timestamp(DateTime::from_timestamp_millis(ms))
                    }
                }
            };
            row.push(v);
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
