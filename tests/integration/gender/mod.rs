//! The gender pipeline (seed 000): each function on its events/ file against the emulators,
//! exactly-once state under crashes and redelivery, the API's answers, and end to end on the
//! local cloud; answers are checked against an independent computation (`oracle.rs`).

mod api;
mod end_to_end;
mod event_files;
mod exactly_once;
pub mod oracle;
