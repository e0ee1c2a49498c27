//! A threshold rule Lambda: `InteractionsStream` -> the rule's counts -> its alert stream.
//! `RULE` picks a row of the rule table; the engine and the runner are shared.

use tally_aws::{aws_engine, AwsEngine, Env, Error, KinesisFunction, SdkConfig};
use tally_engine::windows::Tumbling;
use tally_pipelines::rules::rule::{RuleDef, RuleWindow};
use tally_pipelines::rules::{Rule, RuleConsumer};

pub type RuleFunction = KinesisFunction<AwsEngine<RuleConsumer>>;

/// Reads `RULE`, `THRESHOLD`, for windowed rules `WINDOW_SECONDS` and `WINDOW_STATE_SECONDS`, and
/// `PARALLELIZATION_FACTOR` (the mapping's, 1 when unset: it picks the watermarks' scope), and
/// the engine's variables (`STATE_TABLE`, `ALERTS_STREAM`, `DEAD_LETTER_BUCKET`,
/// `DEAD_LETTER_PREFIX`, `AGGREGATION`).
pub fn from_env(config: &SdkConfig, env: &Env) -> Result<RuleFunction, Error> {
    let def = RuleDef::by_name(&env.var("RULE")?)?;
    let window = match def.windowed {
        true => Some(RuleWindow {
            tumbling: Tumbling::new(env.required("WINDOW_SECONDS")?),
            state_seconds: env.required("WINDOW_STATE_SECONDS")?,
        }),
        false => None,
    };
    let rule = Rule {
        def,
        threshold: env.required("THRESHOLD")?,
        window,
    };
    let factor = env.parse_at_least("PARALLELIZATION_FACTOR", 1, 1)?;
    let consumer = RuleConsumer::with_parallelization(rule, factor);
    let engine = aws_engine(consumer, config, env, "ALERTS_STREAM")?;
    Ok(KinesisFunction::new(engine))
}
