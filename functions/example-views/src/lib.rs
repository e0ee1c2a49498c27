//! The example pipeline of the README's "Adding a pipeline": `ViewsStream` -> page views counted
//! per page and UTC minute in the state table -> `ViewCountsStream`. Its domain is `views.rs`,
//! its template `template.yaml` (a nested application the root deploys with
//! `ExamplePipeline=yes`), its sample event `events/ViewsFunction.json` at the project's root.

pub mod views;

#[cfg(test)]
mod tests;

use tally_aws::{aws_engine, AwsEngine, Env, Error, KinesisFunction, SdkConfig};

pub use views::{PageMinute, View, ViewCounter, ViewDecoder};

pub type ViewsFunction = KinesisFunction<AwsEngine<ViewCounter>>;

/// Reads the engine's variables: `STATE_TABLE`, `COUNTS_STREAM`, `DEAD_LETTER_BUCKET`,
/// `DEAD_LETTER_PREFIX`, `AGGREGATION`.
pub fn from_env(config: &SdkConfig, env: &Env) -> Result<ViewsFunction, Error> {
    let engine = aws_engine(ViewCounter::default(), config, env, "COUNTS_STREAM")?;
    Ok(KinesisFunction::new(engine))
}
