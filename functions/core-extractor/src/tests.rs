//! The extractor on an in-memory core database and lake: versions, bad rows, and a crash between
//! a write and the next one.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use chrono::{NaiveDateTime, TimeZone, Utc};
use tally_engine::ports::{ListedObject, ObjectStore};
use tally_engine::testing::MemoryObjects;
use tally_engine::PortError;
use tally_lake::bad_records::BAD_RECORDS;
use tally_lake::core_dims::{DIM_FLYER, DIM_VENDOR};
use tally_lake::rows::Value;
use tally_lake::unique::read_unique;

use super::*;

/// Tables of rows by name, as text, each with its `updated_at` last.
#[derive(Default)]
struct MemoryCore {
    tables: Mutex<BTreeMap<&'static str, Vec<SourceRow>>>,
}

impl MemoryCore {
    fn upsert(&self, table: &'static str, row: &[Option<&str>]) {
        let row: SourceRow = row.iter().map(|v| v.map(str::to_string)).collect();
        let mut tables = self.tables.lock().unwrap();
        let rows = tables.entry(table).or_default();
        rows.retain(|r| r[0] != row[0]);
        rows.push(row);
    }
}

impl CoreSource for MemoryCore {
    async fn rows_since(
        &self, table: &SourceTable, since: Option<NaiveDateTime>,
    ) -> Result<Vec<SourceRow>, String> {
        let since = since.map(|s| s.format(DATETIME).to_string());
        let last = table.columns.len() - 1;
        let mut rows: Vec<SourceRow> = self
            .tables
            .lock()
            .unwrap()
            .get(table.name)
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|r| {
                since
                    .as_ref()
                    .is_none_or(|s| r[last].as_ref().is_some_and(|u| u >= s))
            })
            .collect();
        rows.sort_by(|a, b| a[last].cmp(&b[last]));
        Ok(rows)
    }
}

/// Objects in memory whose puts fail after `puts_left` of them (a crash mid-run).
#[derive(Default)]
struct CrashingLake {
    inner: MemoryObjects,
    puts_left: AtomicUsize,
}

impl ObjectStore for CrashingLake {
    async fn list(&self, prefix: &str) -> Result<Vec<ListedObject>, PortError> {
        self.inner.list(prefix).await
    }
    async fn delete(&self, key: &str) -> Result<(), PortError> {
        self.inner.delete(key).await
    }
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, PortError> {
        self.inner.get(key).await
    }
    async fn put(&self, key: &str, data: Vec<u8>) -> Result<(), PortError> {
        if self
            .puts_left
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_err()
        {
            return Err(PortError::Transient("crashed".into()));
        }
        self.inner.put(key, data).await
    }
}

fn now() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 1, 12, 0, 0).unwrap()
}

fn at(s: &str) -> Value {
    Value::Timestamp(
        NaiveDateTime::parse_from_str(s, DATETIME)
            .unwrap()
            .and_utc(),
    )
}

fn core() -> MemoryCore {
    let c = MemoryCore::default();
    c.upsert(
        "vendors",
        &[
            Some("1"),
            Some(" Acme "),
            Some("Grocery"),
            Some("2026-11-01 09:00:00.000"),
        ],
    );
    c.upsert(
        "vendors",
        &[Some("2"), Some("  "), None, Some("2026-11-01 09:00:00.500")],
    );
    c.upsert(
        "flyers",
        &[
            Some("10"),
            Some("1"),
            Some("Weekly deals"),
            Some("2026-11-02"),
            Some("2026-11-09"),
            Some("2026-11-01 10:00:00.000"),
        ],
    );
    c.upsert(
        "flyers",
        &[
            Some("11"),
            Some("1"),
            Some("Backwards"),
            Some("2026-11-09"),
            Some("2026-11-02"),
            Some("2026-11-01 10:00:00.000"),
        ],
    );
    c.upsert(
        "users",
        &[
            Some("u1"),
            Some("ca"),
            Some("2026-10-01 12:00:00.000"),
            Some("2026-11-01 11:00:00.000"),
        ],
    );
    c
}

