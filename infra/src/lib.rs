//! The local cloud: runs tally's `template.yaml` on one machine, without Docker or an AWS account.

pub mod clients;
pub mod edge;
pub mod emulators;
pub mod provision;
pub mod template;
