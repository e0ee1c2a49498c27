//! The mobile events platform (seed 002): app events of many types, each type one JSON Schema in
//! `schemas/events/`, validated the same way wherever they arrive.
//!
//! - `schema.rs`: the event types, compiled from their schemas
//! - `event.rs`: an event as the contract gives it, decoded and validated
//! - `collect.rs`: `POST /collect`'s body: decoding, limits, per-event acceptance
//! - `seal.rs`: which events passed through `/collect` (an HMAC only tally can make); the rest
//!   count under the app `direct`
//! - `metrics.rs`: live counts per app, event type and minute, each (`app_id`, `event_id`) once

pub mod collect;
pub mod event;
pub mod metrics;
pub mod schema;
pub mod seal;

#[cfg(test)]
mod tests;

/// Where VendorOpensFunction keeps its latest answer (today's flyer opens per vendor, from the
/// warehouse) for the dashboard: one item of the events' state table.
pub const VENDOR_OPENS_ANSWER: tally_engine::ports::KeptAnswer = tally_engine::ports::KeptAnswer {
    owner: metrics::OWNER,
    name: "warehouse#vendor_opens",
};

pub use event::{Event, EventDecoder};
pub use metrics::{expected_metrics, read_metrics, EventsMetrics, EventsMetricsHandler, Metrics};
pub use schema::{EventType, EventTypes};
pub use seal::{IngestSeal, SealKeys, Seals, DIRECT_APP};
