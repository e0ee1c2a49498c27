//! tally's pipelines, one folder each: the domain of every pipeline, with no AWS SDK in it. Each
//! implements the engine's `Consumer` (or another `BatchHandler`) and says nothing of batching,
//! exactly-once writes, dead letters or publishing: `tally-engine` does those.
//!
//! - `gender/`: the gender service (seed 000)
//! - `rules/`: the property-interaction threshold rules (seed 003)
//! - `rsvp/`: the Meetup RSVP analytics (seed 004)
//! - `dashboard.rs`: the dashboard's live panels of the gender models and the rules
//!
//! The mobile events platform (seed 002) is a crate of its own, `tally-events`: only its functions
//! compile JSON Schema.

pub mod dashboard;
pub mod gender;
pub mod rsvp;
pub mod rules;

#[cfg(test)]
mod fuzz_tests;
