//! A table of the lake, defined once: the Parquet files are written with its Arrow schema, the Glue
//! catalog in template.yaml has its columns (a test compares them), and `tally sql` builds its
//! local views from it.

use std::sync::Arc;

use arrow_schema::{DataType, Field, Schema, TimeUnit};

/// A column's type, as Parquet, Glue (Athena) and DuckDB each name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnType {
    String,
    BigInt,
    Int,
    Double,
    Boolean,
    /// UTC, millisecond precision, stored without a zone so that Athena and DuckDB both read it as
    /// a plain `timestamp` holding UTC wall-clock time.
    Timestamp,
}

impl ColumnType {
    pub fn arrow(self) -> DataType {
        match self {
            ColumnType::String => DataType::Utf8,
            ColumnType::BigInt => DataType::Int64,
            ColumnType::Int => DataType::Int32,
            ColumnType::Double => DataType::Float64,
            ColumnType::Boolean => DataType::Boolean,
            ColumnType::Timestamp => DataType::Timestamp(TimeUnit::Millisecond, None),
        }
    }

    /// The type of a Glue (Hive) type name; in a constant, an unknown name fails the build.
    pub const fn glue_named(name: &str) -> Self {
        match name.as_bytes() {
            b"string" => ColumnType::String,
            b"bigint" => ColumnType::BigInt,
            b"int" => ColumnType::Int,
            b"double" => ColumnType::Double,
            b"boolean" => ColumnType::Boolean,
            b"timestamp" => ColumnType::Timestamp,
            _ => panic!(
                "not a Glue type tally uses: string, bigint, int, double, boolean, timestamp"
            ),
        }
    }

    /// The Glue (Hive) type name.
    pub fn glue(self) -> &'static str {
        match self {
            ColumnType::String => "string",
            ColumnType::BigInt => "bigint",
            ColumnType::Int => "int",
            ColumnType::Double => "double",
            ColumnType::Boolean => "boolean",
            ColumnType::Timestamp => "timestamp",
        }
    }

    /// The Trino type name (Athena's engine), as an Athena view declares its columns.
    pub fn trino(self) -> &'static str {
        match self {
            ColumnType::String => "varchar",
            ColumnType::BigInt => "bigint",
            ColumnType::Int => "integer",
            ColumnType::Double => "double",
            ColumnType::Boolean => "boolean",
            ColumnType::Timestamp => "timestamp(3)",
        }
    }

    /// The DuckDB type name (the local engine of `tally sql`).
    pub fn duckdb(self) -> &'static str {
        match self {
            ColumnType::String => "VARCHAR",
            ColumnType::BigInt => "BIGINT",
            ColumnType::Int => "INTEGER",
            ColumnType::Double => "DOUBLE",
            ColumnType::Boolean => "BOOLEAN",
            ColumnType::Timestamp => "TIMESTAMP",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Column {
    pub name: &'static str,
    pub kind: ColumnType,
}

/// A column, shortly: `col("member_id", BigInt)`.
pub const fn col(name: &'static str, kind: ColumnType) -> Column {
    Column { name, kind }
}

/// A table's columns as its DDL names them, with the Glue (Athena) types:
/// `columns!(member_id bigint, member_name string, mtime timestamp)`.
#[macro_export]
macro_rules! columns {
    ($($name:ident $kind:ident),* $(,)?) => {
        &[$($crate::table::col(stringify!($name), $crate::table::ColumnType::glue_named(stringify!($kind)))),*]
    };
}

/// Which of two rows with the same id a merge keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keep {
    /// The one with the smallest value of this column (the first time an alert was published).
    Earliest(&'static str),
    /// The one with the largest value of this column (an entity's latest version).
    Latest(&'static str),
    /// Every row of the id's latest `version`, one per `member`: a set that belongs to an entity
    /// (a group's topics) and is replaced whole by a newer version of it.
    LatestSet {
        version: &'static str,
        member: &'static str,
    },
    /// The one with the largest `last` (an entity's latest attributes), holding the smallest
    /// `first` of them all: when it was first and last seen (a device).
    Span {
        first: &'static str,
        last: &'static str,
    },
    /// Every version of the id, one per `from` (when it began), as a type-2 dimension keeps
    /// them: `to` is when the next version began (null for the current one) and `current` says
    /// which one is, both made on read, so a new version never rewrites the one before.
    Versions {
        from: &'static str,
        to: &'static str,
        current: &'static str,
    },
}

/// How a table's files are laid out, and so how it stays right when conversions run again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// One file per raw object, in the raw object's `dt` partition, named after it: converting an
    /// object again replaces its file. Every raw line is a row.
    PerRawObject,
    /// Unique by `id` (the columns that together identify a row) within each `dt` partition, the
    /// UTC day of the row's timestamp column `day` (every copy of a row has the same day, so
    /// meets the others there). Merged on read: a conversion adds a file of its new rows, the
    /// table's view keeps one row per id as `keep` says, and compaction merges small files
    /// (`compaction.rs`).
    UniqueByDay {
        id: &'static [&'static str],
        keep: Keep,
        day: &'static str,
    },
    /// Unique by `id` across the whole table, for rows that have no day of their own (an
    /// entity's versions, an alert's publications); merged on read as `UniqueByDay`.
    Unique {
        id: &'static [&'static str],
        keep: Keep,
    },
    /// Written whole by a batch job that computes it from other tables (one file, replaced).
    Replaced,
}

