//! The core database's tables and how each row becomes a version of its dimension: what is
//! checked (a row that fails is a bad row, with its reason) and what is cleaned (spaces trimmed,
//! categories in lower case, countries in upper case).

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use tally_lake::core_dims::{DIM_FLYER, DIM_USER, DIM_VENDOR};
use tally_lake::rows::{Row, Value};
use tally_lake::Table;

use crate::{SourceRow, DATETIME};

/// Why a row is not used: a `bad_records` reason code and a one-line reason.
pub type Refusal = (&'static str, String);

pub struct SourceTable {
    /// The table in the core database.
    pub name: &'static str,
    /// What is read, `updated_at` last; the first is the key.
    pub columns: &'static [&'static str],
    pub dim: &'static Table,
    pub clean: fn(&SourceRow) -> Result<Row, Refusal>,
}

impl SourceTable {
    /// A row's id in `bad_records` and in file names: table, key and `updated_at`.
    pub fn row_id(&self, row: &SourceRow) -> String {
        let text = |i: usize| row.get(i).cloned().flatten().unwrap_or_default();
        format!(
            "core:{}:{}:{}",
            self.name,
            text(0),
            text(self.columns.len() - 1)
        )
    }

    /// A row as a line of text (`bad_records.data`): its columns as JSON.
    pub fn as_text(&self, row: &SourceRow) -> String {
        let fields: serde_json::Map<String, serde_json::Value> = self
            .columns
            .iter()
            .zip(row)
            .map(|(c, v)| {
                (
                    c.to_string(),
                    v.clone().map_or(serde_json::Value::Null, Into::into),
                )
            })
            .collect();
        serde_json::Value::Object(fields).to_string()
    }

    /// The row's `updated_at`, when it has a valid one.
    pub fn updated_at(&self, row: &SourceRow) -> Option<DateTime<Utc>> {
        parse_time(row.get(self.columns.len() - 1)?.as_deref()?).ok()
    }
}

pub const SOURCES: &[SourceTable] = &[
    SourceTable {
        name: "vendors",
        columns: &["vendor_id", "name", "category", "updated_at"],
        dim: &DIM_VENDOR,
        clean: vendor,
    },
    SourceTable {
        name: "flyers",
        columns: &[
            "flyer_id",
            "vendor_id",
            "title",
            "valid_from",
            "valid_to",
            "updated_at",
        ],
        dim: &DIM_FLYER,
        clean: flyer,
    },
    SourceTable {
        name: "users",
        columns: &["user_id", "country", "signup_at", "updated_at"],
        dim: &DIM_USER,
        clean: user,
    },
];

fn missing(field: &str) -> Refusal {
    ("missing_field", format!("missing field {field}"))
}

fn invalid(field: &str, why: impl std::fmt::Display) -> Refusal {
    ("invalid_field", format!("invalid field {field}: {why}"))
}

/// A column's text, trimmed; `None` when null or blank.
fn text(row: &SourceRow, i: usize) -> Option<String> {
    row.get(i)?
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

fn parse_time(s: &str) -> Result<DateTime<Utc>, String> {
    NaiveDateTime::parse_from_str(s.trim(), DATETIME)
        .or_else(|_| NaiveDateTime::parse_from_str(s.trim(), "%Y-%m-%d %H:%M:%S"))
        .map(|t| t.and_utc())
        .map_err(|e| format!("{s:?} is not a date and time: {e}"))
}

fn time(row: &SourceRow, i: usize, field: &str) -> Result<DateTime<Utc>, Refusal> {
    let s = text(row, i).ok_or_else(|| missing(field))?;
    parse_time(&s).map_err(|e| invalid(field, e))
}

fn date(row: &SourceRow, i: usize, field: &str) -> Result<Option<DateTime<Utc>>, Refusal> {
    let Some(s) = text(row, i) else {
        return Ok(None);
    };
    NaiveDate::parse_from_str(&s, "%Y-%m-%d")
        .map(|d| Some(d.and_time(chrono::NaiveTime::MIN).and_utc()))
        .map_err(|e| invalid(field, format!("{s:?} is not a date: {e}")))
}

fn id(row: &SourceRow, i: usize, field: &str) -> Result<i64, Refusal> {
    let s = text(row, i).ok_or_else(|| missing(field))?;
    s.parse().map_err(|e| invalid(field, format!("{s:?}: {e}")))
}

/// The version's bookkeeping: it starts at `updated_at`; its end and whether it is current are
/// made on read.
fn version(updated_at: DateTime<Utc>) -> [Value; 3] {
    [Value::Timestamp(updated_at), Value::Null, Value::Null]
}

fn vendor(row: &SourceRow) -> Result<Row, Refusal> {
    let vendor_id = id(row, 0, "vendor_id")?;
    let name = text(row, 1).ok_or_else(|| missing("name"))?;
    if name.chars().count() > 200 {
        return Err(invalid("name", "longer than 200 characters"));
    }
    let category = text(row, 2).map(|c| c.to_lowercase());
    let updated_at = time(row, 3, "updated_at")?;
    let mut out = vec![
        Value::BigInt(vendor_id),
        Value::Str(name),
        category.map_or(Value::Null, Value::Str),
    ];
    out.extend(version(updated_at));
    Ok(out)
}

fn flyer(row: &SourceRow) -> Result<Row, Refusal> {
    let flyer_id = id(row, 0, "flyer_id")?;
    let vendor_id = id(row, 1, "vendor_id")?;
    let title = text(row, 2).ok_or_else(|| missing("title"))?;
    let valid_from = date(row, 3, "valid_from")?;
    let valid_to = date(row, 4, "valid_to")?;
    if let (Some(from), Some(to)) = (valid_from, valid_to) {
        if from > to {
            return Err(invalid(
                "valid_from",
                format!(
                    "{} is after valid_to {}",
                    from.date_naive(),
                    to.date_naive()
                ),
            ));
        }
    }
    let updated_at = time(row, 5, "updated_at")?;
    let mut out = vec![
        Value::BigInt(flyer_id),
        Value::BigInt(vendor_id),
        Value::Str(title),
        valid_from.map_or(Value::Null, Value::Timestamp),
        valid_to.map_or(Value::Null, Value::Timestamp),
    ];
    out.extend(version(updated_at));
    Ok(out)
}

fn user(row: &SourceRow) -> Result<Row, Refusal> {
    let user_id = text(row, 0).ok_or_else(|| missing("user_id"))?;
    let country = match text(row, 1) {
        None => None,
        Some(c) if c.len() == 2 && c.chars().all(|c| c.is_ascii_alphabetic()) => {
            Some(c.to_ascii_uppercase())
        }
        Some(c) => {
            return Err(invalid(
                "country",
                format!("{c:?} is not a two-letter code"),
            ))
        }
    };
    let signup_at = match text(row, 2) {
        None => None,
        Some(_) => Some(time(row, 2, "signup_at")?),
    };
    let updated_at = time(row, 3, "updated_at")?;
    let mut out = vec![
        Value::Str(user_id),
        country.map_or(Value::Null, Value::Str),
        signup_at.map_or(Value::Null, Value::Timestamp),
    ];
    out.extend(version(updated_at));
    Ok(out)
}
