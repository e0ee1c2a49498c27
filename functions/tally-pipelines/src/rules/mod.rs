//! The property-interaction threshold rules (seed 003): `InteractionsStream` -> paid_user,
//! property_status, possible_broker -> one alert stream each.
//!
//! - `interaction.rs`: the records of `InteractionsStream`, decoded and validated
//! - `rule.rs`: the rule table (what each counts by, when it holds, its alert)
//! - `consumer.rs`: a rule on the engine (count per key, emit each alert once)

pub mod consumer;
pub mod interaction;
pub mod rule;

#[cfg(test)]
mod tests;

pub use consumer::RuleConsumer;
pub use interaction::{Interaction, InteractionDecoder};
pub use rule::{Rule, RuleDef, RuleKey, RULES};
