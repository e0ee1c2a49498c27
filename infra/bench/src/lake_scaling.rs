//! The lake at the seeds' scale (`tally bench --only lake_scaling`): tables of 1, 10 and 30
//! million app events (seed 002's shape) and of RSVPs (seed 004's), built the way the stack
//! builds them (generated raw archives, GZIP JSON lines as Firehose delivers them, converted by
//! the lake writer in a folder), and at each size the same amount of new data converted once
//! more: its cost must not grow with the table (merge on read, docs/lake.md). Also the bytes
//! Athena would scan for each query of `queries/` (from the Parquet footers), and the files per
//! partition after a day of conversions, one a minute.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use serde::Serialize;

use tally_gen::meetup::generator::{Clock, RsvpGenerator, Shape};
use tally_gen::mobile::{batches, Fleet};
use tally_lake::{tables, LakeReport, LakeWriter, Table};

use super::objects::FolderObjects;

/// Converting the same amount of new data into a table of `table_rows` rows.
#[derive(Debug, Clone, Serialize)]
pub struct Conversion {
    pub table: String,
    pub table_rows: u64,
    pub new_rows: u64,
    /// The conversion, without the compaction it started (`compaction_seconds`).
    pub seconds: f64,
    /// The table's files after it (every partition).
    pub files_after: usize,
    pub compaction_seconds: f64,
    pub compaction_merges: usize,
    pub compaction_mb_read: f64,
}

/// What a query of `queries/` would make Athena read of the bench's lake.
#[derive(Debug, Clone, Serialize)]
pub struct QueryScan {
    pub query: String,
    pub tables: Vec<String>,
    /// Compressed bytes of the column chunks it reads (every partition: no `dt` filter assumed).
    pub mb_scanned: f64,
    /// All columns of those tables, for comparison.
    pub mb_of_its_tables: f64,
}

/// A partition's files after a day of conversions, one a minute.
#[derive(Debug, Clone, Serialize)]
pub struct DayFiles {
    pub conversions: usize,
    pub events: u64,
    /// Per table, the most files any one of its partitions held at the end.
    pub most_files_per_partition: BTreeMap<String, usize>,
    /// The most any partition held at any moment of the day.
    pub most_files_ever: usize,
    pub compaction_merges: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct LakeScaling {
    pub conversions: Vec<Conversion>,
    pub query_scans: Vec<QueryScan>,
    pub day: DayFiles,
}

/// The sizes measured: (events, RSVPs) in the table when the new data comes.
fn sizes(quick: bool) -> Vec<(u64, u64)> {
    if quick {
        vec![(100_000, 20_000), (300_000, 60_000)]
    } else {
        vec![
            (1_000_000, 1_000_000),
            (10_000_000, 10_000_000),
            (30_000_000, 30_000_000),
        ]
    }
}

/// Events (or RSVPs) of the new data converted at each size: a minute at seed 003's stated rate.
const NEW_EVENTS: u64 = 100_000;

fn gzip(lines: &[String]) -> Result<Vec<u8>> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    for l in lines {
        enc.write_all(l.as_bytes())?;
        enc.write_all(b"\n")?;
    }
    Ok(enc.finish()?)
}

/// A Firehose-like object key of `stream`, unique per `n`.
fn raw_key(stream: &str, n: u64) -> String {
    format!(
        "raw/{stream}/dt=2026-11-22/bench-1-2026-11-22-{:02}-{:02}-{:02}-00000000-0000-4000-8000-{n:012}.gz",
        n / 3600 % 24,
        n / 60 % 60,
        n % 60
    )
}

/// App events of the fleet with `seed`, stamped as `/collect` stamps them, by type.
fn app_events(seed: u64, devices: u64, tag: &str) -> BTreeMap<String, Vec<String>> {
    let mut by_type: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for batch in batches(&Fleet::new(devices, 30, seed)) {
        for mut e in batch.events {
            let Some(kind) = e["event_type"].as_str().map(str::to_string) else {
                continue;
            };
            if let Some(id) = e["event_id"].as_str() {
                e["event_id"] = format!("{id}{tag}").into();
            }
            e["app_id"] = "bench-app".into();
            e["app_name"] = "Bench".into();
            e["server_time"] = e["client_time"].clone();
            by_type.entry(kind).or_default().push(e.to_string());
        }
    }
    by_type
}

/// Writes `lines` per stream as one raw object each and converts them in one invocation.
async fn convert(
    store: &FolderObjects, next: &mut u64, streams: BTreeMap<String, Vec<String>>,
) -> Result<(LakeReport, f64, u64)> {
    let mut keys = Vec::new();
    let mut lines = 0;
    for (stream, batch) in streams {
        lines += batch.len() as u64;
        let key = raw_key(&stream, *next);
        *next += 1;
        store.insert(&key, &gzip(&batch)?)?;
        keys.push(key);
    }
    let began = Instant::now();
    let report = LakeWriter { store }.convert(&keys).await;
    let seconds = began.elapsed().as_secs_f64();
    if !report.failed.is_empty() || !report.compaction_failed.is_empty() {
        bail!(
            "the conversion failed: {:?} {:?}",
            report.failed,
            report.compaction_failed
        );
    }
    // The raw objects are not needed again: the bench's disk holds the lake only.
    for key in keys {
        std::fs::remove_file(store.root().join(key))?;
    }
    Ok((report, seconds, lines))
}

