//! The lake as the CLI sees it: each pipeline's Glue tables and named queries made from the
//! tables' definitions and `queries/` (`tally catalog`), and the local views `tally sql` queries, over a copy of the local
//! cloud's lake.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use tally_lake::{raw_tables, tables, RawTable, Table};

/// The logical id of a table's `AWS::Glue::Table` in template.yaml: `visits` -> `VisitsTable`,
/// `raw_visits` -> `RawVisitsTable`.
pub fn logical_id(table: &str) -> String {
    let mut id: String = table
        .split('_')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect();
    id.push_str("Table");
    id
}

fn projection(s: &mut String, table: &str, folder: &str) {
    let _ = writeln!(s, "          projection.enabled: \"true\"");
    let _ = writeln!(s, "          projection.dt.type: date");
    let _ = writeln!(s, "          projection.dt.format: yyyy-MM-dd");
    let _ = writeln!(s, "          projection.dt.range: 2020-01-01,NOW");
    let _ = writeln!(s, "          projection.dt.interval: \"1\"");
    let _ = writeln!(s, "          projection.dt.interval.unit: DAYS");
    let _ = writeln!(
        s,
        "          storage.location.template: !Sub \"s3://${{ArchiveBucket}}/{folder}/{table}/dt=${{!dt}}/\""
    );
}

fn columns(s: &mut String, columns: &[tally_lake::Column]) {
    let _ = writeln!(s, "          Columns:");
    for c in columns {
        let _ = writeln!(
            s,
            "            - {{ Name: {}, Type: {} }}",
            c.name,
            c.kind.glue()
        );
    }
}

/// One Glue table as the template declares it: a curated table (Parquet under `lake/`) or a raw
/// one (GZIP JSON lines under `raw/`, read with the OpenX SerDe).
struct GlueTable<'a> {
    name: &'a str,
    description: String,
    classification: &'a str,
    /// Its objects are under `<folder>/<location>/` (`lake/<table>`, `raw/<stream>`), in `dt=`
    /// partitions when it is partitioned.
    folder: &'a str,
    location: &'a str,
    partitioned: bool,
    /// Input format, output format, SerDe.
    formats: [&'a str; 3],
    serde_parameters: Vec<(String, String)>,
    columns: &'a [tally_lake::Column],
}

const PARQUET: [&str; 3] = [
    "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
    "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
    "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe",
];

const JSON_LINES: [&str; 3] = [
    "org.apache.hadoop.mapred.TextInputFormat",
    "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat",
    "org.openx.data.jsonserde.JsonSerDe",
];

impl GlueTable<'_> {
    fn yaml(&self, s: &mut String) {
        let [input, output, serde] = self.formats;
        let _ = writeln!(s, "  {}:", logical_id(self.name));
        let _ = writeln!(s, "    Type: AWS::Glue::Table");
        let _ = writeln!(s, "    Properties:");
        let _ = writeln!(s, "      CatalogId: !Ref AWS::AccountId");
        let _ = writeln!(s, "      DatabaseName: !Ref LakeDatabase");
        let _ = writeln!(s, "      TableInput:");
        let _ = writeln!(s, "        Name: {}", self.name);
        let _ = writeln!(s, "        Description: \"{}\"", self.description);
        let _ = writeln!(s, "        TableType: EXTERNAL_TABLE");
        let _ = writeln!(s, "        Parameters:");
        let _ = writeln!(s, "          classification: {}", self.classification);
        if self.partitioned {
            projection(s, self.location, self.folder);
            let _ = writeln!(s, "        PartitionKeys:");
            let _ = writeln!(s, "          - {{ Name: dt, Type: string }}");
        }
        let _ = writeln!(s, "        StorageDescriptor:");
        let (folder, location) = (self.folder, self.location);
        let _ = writeln!(
            s,
            "          Location: !Sub \"s3://${{ArchiveBucket}}/{folder}/{location}/\""
        );
        let _ = writeln!(s, "          InputFormat: {input}");
        let _ = writeln!(s, "          OutputFormat: {output}");
        let _ = writeln!(s, "          SerdeInfo:");
        let _ = writeln!(s, "            SerializationLibrary: {serde}");
        if !self.serde_parameters.is_empty() {
            let _ = writeln!(s, "            Parameters:");
            for (key, value) in &self.serde_parameters {
                let _ = writeln!(s, "              {key}: \"{value}\"");
            }
        }
        columns(s, self.columns);
        let _ = writeln!(s);
    }
}

