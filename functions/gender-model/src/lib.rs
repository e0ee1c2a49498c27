//! A gender model Lambda: `VisitsStream` -> the model's state per cid -> `GenderResultsStream`.
//! `MODEL` picks the model, or `ALL` runs every model (the default deployment): those of
//! `SHARED_MODELS` on one state item per cid (one write per cid per batch for all of them), any
//! model added since on items of its own; the engine and the runner are shared.

use tally_aws::{aws_engine, AwsEngine, ConfigError, Env, Error, KinesisFunction, SdkConfig};
use tally_engine::Fanout;
use tally_pipelines::gender::FIRST_MODELS;
use tally_pipelines::gender::{model_by_name, models, GenderModel, ModelSettings, VisitConsumer};

pub type ModelEngine = AwsEngine<VisitConsumer<Box<dyn GenderModel>>>;
pub type ModelFunction = KinesisFunction<Fanout<ModelEngine>>;

/// Reads `MODEL` (a model's name, or `ALL`), with `ALL` `SHARED_MODELS` (comma-separated, the
/// seed's three when unset), `WINDOW_DAYS` and the engine's variables (`STATE_TABLE`,
/// `RESULTS_STREAM`, `DEAD_LETTER_BUCKET`, `DEAD_LETTER_PREFIX`, `AGGREGATION`,
/// `PARALLELIZATION_FACTOR`).
pub fn from_env(config: &SdkConfig, env: &Env) -> Result<ModelFunction, Error> {
    let settings = ModelSettings {
        window_days: env.parse_at_least("WINDOW_DAYS", 7, 1)?,
    };
    let name = env.var("MODEL")?;
    if name != "ALL" {
        let model = model_by_name(&name, settings).map_err(|mut e| {
            e.known.push_str(" or ALL (every model, one item per cid)");
            e
        })?;
        let engine = aws_engine(VisitConsumer::new(model), config, env, "RESULTS_STREAM")?;
        return Ok(KinesisFunction::new(Fanout::of(engine)));
    }
    let shared = shared_models(env, settings)?;
    let (together, later): (Vec<_>, Vec<_>) = models(settings)
        .into_iter()
        .partition(|m| shared.iter().any(|s| s == m.name()));
    let engine = |consumer| aws_engine(consumer, config, env, "RESULTS_STREAM");
    let mut fanout = Fanout::of(engine(VisitConsumer::combined(together))?);
    for model in later {
        fanout
            .rest
            .push(engine(VisitConsumer::joined_later(model))?);
    }
    Ok(KinesisFunction::new(fanout))
}

/// `SHARED_MODELS`: names of known models, at least one.
fn shared_models(env: &Env, settings: ModelSettings) -> Result<Vec<String>, Error> {
    let Some(list) = env.get("SHARED_MODELS") else {
        return Ok(FIRST_MODELS.map(String::from).to_vec());
    };
    let names: Vec<String> = list
        .split(',')
        .map(|n| n.trim().to_string())
        .filter(|n| !n.is_empty())
        .collect();
    for n in &names {
        model_by_name(n, settings).map_err(|e| ConfigError::Invalid {
            name: "SHARED_MODELS",
            value: list.clone(),
            reason: e.to_string(),
        })?;
    }
    if names.is_empty() {
        return Err(ConfigError::Invalid {
            name: "SHARED_MODELS",
            value: list,
            reason: "names no model".into(),
        }
        .into());
    }
    Ok(names)
}