impl Layout {
    /// The id and which row of an id is kept, for tables unique by an id.
    pub fn unique(&self) -> Option<(&'static [&'static str], Keep)> {
        match *self {
            Layout::UniqueByDay { id, keep, .. } | Layout::Unique { id, keep } => Some((id, keep)),
            Layout::PerRawObject | Layout::Replaced => None,
        }
    }
}

/// A curated table: Parquet (Snappy) under `lake/<name>/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Table {
    pub name: &'static str,
    pub description: &'static str,
    pub columns: &'static [Column],
    pub layout: Layout,
}

impl Table {
    /// Hive-style partition columns (not stored in the files).
    pub fn partition_keys(&self) -> &'static [&'static str] {
        match self.layout {
            Layout::PerRawObject | Layout::UniqueByDay { .. } => &["dt"],
            Layout::Unique { .. } | Layout::Replaced => &[],
        }
    }

    pub fn prefix(&self) -> String {
        format!("lake/{}/", self.name)
    }

    pub fn schema(&self) -> Arc<Schema> {
        Arc::new(Schema::new(
            self.columns
                .iter()
                .map(|c| Field::new(c.name, c.kind.arrow(), true))
                .collect::<Vec<_>>(),
        ))
    }

    pub fn column(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == name)
    }

    /// `row`'s value of the column `name`, which the table must have (a reader's own mistake
    /// otherwise).
    pub fn value<'r>(&self, row: &'r crate::rows::Row, name: &str) -> &'r crate::rows::Value {
        let i = self
            .column(name)
            .unwrap_or_else(|| panic!("{} has no column {name}", self.name));
        &row[i]
    }

    /// For a table unique by an id, the name of the table of its files as written (where an id
    /// may still have several rows until compaction): `fact_events_files`. The table's own name
    /// is then a view of it ([`Table::view_sql`]).
    pub fn files_name(&self) -> Option<String> {
        self.layout.unique().map(|_| format!("{}_files", self.name))
    }

    /// For a table unique by an id, the query of its view: each id's row as `keep` says, over
    /// the table of its files. One text for Athena (Trino) and DuckDB: window functions in a
    /// subquery (Trino has no `QUALIFY`), every identifier quoted. The windows are partitioned
    /// by `dt` first, so a query's `dt` filter still prunes partitions through the view; they
    /// order by the id and `keep`'s columns only, so a query still reads only its own columns.
    pub fn view_sql(&self) -> Option<String> {
        let (id, keep) = self.layout.unique()?;
        let files = self.files_name()?;
        let q = |c: &str| format!("\"{c}\"");
        let mut columns: Vec<&str> = self.columns.iter().map(|c| c.name).collect();
        columns.extend(self.partition_keys());
        let mut over: Vec<String> = self.partition_keys().iter().map(|k| q(k)).collect();
        over.extend(id.iter().map(|c| q(c)));
        let over = over.join(", ");
        let list = |cols: &[&str]| cols.iter().map(|c| q(c)).collect::<Vec<_>>().join(", ");
        let inner = list(&columns);
        let (outer, windows, filter) = match keep {
            Keep::Earliest(by) | Keep::Latest(by) => {
                let order = if matches!(keep, Keep::Earliest(_)) { "ASC" } else { "DESC" };
                (
                    inner.clone(),
                    format!(
                        "row_number() OVER (PARTITION BY {over} ORDER BY {} {order} NULLS LAST) AS \"tally_copy\"",
                        q(by)
                    ),
                    "\"tally_copy\" = 1".to_string(),
                )
            }
            Keep::LatestSet { version, member } => (
                inner.clone(),
                format!(
                    "max({v}) OVER (PARTITION BY {over}) AS \"tally_newest\", row_number() OVER (PARTITION BY {over}, {m}, {v}) AS \"tally_copy\"",
                    v = q(version),
                    m = q(member)
                ),
                format!("{} = \"tally_newest\" AND \"tally_copy\" = 1", q(version)),
            ),
            Keep::Versions { from, to, current } => {
                let next = format!(
                    "lead({f}) OVER (PARTITION BY {over} ORDER BY {f})",
                    f = q(from)
                );
                (
                    columns
                        .iter()
                        .map(|c| {
                            if *c == to {
                                format!("{next} AS {}", q(c))
                            } else if *c == current {
                                format!("({next} IS NULL) AS {}", q(c))
                            } else {
                                q(c)
                            }
                        })
                        .collect::<Vec<_>>()
                        .join(", "),
                    format!(
                        "row_number() OVER (PARTITION BY {over}, {f}) AS \"tally_copy\"",
                        f = q(from)
                    ),
                    "\"tally_copy\" = 1".to_string(),
                )
            }
            Keep::Span { first, last } => (
                columns
                    .iter()
                    .map(|c| {
                        if *c == first {
                            format!("\"tally_first\" AS {}", q(c))
                        } else {
                            q(c)
                        }
                    })
                    .collect::<Vec<_>>()
                    .join(", "),
                format!(
                    "min({f}) OVER (PARTITION BY {over}) AS \"tally_first\", row_number() OVER (PARTITION BY {over} ORDER BY {l} DESC NULLS LAST) AS \"tally_copy\"",
                    f = q(first),
                    l = q(last)
                ),
                "\"tally_copy\" = 1".to_string(),
            ),
        };
        Some(format!(
            "SELECT {outer} FROM (SELECT {inner}, {windows} FROM \"{files}\") AS \"tally_copies\" WHERE {filter}"
        ))
    }
}

