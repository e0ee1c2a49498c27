//! The Meetup RSVP analytics (seed 004): `RsvpStream` -> live statistics (top events of the last
//! five minutes, totals by latest response, RSVPs per minute) in DynamoDB -> `RsvpStatsStream` and
//! `GET /api/v1/rsvp/stats`.
//!
//! - `record.rs`: an RSVP as the stream sent it, decoded and validated
//! - `stats.rs`: the statistics, exact under duplicates, later versions, redelivery and crashes

pub mod record;
pub mod stats;

#[cfg(test)]
mod tests;

pub use record::{Response, Rsvp, RsvpDecoder};
pub use stats::{expected_stats, read_stats, RsvpStats, RsvpStatsHandler, Stats};

/// Where the ML step (GroupClustersFunction) keeps its latest answer for the dashboard: one item
/// of the RSVP state table, which the live API reads, the answer as JSON in one fact.
pub mod clusters_summary {
    use tally_engine::ports::StateReader;
    use tally_engine::{PortError, StateKey};

    /// The fact that holds the answer.
    pub const FACT: &str = "summary";

    pub fn key() -> StateKey {
        StateKey::new(super::stats::OWNER, "model#clusters")
    }

    /// The latest answer; `null` before the first run.
    pub async fn read<S: StateReader>(rsvp: &S) -> Result<serde_json::Value, PortError> {
        let item = rsvp.read_many(&[key()]).await?.pop().flatten();
        Ok(item
            .and_then(|i| i.facts.get(FACT).cloned())
            .and_then(|s| serde_json::from_str(&s).ok())
            .unwrap_or(serde_json::Value::Null))
    }
}