/// A curated table's Glue tables: the table of its Parquet files, and for a table unique by an id
/// (whose files may hold an id more than once until compaction) the view of each id once under the
/// table's own name. Returns their logical ids.
fn curated_yaml(s: &mut String, t: &Table) -> Vec<String> {
    let files_name = t.files_name();
    let description = match &files_name {
        Some(_) => format!(
            "The Parquet files of {} as written: an id may have several rows until compaction merges them. Query {} instead.",
            t.name, t.name
        ),
        None => t.description.replace('"', "'"),
    };
    let name = files_name.as_deref().unwrap_or(t.name);
    GlueTable {
        name,
        description,
        classification: "parquet",
        folder: "lake",
        location: t.name,
        partitioned: !t.partition_keys().is_empty(),
        formats: PARQUET,
        serde_parameters: Vec::new(),
        columns: t.columns,
    }
    .yaml(s);
    let mut ids = vec![logical_id(name)];
    if let Some(sql) = t.view_sql() {
        view_yaml(s, t, &sql);
        ids.push(logical_id(t.name));
    }
    ids
}

/// A view's columns: the table's, then its partition keys (text), as (name, Glue type, Trino type).
pub fn view_columns(t: &Table) -> Vec<(String, &'static str, &'static str)> {
    let mut out: Vec<_> = t
        .columns
        .iter()
        .map(|c| (c.name.to_string(), c.kind.glue(), c.kind.trino()))
        .collect();
    out.extend(
        t.partition_keys()
            .iter()
            .map(|k| (k.to_string(), "string", "varchar")),
    );
    out
}

/// The text an Athena view is stored as in Glue (a Trino view: its definition as base64 JSON),
/// with `${LakeDatabase}` for the database, as `Fn::Sub` resolves it.
pub fn presto_view_json(t: &Table, sql: &str) -> String {
    let columns: Vec<serde_json::Value> = view_columns(t)
        .into_iter()
        .map(|(name, _, trino)| serde_json::json!({ "name": name, "type": trino }))
        .collect();
    serde_json::json!({
        "originalSql": sql,
        "catalog": "awsdatacatalog",
        "schema": "${LakeDatabase}",
        "columns": columns,
        "owner": "tally",
        "runAsInvoker": false,
        "properties": {},
    })
    .to_string()
}

/// A table unique by an id as an Athena view (Glue `VIRTUAL_VIEW`) of its files table.
fn view_yaml(s: &mut String, t: &Table, sql: &str) {
    let _ = writeln!(s, "  {}:", logical_id(t.name));
    let _ = writeln!(s, "    Type: AWS::Glue::Table");
    let _ = writeln!(s, "    Properties:");
    let _ = writeln!(s, "      CatalogId: !Ref AWS::AccountId");
    let _ = writeln!(s, "      DatabaseName: !Ref LakeDatabase");
    let _ = writeln!(s, "      TableInput:");
    let _ = writeln!(s, "        Name: {}", t.name);
    let _ = writeln!(
        s,
        "        Description: \"{}\"",
        t.description.replace('"', "'")
    );
    let _ = writeln!(s, "        TableType: VIRTUAL_VIEW");
    let _ = writeln!(s, "        Parameters:");
    let _ = writeln!(s, "          presto_view: \"true\"");
    let _ = writeln!(s, "          comment: Presto View");
    let _ = writeln!(s, "        ViewExpandedText: /* Presto View */");
    let _ = writeln!(s, "        ViewOriginalText: !Join");
    let _ = writeln!(s, "          - \"\"");
    let _ = writeln!(s, "          - - \"/* Presto View: \"");
    let _ = writeln!(
        s,
        "            - Fn::Base64: !Sub '{}'",
        presto_view_json(t, sql).replace('\'', "''")
    );
    let _ = writeln!(s, "            - \" */\"");
    let _ = writeln!(s, "        StorageDescriptor:");
    let _ = writeln!(s, "          SerdeInfo: {{}}");
    let _ = writeln!(s, "          Columns:");
    for (name, glue, _) in view_columns(t) {
        let _ = writeln!(s, "            - {{ Name: {name}, Type: {glue} }}");
    }
    let _ = writeln!(s);
}

fn raw_yaml(s: &mut String, t: &RawTable) {
    let mut serde_parameters = vec![("ignore.malformed.json".to_string(), "true".to_string())];
    serde_parameters.extend(
        t.fields
            .iter()
            .map(|(column, field)| (format!("mapping.{column}"), field.to_string())),
    );
    GlueTable {
        name: t.name,
        description: format!(
            "{} as archived: one JSON record a line, GZIP, by arrival day.",
            t.stream
        ),
        classification: "json",
        folder: "raw",
        location: t.stream,
        partitioned: true,
        formats: JSON_LINES,
        serde_parameters,
        columns: t.columns,
    }
    .yaml(s)
}