/// The generated workload of one table family: the next chunk of about `n` lines by stream.
trait Workload {
    fn table(&self) -> &'static str;
    fn chunk(&mut self, n: u64, tag: &str) -> BTreeMap<String, Vec<String>>;
}

struct Events {
    seed: u64,
}

impl Workload for Events {
    fn table(&self) -> &'static str {
        "fact_events"
    }

    fn chunk(&mut self, n: u64, tag: &str) -> BTreeMap<String, Vec<String>> {
        // About 25 events a device in 30 minutes (measured on the generator).
        self.seed += 1;
        app_events(self.seed, (n / 25).max(1), tag)
            .into_iter()
            .map(|(kind, lines)| (format!("events/event_type={kind}"), lines))
            .collect()
    }
}

struct Rsvps {
    generator: RsvpGenerator,
}

impl Workload for Rsvps {
    fn table(&self) -> &'static str {
        "rsvps"
    }

    fn chunk(&mut self, n: u64, _tag: &str) -> BTreeMap<String, Vec<String>> {
        let lines = (0..n).map(|_| self.generator.next_line()).collect();
        BTreeMap::from([("rsvps".to_string(), lines)])
    }
}

fn files_of(store: &FolderObjects, table: &str) -> Result<Vec<tally_engine::ports::ListedObject>> {
    Ok(store.listing(&format!("lake/{table}/"))?)
}

/// Grows a table to each size and converts the same amount of new data there.
async fn scale(
    store: &FolderObjects, workload: &mut dyn Workload, sizes: &[u64], chunk: u64,
    progress: &dyn Fn(&str),
) -> Result<Vec<Conversion>> {
    let mut out = Vec::new();
    let mut next = 0;
    let mut lines = 0;
    let mut rows: u64 = 0;
    let table = workload.table();
    for &size in sizes {
        while lines < size {
            let (report, seconds, n) = convert(
                store,
                &mut next,
                workload.chunk(chunk.min(size - lines), ""),
            )
            .await?;
            lines += n;
            rows += report.rows.get(table).copied().unwrap_or_default() as u64;
            progress(&format!(
                "{table}: {lines} lines converted ({:.0}/s)",
                n as f64 / seconds
            ));
        }
        let tag = format!("-new-{size}");
        let (report, seconds, _) =
            convert(store, &mut next, workload.chunk(NEW_EVENTS, &tag)).await?;
        let new_rows = report.rows.get(table).copied().unwrap_or_default() as u64;
        let compaction_seconds = report.compaction_time.as_secs_f64();
        out.push(Conversion {
            table: table.to_string(),
            table_rows: rows,
            new_rows,
            seconds: seconds - compaction_seconds,
            files_after: files_of(store, table)?.len(),
            compaction_seconds,
            compaction_merges: report.compacted.merges,
            compaction_mb_read: report.compacted.bytes_read as f64 / 1e6,
        });
        progress(&format!(
            "{table}: {new_rows} new rows into {rows} in {seconds:.2} s"
        ));
        rows += new_rows;
    }
    Ok(out)
}

/// The tables a query reads (`FROM t`, `JOIN t`) among the lake's.
fn tables_of(sql: &str) -> Vec<&'static Table> {
    let words: Vec<String> = sql
        .split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .map(str::to_lowercase)
        .collect();
    tables()
        .iter()
        .copied()
        .filter(|t| {
            words
                .windows(2)
                .any(|w| matches!(w[0].as_str(), "from" | "join") && w[1] == t.name)
        })
        .collect()
}

/// The bytes Athena would read for each query of `queries/events/` and `queries/rsvp/`: the
/// compressed column chunks, in every file of the tables it names, of the columns it names (and,
/// through a table's view, its id and the columns that choose a row).
fn query_scans(stores: &[&FolderObjects], root: &Path) -> Result<Vec<QueryScan>> {
    let mut out = Vec::new();
    for (name, sql) in tally_stack::catalog::queries(root)? {
        if !(name.starts_with("events/") || name.starts_with("rsvp/")) {
            continue;
        }
        let read = tables_of(&sql);
        if read.is_empty() {
            continue;
        }
        let words: std::collections::BTreeSet<String> = sql
            .split(|c: char| !(c.is_alphanumeric() || c == '_'))
            .map(str::to_lowercase)
            .collect();
        let (mut scanned, mut all) = (0u64, 0u64);
        for t in &read {
            let mut wanted: std::collections::BTreeSet<String> = t
                .columns
                .iter()
                .map(|c| c.name.to_string())
                .filter(|c| words.contains(c))
                .collect();
            if let Some((id, keep)) = t.layout.unique() {
                wanted.extend(id.iter().map(|c| c.to_string()));
                wanted.extend(keep_columns(keep));
            }
            for store in stores {
                for file in files_of(store, t.name)? {
                    let data = std::fs::read(store.root().join(&file.key))?;
                    let (_, columns) =
                        tally_lake::rows::column_bytes(data).with_context(|| file.key.clone())?;
                    for (column, bytes) in columns {
                        all += bytes;
                        if wanted.contains(&column) {
                            scanned += bytes;
                        }
                    }
                }
            }
        }
        out.push(QueryScan {
            query: name,
            tables: read.iter().map(|t| t.name.to_string()).collect(),
            mb_scanned: scanned as f64 / 1e6,
            mb_of_its_tables: all as f64 / 1e6,
        });
    }
    Ok(out)
}

