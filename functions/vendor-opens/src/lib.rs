//! The dashboard's warehouse panel (`VendorOpensFunction`, on a schedule): today's flyer opens
//! per vendor, from the lake. Each open in today's partition of `event_flyer_open` (the UTC day of
//! its `client_time`) counts for the vendor its flyer belonged to when it was opened, under the
//! vendor's name then (`dim_flyer` and `dim_vendor` as of `client_time`), as
//! `queries/events/flyer_opens_per_vendor.sql` counts it; a test holds the two equal. The live API
//! serves the latest answer ([`tally_events::VENDOR_OPENS_ANSWER`]).

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use tally_aws::config::s3_client;
use tally_aws::{DynamoTable, Env, Error, S3Objects, SdkConfig};
use tally_engine::ports::ObjectStore;
use tally_lake::core_dims::{DIM_FLYER, DIM_VENDOR};
use tally_lake::events::event_tables;
use tally_lake::rows::{read_parquet, Row};
use tally_lake::unique::{deduplicate, partition_files, read_unique};
use tally_lake::{LakeError, Table};

/// What an invocation asks; the schedule sends `{}`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Request {
    /// The UTC day to count (today when absent): a past day's panel, or a test's own day.
    #[serde(default)]
    pub day: Option<NaiveDate>,
}

/// How many vendors the panel lists; the others' opens are summed.
pub const TOP: usize = 10;

/// The answer: the day's opens, the vendors with the most, and what joined no vendor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VendorOpens {
    pub day: NaiveDate,
    /// Every open of the day, each (`app_id`, `event_id`) once.
    pub opens: u64,
    /// The [`TOP`] vendors by opens (then by id).
    pub vendors: Vec<Vendor>,
    /// Opens of the vendors after those.
    pub other_vendors: u64,
    /// Opens of flyers that had no version (or whose vendor had none) when they were opened:
    /// the SQL's vendor null.
    pub unknown: u64,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Vendor {
    pub vendor_id: i64,
    /// Its name as of its latest open of the day (a vendor renamed today is one row here, two
    /// in the SQL, which groups by name too).
    pub name: Option<String>,
    pub opens: u64,
    /// Distinct flyers opened.
    pub flyers: u64,
}

/// One version of a type-2 dimension's row: when it began, when it ended (`None` while current),
/// and the value it gives.
type Version<T> = (DateTime<Utc>, Option<DateTime<Utc>>, T);

/// A type-2 dimension's versions by id.
struct Versions<T>(BTreeMap<i64, Vec<Version<T>>>);

impl<T> Versions<T> {
    fn read(table: &Table, rows: &[Row], id: &str, value: impl Fn(&Row) -> T) -> Self {
        let mut by_id: BTreeMap<i64, Vec<_>> = BTreeMap::new();
        for row in rows {
            let (Some(key), Some(from)) = (
                table.value(row, id).as_bigint(),
                table.value(row, "row_valid_from").as_timestamp(),
            ) else {
                continue;
            };
            let to = table.value(row, "row_valid_to").as_timestamp();
            by_id.entry(key).or_default().push((from, to, value(row)));
        }
        Versions(by_id)
    }

    /// The version of `id` that began at or before `t` and had not ended.
    fn as_of(&self, id: i64, t: DateTime<Utc>) -> Option<&T> {
        self.0
            .get(&id)?
            .iter()
            .find_map(|(from, to, v)| (*from <= t && to.is_none_or(|to| t < to)).then_some(v))
    }
}

pub struct VendorOpensStep<O> {
    /// The lake's bucket.
    pub store: O,
}