#[tokio::test]
async fn changes_become_versions_and_bad_rows_are_kept_with_their_reason() {
    let extractor = Extractor {
        source: core(),
        store: MemoryObjects::default(),
    };
    let reports = extractor.run(now()).await.unwrap();
    let counts: Vec<(&str, usize, usize, usize)> = reports
        .iter()
        .map(|r| (r.table, r.read, r.versions, r.bad))
        .collect();
    assert_eq!(
        counts,
        [
            ("vendors", 2, 1, 1),
            ("flyers", 2, 1, 1),
            ("users", 1, 1, 0)
        ]
    );
    let vendors = read_unique(&extractor.store, &DIM_VENDOR).await.unwrap();
    assert_eq!(
        vendors,
        [vec![
            Value::BigInt(1),
            Value::str("Acme"),
            Value::str("grocery"),
            at("2026-11-01 09:00:00.000"),
            Value::Null,
            Value::Bool(true)
        ]],
        "trimmed, the category in lower case, current"
    );
    let bad = read_unique(&extractor.store, &BAD_RECORDS).await.unwrap();
    let reasons: Vec<(String, String)> = bad
        .iter()
        .map(|r| match (&r[0], &r[2]) {
            (Value::Str(s), Value::Str(why)) => (s.clone(), why.clone()),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        reasons,
        [
            (
                "core:flyers".to_string(),
                "invalid field valid_from: 2026-11-09 is after valid_to 2026-11-02".to_string()
            ),
            ("core:vendors".to_string(), "missing field name".to_string()),
        ]
    );

    // A rename: a second version, the first closed when the second began.
    extractor.source.upsert(
        "vendors",
        &[
            Some("1"),
            Some("Acme Foods"),
            Some("grocery"),
            Some("2026-11-20 08:30:00.250"),
        ],
    );
    let again = extractor.run(now()).await.unwrap();
    assert_eq!(again[0].since.as_deref(), Some("2026-11-01 09:00:00.000"));
    let vendors = read_unique(&extractor.store, &DIM_VENDOR).await.unwrap();
    let names: Vec<(&Value, &Value, &Value)> =
        vendors.iter().map(|v| (&v[1], &v[4], &v[5])).collect();
    assert_eq!(
        names,
        [
            (
                &Value::str("Acme"),
                &at("2026-11-20 08:30:00.250"),
                &Value::Bool(false)
            ),
            (&Value::str("Acme Foods"), &Value::Null, &Value::Bool(true)),
        ]
    );
    // Nothing new: nothing changes, and the bad rows read again are the same rows.
    let third = extractor.run(now()).await.unwrap();
    assert_eq!((third[0].read, third[0].versions), (0, 0), "{third:?}");
    assert_eq!(
        read_unique(&extractor.store, &DIM_VENDOR).await.unwrap(),
        vendors
    );
    assert_eq!(
        read_unique(&extractor.store, &BAD_RECORDS).await.unwrap(),
        bad
    );
}

#[tokio::test]
async fn a_crash_between_writes_loses_and_repeats_nothing() {
    let clean = Extractor {
        source: core(),
        store: MemoryObjects::default(),
    };
    clean.run(now()).await.unwrap();
    // Crash after each number of writes in turn, then run to the end: the lake is the same.
    for writes in 0..5 {
        let extractor = Extractor {
            source: core(),
            store: CrashingLake::default(),
        };
        extractor.store.puts_left.store(writes, Ordering::SeqCst);
        assert!(
            extractor.run(now()).await.is_err(),
            "crashed after {writes} writes"
        );
        extractor
            .store
            .puts_left
            .store(usize::MAX, Ordering::SeqCst);
        extractor.run(now()).await.unwrap();
        for table in [&DIM_VENDOR, &DIM_FLYER, &BAD_RECORDS] {
            assert_eq!(
                read_unique(&extractor.store, table).await.unwrap(),
                read_unique(&clean.store, table).await.unwrap(),
                "{} after a crash at write {writes}",
                table.name
            );
        }
    }
}
