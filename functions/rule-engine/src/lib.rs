//! A threshold rule Lambda: `InteractionsStream` -> the rule's counts -> its alert stream.
//! Which rule it runs comes from the `RULE` environment variable; the dispatch is shared.

use aws_config::SdkConfig;
use aws_lambda_events::event::streams::KinesisEventResponse;
use lambda_runtime::{Error, LambdaEvent};
use tally_aws::config::s3_client;
use tally_aws::kinesis_event::KinesisEvent;
use tally_aws::kinesis_event::{batch_response, stream_records};
use tally_aws::telemetry::emit_metrics;
use tally_aws::{DynamoStateStore, Env, KinesisPublisher, S3DeadLetters};
use tally_core::ports::{DeadLetterSink, RecordPublisher, StateStore};
use tally_core::rule_dispatch::{FinishedKeys, RuleDispatch};
use tally_core::rules::Rule;
use tally_core::Aggregation;

pub struct RuleFunction<S, P, D> {
    pub rule: Rule,
    pub store: S,
    pub publisher: P,
    pub dead_letters: D,
    pub aggregation: Aggregation,
    /// Keys whose alert is out, kept while this instance is warm.
    pub finished: FinishedKeys,
}

pub type AwsRuleFunction = RuleFunction<DynamoStateStore, KinesisPublisher, S3DeadLetters>;

impl AwsRuleFunction {
    /// Reads `RULE`, `THRESHOLD`, `WINDOW_SECONDS`, `WINDOW_STATE_SECONDS`, `STATE_TABLE`,
    /// `ALERTS_STREAM`, `DEAD_LETTER_BUCKET`, `DEAD_LETTER_PREFIX` and `AGGREGATION`.
    pub fn from_env(config: &SdkConfig, env: &Env) -> Result<Self, Error> {
        let rule = Rule::by_name(
            &env.var("RULE")?,
            env.required("THRESHOLD")?,
            env.parse("WINDOW_SECONDS", 60i64)?,
            env.parse("WINDOW_STATE_SECONDS", 86_400i64)?,
        )?;
        Ok(RuleFunction {
            rule,
            store: DynamoStateStore::new(
                aws_sdk_dynamodb::Client::new(config),
                env.var("STATE_TABLE")?,
            ),
            publisher: KinesisPublisher::new(
                aws_sdk_kinesis::Client::new(config),
                env.var("ALERTS_STREAM")?,
            ),
            dead_letters: S3DeadLetters::new(
                s3_client(config),
                env.var("DEAD_LETTER_BUCKET")?,
                env.var("DEAD_LETTER_PREFIX")?,
            ),
            aggregation: tally_aws::config::aggregation(env)?,
            finished: FinishedKeys::default(),
        })
    }
}

impl<S: StateStore, P: RecordPublisher, D: DeadLetterSink> RuleFunction<S, P, D> {
    pub async fn handle(
        &self,
        event: LambdaEvent<KinesisEvent>,
    ) -> Result<KinesisEventResponse, Error> {
        let records = stream_records(&event.payload)?;
        let mut dispatch =
            RuleDispatch::new(&self.rule, &self.store, &self.publisher, &self.dead_letters);
        dispatch.aggregation = self.aggregation;
        dispatch.finished = Some(&self.finished);
        let report = dispatch.run(&records, chrono::Utc::now()).await;
        emit_metrics(self.rule.name(), &report);
        Ok(batch_response(&report))
    }
}
