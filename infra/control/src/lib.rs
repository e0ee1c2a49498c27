//! The AWS services the local cloud answers itself, without an emulator, each a function of the
//! template (read by `tally-stack`):
//!
//! - `iam/`: the template's roles and their policies; the edge checks every signed call with them
//! - `cloudformation.rs`: the running stack and its nested stacks, as `DescribeStacks` and
//!   `ListStackResources` describe them
//! - `athena.rs`: the lake's SQL (DuckDB over a copy of the local lake)

pub mod athena;
pub mod cloudformation;
pub mod iam;