/// One pipeline's part of the catalog: what its application's template declares.
pub struct CatalogBlock {
    pub pipeline: &'static str,
    /// The logical IDs it declares (its Glue tables, then its named queries).
    pub logical_ids: Vec<String>,
    /// The resources, as YAML to paste into the template's `Resources`.
    pub yaml: String,
}

/// Per pipeline, the Glue tables made from the tables' definitions and a named query per file
/// of `queries/<pipeline>/`: `tally catalog` prints them, and a test checks that the templates
/// hold the same.
pub fn catalog_blocks(root: &Path) -> std::io::Result<Vec<CatalogBlock>> {
    let queries = queries(root)?;
    let mut blocks = Vec::new();
    for p in tally_lake::PIPELINES {
        let mut yaml = String::new();
        let mut logical_ids = Vec::new();
        for t in p.curated_tables() {
            logical_ids.extend(curated_yaml(&mut yaml, t));
        }
        for t in p.raw_tables() {
            logical_ids.push(logical_id(t.name));
            raw_yaml(&mut yaml, t);
        }
        let own = queries
            .iter()
            .filter(|(name, _)| name.split('/').next() == Some(p.pipeline));
        for (name, text) in own {
            logical_ids.push(query_logical_id(name));
            named_query_yaml(&mut yaml, name, text);
        }
        blocks.push(CatalogBlock {
            pipeline: p.pipeline,
            logical_ids,
            yaml,
        });
    }
    Ok(blocks)
}

/// The queries of `queries/<pipeline>/<name>.sql`: (`<pipeline>/<name>`, the file's text).
pub fn queries(root: &Path) -> std::io::Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for path in files(&root.join("queries"), ".sql") {
        let rel = path.strip_prefix(root.join("queries")).unwrap_or(&path);
        let name = rel.with_extension("").to_string_lossy().replace('\\', "/");
        out.push((name, std::fs::read_to_string(&path)?));
    }
    Ok(out)
}

/// The logical id of a query's `AWS::Athena::NamedQuery`: `gender/visits_per_day` ->
/// `GenderVisitsPerDayQuery`.
pub fn query_logical_id(name: &str) -> String {
    logical_id(&name.replace('/', "_")).replace("Table", "Query")
}

/// One named query as the template declares it.
fn named_query_yaml(s: &mut String, name: &str, text: &str) {
    let description = text
        .lines()
        .take_while(|l| l.starts_with("--"))
        .map(|l| l.trim_start_matches('-').trim())
        .collect::<Vec<_>>()
        .join(" ");
    let _ = writeln!(s, "  {}:", query_logical_id(name));
    let _ = writeln!(s, "    Type: AWS::Athena::NamedQuery");
    let _ = writeln!(s, "    Properties:");
    let _ = writeln!(s, "      Name: {name}");
    let _ = writeln!(
        s,
        "      Description: \"{}\"",
        description.replace('"', "'")
    );
    let _ = writeln!(s, "      Database: !Ref LakeDatabase");
    let _ = writeln!(s, "      WorkGroup: !Ref LakeWorkGroup");
    let _ = writeln!(s, "      QueryString: |");
    for line in text.lines() {
        let _ = writeln!(s, "        {line}");
    }
    let _ = writeln!(s);
}

fn quote(path: &Path) -> String {
    format!("'{}'", path.display().to_string().replace('\'', "''"))
}

