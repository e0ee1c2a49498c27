//! The stack as `template.yaml` declares it, for everything that runs or operates it (the local
//! cloud, the CLI, the bench):
//!
//! - `template/`: the template read: the root and its nested applications (scopes), parameters,
//!   resources, names, ARNs; `intrinsics.rs`, its conditions and intrinsic functions
//! - `mappings.rs`: which function reads which stream or queue
//! - `routes.rs`: the HTTP API's routes, and which one a request takes
//! - `pipelines.rs`: what the template says of each pipeline (its streams, keys, samples, functions)
//! - `catalog.rs`: the lake's part of it, made from the lake's table definitions (Glue tables,
//!   named queries) and the local views `tally sql` queries

pub mod catalog;
pub mod mappings;
pub mod pipelines;
pub mod routes;
pub mod template;

pub use pipelines::{pipeline, pipelines, stream_facts, Pipeline, StreamFacts};
pub use template::{Template, TemplateError};
