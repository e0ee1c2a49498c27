//! Domain logic of tally, with no AWS SDK in it: decoding and validation, the gender models and
//! their windows, the exactly-once dispatch, and the ports the AWS adapters implement.

pub mod dispatch;
pub mod exactly_once;
pub mod model;
pub mod ports;
pub mod record;
pub mod result;
pub mod results_writer;
pub mod rule_dispatch;
pub mod rules;
pub mod sequence;
pub mod visit;

#[cfg(test)]
mod dispatch_tests;
#[cfg(test)]
mod fakes;
#[cfg(test)]
mod rule_tests;

pub use dispatch::{Aggregation, DispatchReport, ModelDispatch};
pub use model::{model_by_name, models, GenderModel, ModelSettings};
pub use record::{DeadLetter, Rejection, StreamRecord};
pub use result::GenderResult;
pub use sequence::SequenceNumber;
pub use visit::{Cid, Gender, Visit, VisitDecoder};