impl<O: ObjectStore> VendorOpensStep<O> {
    /// The opens of `day` (UTC), counted at `now`.
    pub async fn run(&self, day: NaiveDate, now: DateTime<Utc>) -> Result<VendorOpens, LakeError> {
        let opens_table = event_tables()
            .iter()
            .find(|t| t.info.name == "flyer_open")
            .expect("schemas/events/flyer_open.json is built in")
            .table;
        let partition = format!("{}dt={}/", opens_table.prefix(), day.format("%Y-%m-%d"));
        let mut rows = Vec::new();
        for file in partition_files(&self.store, &partition).await? {
            if let Some(data) = self.store.get(&file.key).await? {
                rows.extend(read_parquet(opens_table, data)?);
            }
        }
        let opens: Vec<(i64, DateTime<Utc>)> = deduplicate(opens_table, rows)?
            .iter()
            .filter_map(|r| {
                Some((
                    opens_table.value(r, "flyer_id").as_bigint()?,
                    opens_table.value(r, "client_time").as_timestamp()?,
                ))
            })
            .collect();
        let flyers = read_unique(&self.store, &DIM_FLYER).await?;
        let flyers = Versions::read(&DIM_FLYER, &flyers, "flyer_id", |r| {
            DIM_FLYER.value(r, "vendor_id").as_bigint()
        });
        let vendors = read_unique(&self.store, &DIM_VENDOR).await?;
        let vendors = Versions::read(&DIM_VENDOR, &vendors, "vendor_id", |r| {
            DIM_VENDOR.value(r, "name").as_str().map(str::to_string)
        });
        Ok(count(day, &opens, &flyers, &vendors, now))
    }
}

fn count(
    day: NaiveDate, opens: &[(i64, DateTime<Utc>)], flyers: &Versions<Option<i64>>,
    vendors: &Versions<Option<String>>, now: DateTime<Utc>,
) -> VendorOpens {
    #[derive(Default)]
    struct Tally {
        opens: u64,
        flyers: BTreeSet<i64>,
        latest: Option<(DateTime<Utc>, Option<String>)>,
    }
    let mut by_vendor: BTreeMap<i64, Tally> = BTreeMap::new();
    let mut unknown = 0;
    for &(flyer, at) in opens {
        let vendor = flyers.as_of(flyer, at).copied().flatten();
        let name = vendor.and_then(|v| vendors.as_of(v, at));
        let (Some(vendor), Some(name)) = (vendor, name) else {
            unknown += 1;
            continue;
        };
        let t = by_vendor.entry(vendor).or_default();
        t.opens += 1;
        t.flyers.insert(flyer);
        if t.latest.as_ref().is_none_or(|(when, _)| at >= *when) {
            t.latest = Some((at, name.clone()));
        }
    }
    let mut ranked: Vec<Vendor> = by_vendor
        .into_iter()
        .map(|(vendor_id, t)| Vendor {
            vendor_id,
            name: t.latest.and_then(|(_, n)| n),
            opens: t.opens,
            flyers: t.flyers.len() as u64,
        })
        .collect();
    ranked.sort_by(|a, b| b.opens.cmp(&a.opens).then(a.vendor_id.cmp(&b.vendor_id)));
    let other_vendors = ranked.iter().skip(TOP).map(|v| v.opens).sum();
    ranked.truncate(TOP);
    VendorOpens {
        day,
        opens: opens.len() as u64,
        vendors: ranked,
        other_vendors,
        unknown,
        at: now,
    }
}

/// The function: the step, and the events' state table the live API reads the answer from.
pub struct VendorOpensFunction {
    pub step: VendorOpensStep<S3Objects>,
    pub answers: DynamoTable,
}

/// Reads `ARCHIVE_BUCKET` (the lake's bucket) and `EVENTS_STATE_TABLE`.
pub fn from_env(config: &SdkConfig, env: &Env) -> Result<VendorOpensFunction, Error> {
    Ok(VendorOpensFunction {
        step: VendorOpensStep {
            store: S3Objects::new(s3_client(config), env.var("ARCHIVE_BUCKET")?),
        },
        answers: DynamoTable::from_env(config, env, "EVENTS_STATE_TABLE")?,
    })
}

#[cfg(test)]
mod tests;
