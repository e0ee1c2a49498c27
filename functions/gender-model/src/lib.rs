//! A gender model Lambda: `VisitsStream` -> the model's state per cid -> `GenderResultsStream`.
//! `MODEL` picks the model, or `ALL` runs every model on one state item per cid (the default
//! deployment: one write per cid per batch for all of them); the engine and the runner are shared.

use tally_aws::{aws_engine, AwsEngine, Env, Error, KinesisFunction, SdkConfig};
use tally_pipelines::gender::{model_by_name, models, GenderModel, ModelSettings, VisitConsumer};

pub type ModelFunction = KinesisFunction<AwsEngine<VisitConsumer<Box<dyn GenderModel>>>>;

/// Reads `MODEL` (a model's name, or `ALL`), `WINDOW_DAYS` and the engine's variables (`STATE_TABLE`, `RESULTS_STREAM`,
/// `DEAD_LETTER_BUCKET`, `DEAD_LETTER_PREFIX`, `AGGREGATION`).
pub fn from_env(config: &SdkConfig, env: &Env) -> Result<ModelFunction, Error> {
    let settings = ModelSettings {
        window_days: env.parse_at_least("WINDOW_DAYS", 7, 1)?,
    };
    let name = env.var("MODEL")?;
    let consumer = if name == "ALL" {
        VisitConsumer::combined(models(settings))
    } else {
        let model = model_by_name(&name, settings).map_err(|mut e| {
            e.known.push_str(" or ALL (every model, one item per cid)");
            e
        })?;
        VisitConsumer::new(model)
    };
    let engine = aws_engine(consumer, config, env, "RESULTS_STREAM")?;
    Ok(KinesisFunction::new(engine))
}
