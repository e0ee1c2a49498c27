//! A gender model Lambda: `VisitsStream` -> the model's state per cid -> `GenderResultsStream`.
//! `MODEL` picks the model; the engine and the runner are shared.

use tally_aws::{aws_engine, AwsEngine, Env, Error, KinesisFunction, SdkConfig};
use tally_pipelines::gender::{model_by_name, GenderModel, ModelSettings, VisitConsumer};

pub type ModelFunction = KinesisFunction<AwsEngine<VisitConsumer<Box<dyn GenderModel>>>>;

/// Reads `MODEL`, `WINDOW_DAYS` and the engine's variables (`STATE_TABLE`, `RESULTS_STREAM`,
/// `DEAD_LETTER_BUCKET`, `DEAD_LETTER_PREFIX`, `AGGREGATION`).
pub fn from_env(config: &SdkConfig, env: &Env) -> Result<ModelFunction, Error> {
    let settings = ModelSettings {
        window_days: env.parse_at_least("WINDOW_DAYS", 7, 1)?,
    };
    let model = model_by_name(&env.var("MODEL")?, settings)?;
    let engine = aws_engine(VisitConsumer::new(model), config, env, "RESULTS_STREAM")?;
    Ok(KinesisFunction::new(engine))
}
