//! Figures of the RSVP analytics: DynamoDB requests per RSVP against the per-record baseline, the
//! RSVPs a second the statistics function sustains on the local cloud with freshness (a
//! PutRecords acknowledgement to the stats API reflecting it), and the 3NF conversion's
//! throughput.

use std::collections::BTreeSet;
use std::time::Duration;

use anyhow::{bail, Result};
use serde::Serialize;

use super::lake::{convert_lines, LakeFigures};
use super::pipeline::{self, Feed, Probe, RequestCount, Throughput};
use super::workload::Event;
use tally_cloud::cloud::LocalCloud;
use tally_cloud::http::http_get;
use tally_cloud::kinesis::partition_key;
use tally_gen::meetup::{Clock, RsvpGenerator, Shape};

#[derive(Debug, Clone, Serialize)]
pub struct RsvpFigures {
    /// The same RSVPs through the per-key mode and the per-record baseline.
    pub requests: Vec<RequestCount>,
    /// At the target rate of every pipeline.
    pub sustained: Throughput,
    /// At [`LIGHT_RATE`], which the local cloud keeps up with.
    pub light: Throughput,
    /// RSVP lines into the seven tables, in memory.
    pub etl: LakeFigures,
}

/// RSVPs a second the local cloud's single function instance keeps up with.
pub const LIGHT_RATE: f64 = 100.0;

/// `n` generated RSVPs (versions and automated members included) whose `mtime` advances at `rate`
/// a second from now, keyed as the template keys `RsvpStream`.
pub fn rsvp_events(n: usize, seed: u64, rate: f64) -> Vec<Event> {
    let clock = Clock::Simulated {
        start: chrono::Utc::now(),
        rate,
    };
    RsvpGenerator::new(seed, clock, Shape::default())
        .take(n)
        .map(|data| Event {
            partition_key: partition_key(&data, Some("event.event_id")),
            data,
        })
        .collect()
}

/// DynamoDB requests per RSVP on a running cloud, as figure 1 counts them.
pub async fn requests(cloud: &LocalCloud, mode: &str, n: usize) -> Result<RequestCount> {
    let t = &cloud.template;
    pipeline::count_requests(
        cloud,
        "rsvp",
        "meetup",
        mode,
        &t.physical_name("RsvpStream"),
        &[t.physical_name("RsvpStatsStream")],
        &rsvp_events(n, 7, super::RATE),
    )
    .await
}

/// `RsvpStream` fed at `rate` for `seconds`, freshness probed on the stats API; then the check
/// that every RSVP counted once.
pub async fn sustained(
    cloud: &LocalCloud, rate: f64, seconds: f64, drain: Duration,
) -> Result<Throughput> {
    let stream = cloud.template.physical_name("RsvpStream");
    let events = rsvp_events((rate * seconds) as usize, 8, rate);
    let ids: BTreeSet<u64> = events
        .iter()
        .filter_map(|e| serde_json::from_str::<serde_json::Value>(&e.data).ok())
        .filter_map(|v| v["rsvp_id"].as_u64())
        .collect();
    let probe = Probe::Rsvp {
        stream: stream.clone(),
        template: events[0].data.clone(),
    };
    let feed = Feed {
        pipeline: "rsvp",
        stream,
        events,
    };
    let mut result = pipeline::sustained(cloud, vec![feed], rate, Some(probe), drain).await?;
    let probes = result.freshness.as_ref().map_or(0, |f| f.samples) + result.freshness_unanswered;
    let (status, body) = http_get(&format!("{}/api/v1/rsvp/stats", cloud.api_url)).await?;
    let counted = serde_json::from_str::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v["totals"]["rsvps"].as_u64());
    if status != 200 {
        bail!("the stats API answered {status}: {body}");
    }
    let want = (ids.len() + probes) as u64;
    result.nothing_lost = result.settled.then_some(counted == Some(want));
    result.check = format!(
        "the stats count {} of {want} RSVPs ({} generated, {probes} probes)",
        counted.unwrap_or(0),
        ids.len()
    );
    Ok(result)
}

/// The 3NF conversion alone: `objects` archived objects of `per_object` generated RSVPs.
pub async fn etl(objects: usize, per_object: usize) -> Result<LakeFigures> {
    // RSVPs of the morning of the day `convert_lines` delivers its objects (at 10:00 UTC): an
    // mtime after its delivery would be out of range.
    let clock = Clock::Simulated {
        start: "2026-11-22T00:00:00Z".parse().expect("a time"),
        rate: super::RATE,
    };
    let mut generator = RsvpGenerator::new(9, clock, Shape::default());
    let batches: Vec<Vec<String>> = (0..objects)
        .map(|_| (&mut generator).take(per_object).collect())
        .collect();
    convert_lines("rsvps", batches).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_conversion_figure_counts_rsvps_and_every_table() {
        let f = etl(2, 300).await.unwrap();
        assert_eq!((f.records, f.objects), (600, 2));
        for table in [
            "members",
            "groups",
            "meetup_events",
            "topics",
            "group_topics",
            "rsvps",
        ] {
            assert!(
                f.rows.get(table).is_some_and(|n| *n > 0),
                "{table}: {:?}",
                f.rows
            );
        }
        assert!(f.rows["rsvps"] <= 600, "each rsvp_id once: {:?}", f.rows);
        assert!(f.parquet_bytes > 0 && f.records_per_s > 0.0);
    }

    #[test]
    fn rsvp_events_are_keyed_by_their_event() {
        let events = rsvp_events(20, 3, 10.0);
        assert_eq!(events.len(), 20);
        for e in &events {
            let v: serde_json::Value = serde_json::from_str(&e.data).unwrap();
            assert_eq!(v["event"]["event_id"], e.partition_key.as_str());
        }
    }
}
