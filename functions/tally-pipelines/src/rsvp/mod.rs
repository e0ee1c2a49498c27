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
/// of the RSVP state table, which the live API reads.
pub const CLUSTERS_ANSWER: tally_engine::ports::KeptAnswer = tally_engine::ports::KeptAnswer {
    owner: stats::OWNER,
    name: "model#clusters",
};
