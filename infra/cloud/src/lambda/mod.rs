//! Lambda in the local cloud: the template's functions as specs, and a host per function that
//! runs its real binary behind the Runtime API.

pub mod host;
pub mod spec;

pub use host::{FunctionHost, HostStats, InvokeError};
pub use spec::{function_environment, function_specs, FunctionSpec};
