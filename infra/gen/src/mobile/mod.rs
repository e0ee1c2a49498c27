//! The mobile events platform's tools: a fleet of devices that makes up events
//! (`tally gen events`), and an SDK-like sender that posts them to `/collect` (`tally collect`).

pub mod generator;
pub mod sender;

pub use generator::{batches, Batch, Fleet};
pub use sender::{SendReport, Sender};
