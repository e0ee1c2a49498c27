//! Compaction keeps a unique table's partitions at a bounded number of files: every conversion
//! adds a small file, and when one size tier of a partition holds [`COMPACT_AT`] files they are
//! merged into one (its rows deduplicated as the view would), which lands in a higher tier. A row
//! is rewritten once per tier it climbs (four tiers up to [`FINAL_BYTES`]), so compaction costs
//! a bounded multiple of the data written, whatever the table holds; a partition keeps at most
//! `COMPACT_AT - 1` files per tier below `FINAL_BYTES`, plus its final files.
//!
//! Two compactions of one partition at once (two lake writers) are safe: each writes a file named
//! from its inputs, so the same inputs give the same file, and rows two overlapping merges both
//! wrote are read once through the view and merged again later. Inputs are removed only after
//! their merge is written, so a crash leaves copies, never a loss.

use tally_engine::ports::{ListedObject, ObjectStore};

use crate::rows::{read_parquet, write_parquet};
use crate::table::Table;
use crate::unique::{deduplicate, name_hash, partition_files};
use crate::LakeError;

/// Files of one tier that start a merge.
pub const COMPACT_AT: usize = 8;
/// The upper bound of the smallest tier; each tier's is [`TIER_GROWTH`] times the one below.
const TIER0_BYTES: u64 = 256 * 1024;
const TIER_GROWTH: u64 = 8;
/// Files this large are final: never merged again (Athena reads 32 MB files efficiently).
pub const FINAL_BYTES: u64 = 32 * 1024 * 1024;
/// The most one merge reads, which bounds a lake writer's memory.
const MAX_MERGE_BYTES: u64 = 64 * 1024 * 1024;

/// What compaction did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Compacted {
    pub merges: usize,
    pub files_read: usize,
    pub bytes_read: u64,
    pub rows_read: usize,
    pub rows_written: usize,
    pub bytes_written: u64,
}

impl Compacted {
    pub fn add(&mut self, other: Compacted) {
        self.merges += other.merges;
        self.files_read += other.files_read;
        self.bytes_read += other.bytes_read;
        self.rows_read += other.rows_read;
        self.rows_written += other.rows_written;
        self.bytes_written += other.bytes_written;
    }
}

/// The tier of a file by its size: 0 below 256 KiB, 1 below 2 MiB, 2 below 16 MiB, ...
fn tier(size: u64) -> u32 {
    let (mut tier, mut bound) = (0, TIER0_BYTES);
    while size >= bound {
        tier += 1;
        bound = bound.saturating_mul(TIER_GROWTH);
    }
    tier
}

/// The files a merge of this partition takes, if any: of the lowest tier that holds
/// [`COMPACT_AT`] files below [`FINAL_BYTES`], the smallest, up to [`MAX_MERGE_BYTES`] (at
/// least two).
pub fn choose(files: &[ListedObject]) -> Option<Vec<ListedObject>> {
    let mut small: Vec<&ListedObject> = files.iter().filter(|f| f.size < FINAL_BYTES).collect();
    small.sort_by_key(|f| (tier(f.size), f.size, f.key.clone()));
    let lowest = small
        .chunk_by(|a, b| tier(a.size) == tier(b.size))
        .find(|same| same.len() >= COMPACT_AT)?;
    let mut chosen = Vec::new();
    let mut bytes = 0;
    for f in lowest {
        if chosen.len() >= 2 && bytes + f.size > MAX_MERGE_BYTES {
            break;
        }
        bytes += f.size;
        chosen.push((*f).clone());
    }
    Some(chosen)
}

/// Compacts the partition (a folder: `lake/<table>/dt=<day>/` or `lake/<table>/`) of a unique
/// table while one of its tiers holds [`COMPACT_AT`] files.
pub async fn compact<O: ObjectStore>(
    store: &O, table: &Table, partition: &str,
) -> Result<Compacted, LakeError> {
    let mut done = Compacted::default();
    while let Some(inputs) = choose(&partition_files(store, partition).await?) {
        done.add(merge(store, table, partition, &inputs).await?);
    }
    Ok(done)
}

/// Merges `inputs` into one file of their rows, each id once, then removes them.
async fn merge<O: ObjectStore>(
    store: &O, table: &Table, partition: &str, inputs: &[ListedObject],
) -> Result<Compacted, LakeError> {
    let mut done = Compacted {
        merges: 1,
        ..Compacted::default()
    };
    let mut rows = Vec::new();
    for input in inputs {
        // Gone: another compaction merged it (its rows are in that one's file).
        let Some(object) = store.get(&input.key).await? else {
            continue;
        };
        done.files_read += 1;
        done.bytes_read += object.len() as u64;
        rows.extend(read_parquet(table, object)?);
    }
    done.rows_read = rows.len();
    let rows = deduplicate(table, rows)?;
    done.rows_written = rows.len();
    let names: Vec<&str> = inputs.iter().map(|i| i.key.as_str()).collect();
    let file = format!("{partition}c-{}.parquet", name_hash(&names));
    let data = write_parquet(table, &rows)?;
    done.bytes_written = data.len() as u64;
    store.put(&file, data).await?;
    for input in inputs {
        store.delete(&input.key).await?;
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(key: &str, size: u64) -> ListedObject {
        ListedObject {
            key: key.into(),
            size,
        }
    }

    #[test]
    fn tiers_grow_eightfold_from_256_kib() {
        assert_eq!(tier(0), 0);
        assert_eq!(tier(256 * 1024 - 1), 0);
        assert_eq!(tier(256 * 1024), 1);
        assert_eq!(tier(2 * 1024 * 1024), 2);
        assert_eq!(tier(FINAL_BYTES - 1), 3);
    }

    #[test]
    fn a_merge_waits_for_a_tier_to_fill_and_takes_the_lowest_first() {
        let mut files: Vec<ListedObject> = (0..COMPACT_AT - 1)
            .map(|i| file(&format!("in-{i}"), 1000))
            .collect();
        files.extend((0..COMPACT_AT).map(|i| file(&format!("big-{i}"), 3_000_000)));
        files.push(file("final", FINAL_BYTES));
        let chosen = choose(&files).unwrap();
        assert!(
            chosen.iter().all(|f| f.key.starts_with("big-")),
            "tier 2 is full"
        );
        files.push(file("in-last", 10));
        let chosen = choose(&files).unwrap();
        assert_eq!(chosen.len(), COMPACT_AT);
        assert!(
            chosen.iter().all(|f| f.key.starts_with("in-")),
            "tier 0 first"
        );
        assert_eq!(choose(&files[..COMPACT_AT - 1]), None);
    }

    #[test]
    fn a_merge_reads_at_most_64_mib() {
        let files: Vec<ListedObject> = (0..COMPACT_AT)
            .map(|i| file(&format!("f{i}"), 15 * 1024 * 1024))
            .collect();
        let chosen = choose(&files).unwrap();
        assert_eq!(chosen.len(), 4, "4 x 15 MiB fit in 64 MiB, 5 do not");
    }
}