/// A raw line as a row of a curated table, or why it cannot be one.
pub type Converter =
    fn(&[u8], &crate::raw::RawObject) -> Result<crate::rows::Row, tally_engine::Rejection>;

/// A raw line normalized into rows of several tables (each entity it names once), or why it
/// cannot be.
pub type Normalizer =
    fn(
        &[u8],
        &crate::raw::RawObject,
    ) -> Result<Vec<(&'static Table, crate::rows::Row)>, tally_engine::Rejection>;

/// What the lines of a raw table become.
#[derive(Debug, Clone, Copy)]
pub enum Curated {
    /// Nothing: the stream is archived only.
    Archived,
    /// One row of one table a line.
    Rows(&'static Table, Converter),
    /// Rows of several tables a line (third normal form).
    Normalized(Normalizer),
}

impl Curated {
    /// The rows a line becomes.
    pub fn rows(
        &self, line: &[u8], raw: &crate::raw::RawObject,
    ) -> Result<Vec<(&'static Table, crate::rows::Row)>, tally_engine::Rejection> {
        match self {
            Curated::Archived => Ok(Vec::new()),
            Curated::Rows(table, convert) => Ok(vec![(*table, convert(line, raw)?)]),
            Curated::Normalized(normalize) => normalize(line, raw),
        }
    }
}

/// A raw table: an archived stream as it was received, one JSON record a line (GZIP), under
/// `raw/<stream>/dt=<arrival day>/`. Its columns are the record's fields, read as JSON.
#[derive(Debug, Clone, Copy)]
pub struct RawTable {
    /// `raw_visits`.
    pub name: &'static str,
    /// The folder under `raw/`: `visits`.
    pub stream: &'static str,
    pub columns: &'static [Column],
    /// Columns whose JSON field has another name (`window_start` <- `window.start`).
    pub fields: &'static [(&'static str, &'static str)],
    /// What its lines become.
    pub curated: Curated,
}

impl RawTable {
    pub fn prefix(&self) -> String {
        format!("raw/{}/", self.stream)
    }

    /// The JSON field a column reads.
    pub fn field(&self, column: &str) -> &'static str {
        self.fields
            .iter()
            .find(|(c, _)| *c == column)
            .map(|(_, f)| *f)
            .or_else(|| {
                self.columns
                    .iter()
                    .find(|c| c.name == column)
                    .map(|c| c.name)
            })
            .unwrap_or("")
    }
}

/// Tables made when the process starts: a curated table and its raw table each.
pub type GeneratedTables = fn() -> Vec<(&'static Table, &'static RawTable)>;

/// A pipeline's part of the lake: its curated tables and the raw tables of the streams it
/// archives, declared beside the code that fills them.
pub struct PipelineTables {
    /// The pipeline (or `lake`, for the lake's own tables): its queries are under
    /// `queries/<pipeline>/`, and its application's template declares the Glue tables.
    pub pipeline: &'static str,
    pub curated: &'static [&'static Table],
    pub raw: &'static [RawTable],
    /// Tables known only when the process starts (one curated and one raw table per event type),
    /// listed after the fixed ones.
    pub generated: Option<GeneratedTables>,
}

impl PipelineTables {
    pub fn curated_tables(&'static self) -> Vec<&'static Table> {
        let generated = self.generated.map(|made| made()).unwrap_or_default();
        let mut all = self.curated.to_vec();
        all.extend(generated.into_iter().map(|(curated, _)| curated));
        all
    }

    pub fn raw_tables(&'static self) -> Vec<&'static RawTable> {
        let generated = self.generated.map(|made| made()).unwrap_or_default();
        let mut all: Vec<&'static RawTable> = self.raw.iter().collect();
        all.extend(generated.into_iter().map(|(_, raw)| raw));
        all
    }
}