fn keep_columns(keep: tally_lake::table::Keep) -> Vec<String> {
    use tally_lake::table::Keep;
    match keep {
        Keep::Earliest(c) | Keep::Latest(c) => vec![c.to_string()],
        Keep::LatestSet { version, member } => vec![version.to_string(), member.to_string()],
        Keep::Span { first, last } => vec![first.to_string(), last.to_string()],
        // `to` and `current` are made on read from `from`: only `from` is read from the files.
        Keep::Versions { from, .. } => vec![from.to_string()],
    }
}

/// A day of conversions, one a minute of `per_minute` app events each: the most files a
/// partition holds, during the day and at its end.
async fn day(store: &FolderObjects, per_minute: u64, progress: &dyn Fn(&str)) -> Result<DayFiles> {
    let mut workload = Events { seed: 1_000_000 };
    let mut next = 0;
    let (mut events, mut merges, mut most_ever) = (0, 0, 0);
    let minutes = 1440;
    for minute in 0..minutes {
        let (report, _, n) = convert(store, &mut next, workload.chunk(per_minute, "")).await?;
        events += n;
        merges += report.compacted.merges;
        let mut per_partition: BTreeMap<String, usize> = BTreeMap::new();
        for f in store.listing("lake/")? {
            let folder = f.key[..f.key.rfind('/').unwrap_or(0)].to_string();
            *per_partition.entry(folder).or_default() += 1;
        }
        most_ever = most_ever.max(per_partition.values().copied().max().unwrap_or(0));
        if minute % 60 == 59 {
            progress(&format!("day: {} of {minutes} minutes", minute + 1));
        }
    }
    let mut most: BTreeMap<String, usize> = BTreeMap::new();
    for f in store.listing("lake/")? {
        let folder = &f.key[..f.key.rfind('/').unwrap_or(0)];
        let table = folder.split('/').nth(1).unwrap_or_default().to_string();
        let count = store
            .listing(&format!("{folder}/"))?
            .iter()
            .filter(|o| !o.key[folder.len() + 1..].contains('/'))
            .count();
        let entry = most.entry(table).or_default();
        *entry = (*entry).max(count);
    }
    Ok(DayFiles {
        conversions: minutes,
        events,
        most_files_per_partition: most,
        most_files_ever: most_ever,
        compaction_merges: merges,
    })
}

/// Every figure of the section, in folders under the temporary folder.
pub async fn lake_scaling(root: &Path, quick: bool) -> Result<LakeScaling> {
    let began = Instant::now();
    let progress = |what: &str| {
        eprintln!(
            "lake_scaling [{:>5.0}s] {what}",
            began.elapsed().as_secs_f64()
        )
    };
    let dir = std::env::temp_dir().join("tally-bench-lake-scaling");
    let chunk = if quick { 50_000 } else { 500_000 };
    let mut conversions = Vec::new();
    let events_store = FolderObjects::new(&dir.join("events"))?;
    let (event_sizes, rsvp_sizes): (Vec<u64>, Vec<u64>) = sizes(quick).into_iter().unzip();
    conversions.extend(
        scale(
            &events_store,
            &mut Events { seed: 0 },
            &event_sizes,
            chunk,
            &progress,
        )
        .await?,
    );
    let rsvps_store = FolderObjects::new(&dir.join("rsvps"))?;
    let clock = Clock::Simulated {
        start: tally_gen::meetup::generator::default_start(),
        rate: 1667.0,
    };
    let shape = Shape {
        groups: 20_000,
        events_per_group: 8,
        members: 2_000_000,
        ..Shape::default()
    };
    let mut rsvps = Rsvps {
        generator: RsvpGenerator::new(4, clock, shape),
    };
    conversions.extend(scale(&rsvps_store, &mut rsvps, &rsvp_sizes, chunk, &progress).await?);
    let query_scans = query_scans(&[&events_store, &rsvps_store], root)?;
    let day_store = FolderObjects::new(&dir.join("day"))?;
    let day = day(&day_store, if quick { 100 } else { 1_000 }, &progress).await?;
    std::fs::remove_dir_all(&dir).ok();
    Ok(LakeScaling {
        conversions,
        query_scans,
        day,
    })
}
