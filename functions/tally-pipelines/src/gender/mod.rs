//! The gender service (seed 000): `VisitsStream` -> MODEL1/2/3 -> `GenderResultsStream` -> the
//! results table -> the lookup API.
//!
//! - `visit.rs`: the records of `VisitsStream`, decoded and validated
//! - `model.rs`: the models, what state each keeps and how it answers
//! - `consumer.rs`: a model on the engine (fold visits per cid, publish the result)
//! - `result.rs`: the published result, and the results table's ports
//! - `results_writer.rs`: results into the table, newest revision wins

pub mod consumer;
pub mod model;
pub mod result;
pub mod results_writer;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod visit;

#[cfg(test)]
mod tests;

pub use consumer::{VisitConsumer, ALL_MODELS, FIRST_MODELS};
pub use model::{model_by_name, models, GenderModel, ModelSettings};
pub use result::{GenderResult, ResultLookup, ResultsUpsert};
pub use results_writer::ResultsWriter;
pub use visit::{Cid, Gender, Visit, VisitDecoder};