/// The files of `dir` and below with the extension `ext`.
fn files(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = entry.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.to_string_lossy().ends_with(ext) {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

fn empty_view(name: &str, columns: impl Iterator<Item = (String, &'static str)>) -> String {
    let cols: Vec<String> = columns
        .map(|(c, t)| format!("CAST(NULL AS {t}) AS \"{c}\""))
        .collect();
    format!(
        "CREATE VIEW {name} AS SELECT {} WHERE false;\n",
        cols.join(", ")
    )
}

/// DuckDB views with the catalog's names and columns over a local copy of the lake at `root`
/// (`lake/` and `raw/` as in the bucket). A table with no file yet is an empty view, so that a
/// query of it answers no rows rather than an error.
pub fn duckdb_views(root: &Path) -> String {
    let mut sql = String::new();
    // Made after the views of the files they read.
    let mut unique_views = String::new();
    for t in tables() {
        let dir = root.join("lake").join(t.name);
        let found = files(&dir, ".parquet");
        // A table unique by an id: the view of each id once over the view of its files.
        let files_name = t.files_name();
        let name = files_name.as_deref().unwrap_or(t.name);
        if let Some(view) = t.view_sql() {
            let _ = writeln!(unique_views, "CREATE VIEW {} AS {view};", t.name);
        }
        let partitioned = !t.partition_keys().is_empty();
        let mut columns: Vec<(String, &'static str)> = t
            .columns
            .iter()
            .map(|c| (c.name.to_string(), c.kind.duckdb()))
            .collect();
        if partitioned {
            columns.push(("dt".into(), "VARCHAR"));
        }
        if found.is_empty() {
            sql.push_str(&empty_view(name, columns.into_iter()));
            continue;
        }
        let list: Vec<String> = found.iter().map(|p| quote(p)).collect();
        let select: Vec<String> = columns
            .iter()
            .map(|(c, ty)| format!("CAST(\"{c}\" AS {ty}) AS \"{c}\""))
            .collect();
        let partitioning = if partitioned {
            "hive_partitioning = true, hive_types = {'dt': VARCHAR}"
        } else {
            "hive_partitioning = false"
        };
        let _ = writeln!(
            sql,
            "CREATE VIEW {} AS SELECT {} FROM read_parquet([{}], {partitioning}, union_by_name = true);",
            name,
            select.join(", "),
            list.join(", "),
        );
    }
    sql.push_str(&unique_views);
    for t in raw_tables() {
        let dir = root.join("raw").join(t.stream);
        let found = files(&dir, ".gz");
        let mut columns: Vec<(String, &'static str)> = t
            .columns
            .iter()
            .map(|c| (c.name.to_string(), c.kind.duckdb()))
            .collect();
        columns.push(("dt".into(), "VARCHAR"));
        if found.is_empty() {
            sql.push_str(&empty_view(t.name, columns.into_iter()));
            continue;
        }
        // Every field read as text and cast with TRY_CAST: a malformed or mistyped record reads
        // as nulls, as Athena's JSON SerDe with ignore.malformed.json does.
        let fields: BTreeMap<String, String> = t
            .columns
            .iter()
            .map(|c| (t.field(c.name).to_string(), "VARCHAR".to_string()))
            .collect();
        let struct_def: Vec<String> = fields
            .keys()
            .map(|f| format!("'{}': 'VARCHAR'", f.replace('\'', "''")))
            .collect();
        let select: Vec<String> = t
            .columns
            .iter()
            .map(|c| {
                format!(
                    "TRY_CAST(\"{}\" AS {}) AS \"{}\"",
                    t.field(c.name),
                    c.kind.duckdb(),
                    c.name
                )
            })
            .chain(std::iter::once("\"dt\"".to_string()))
            .collect();
        let list: Vec<String> = found.iter().map(|p| quote(p)).collect();
        let _ = writeln!(
            sql,
            "CREATE VIEW {} AS SELECT {} FROM read_json([{}], format = 'newline_delimited', columns = {{{}}}, ignore_errors = true, hive_partitioning = true, hive_types = {{'dt': VARCHAR}});",
            t.name,
            select.join(", "),
            list.join(", "),
            struct_def.join(", "),
        );
    }
    sql
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logical_ids_name_the_tables() {
        assert_eq!(
            query_logical_id("gender/visits_per_day"),
            "GenderVisitsPerDayQuery"
        );
        assert_eq!(logical_id("visits"), "VisitsTable");
        assert_eq!(
            logical_id("raw_possible_broker_alerts"),
            "RawPossibleBrokerAlertsTable"
        );
    }

    #[test]
    fn tables_without_files_are_empty_views_with_their_columns() {
        let dir = std::env::temp_dir().join(format!("tally-views-{}", std::process::id()));
        let sql = duckdb_views(&dir);
        assert!(
            sql.contains("CREATE VIEW visits AS SELECT CAST(NULL AS VARCHAR) AS \"cid\""),
            "{sql}"
        );
        assert!(sql.contains("CAST(NULL AS TIMESTAMP) AS \"ts\""));
        assert!(sql.contains("CREATE VIEW alerts AS SELECT"));
        assert!(!sql.contains("alerts AS SELECT CAST(NULL AS VARCHAR) AS \"rule\", CAST(NULL AS VARCHAR) AS \"alert_id\", CAST(NULL AS VARCHAR) AS \"key\", CAST(NULL AS BIGINT) AS \"count\", CAST(NULL AS TIMESTAMP) AS \"window_start\", CAST(NULL AS TIMESTAMP) AS \"published\", CAST(NULL AS VARCHAR) AS \"dt\""), "alerts have no dt partition");
    }
}
