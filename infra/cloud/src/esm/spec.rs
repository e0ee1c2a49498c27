//! An event source mapping as the template declares it: an `AWS::Lambda::EventSourceMapping` or a
//! SAM `Kinesis` event, with every setting the local cloud honours, and a clear refusal of those it
//! does not.

use std::time::Duration;

use serde_json::Value as Json;

use super::filters::check_pattern;
use crate::kinesis::StartAt;
use tally_stack::mappings::kinesis_mappings;
use tally_stack::template::{number, Template, TemplateError};

pub enum StartingPosition {
    TrimHorizon,
    Latest,
    AtTimestamp(f64),
}

#[derive(Debug, Clone)]
pub struct MappingSpec {
    pub logical_id: String,
    pub function: String,
    pub stream_name: String,
    pub stream_arn: String,
    pub batch_size: usize,
    /// `ParallelizationFactor`: batches of one shard processed at once, each holding its own
    /// partition keys (order is kept per partition key, not per shard).
    pub parallelization: usize,
    pub batching_window: Duration,
    pub starting_position: StartAt,
    pub report_batch_item_failures: bool,
    pub bisect: bool,
    /// `None`: retry until the records expire (-1 in the template).
    pub max_retries: Option<u32>,
    pub max_record_age: Option<Duration>,
    /// Queue name of the SQS on-failure destination.
    pub on_failure_queue: Option<String>,
    pub filters: Vec<Json>,
}

fn flag(props: &Json, key: &str) -> bool {
    matches!(props.get(key), Some(Json::Bool(true)))
        || props.get(key).and_then(Json::as_str) == Some("true")
}

impl MappingSpec {
    /// From an `AWS::Lambda::EventSourceMapping` (resolved properties) or a SAM `Kinesis` event.
    pub fn from_properties(
        template: &Template, logical_id: &str, function: &str, props: &Json,
    ) -> Result<Self, TemplateError> {
        let at = format!("Resources.{logical_id}");
        let unsupported = |what: &str| TemplateError::Unsupported {
            what: what.to_string(),
            at: at.clone(),
        };
        let arn = props
            .get("EventSourceArn")
            .or(props.get("Stream"))
            .and_then(Json::as_str)
            .ok_or_else(|| unsupported("event source without a Kinesis stream ARN"))?;
        // A resource of this template of the one kind the local cloud can wire there.
        let resource_of_kind = |arn: &str, kind: &str, what: &str| match template.logical_id_of(arn)
        {
            None => Err(unsupported(&format!(
                "{what} {arn}: not a resource of this template"
            ))),
            Some(id) if template.resources[id].kind != kind => Err(unsupported(&format!(
                "{what} of type {} (locally only {kind})",
                template.resources[id].kind
            ))),
            Some(id) => Ok(id),
        };
        let stream_id = resource_of_kind(arn, "AWS::Kinesis::Stream", "event source")?;
        let parallelization = number(props, "ParallelizationFactor").unwrap_or(1.0);
        if !(1.0..=10.0).contains(&parallelization) || parallelization.fract() != 0.0 {
            return Err(unsupported(&format!(
                "ParallelizationFactor {parallelization} (1 to 10)"
            )));
        }
        if number(props, "TumblingWindowInSeconds").is_some_and(|n| n > 0.0) {
            return Err(unsupported("TumblingWindowInSeconds"));
        }
        if props
            .get("DestinationConfig")
            .and_then(|d| d.get("OnSuccess"))
            .is_some()
        {
            return Err(unsupported("DestinationConfig.OnSuccess"));
        }
        let starting_position = match props
            .get("StartingPosition")
            .and_then(Json::as_str)
            .unwrap_or("LATEST")
        {
            "TRIM_HORIZON" => StartAt::TrimHorizon,
            "LATEST" => StartAt::Latest,
            "AT_TIMESTAMP" => {
                StartAt::AtTimestamp(number(props, "StartingPositionTimestamp").unwrap_or_default())
            }
            other => return Err(unsupported(&format!("StartingPosition {other}"))),
        };
        let on_failure_queue = match props
            .get("DestinationConfig")
            .and_then(|d| d.get("OnFailure"))
            .and_then(|o| o.get("Destination"))
            .and_then(Json::as_str)
        {
            None => None,
            Some(dest) => Some(template.physical_name(resource_of_kind(
                dest,
                "AWS::SQS::Queue",
                "on-failure destination",
            )?)),
        };
        let mut filters = Vec::new();
        if let Some(list) = props
            .get("FilterCriteria")
            .and_then(|f| f.get("Filters"))
            .and_then(Json::as_array)
        {
            for f in list {
                let text = f.get("Pattern").and_then(Json::as_str).unwrap_or("{}");
                let pattern: Json = serde_json::from_str(text).map_err(|e| {
                    TemplateError::Invalid(format!("{at}: filter pattern is not JSON: {e}"))
                })?;
                check_pattern(&pattern).map_err(|what| TemplateError::Unsupported {
                    what,
                    at: at.clone(),
                })?;
                filters.push(pattern);
            }
        }
        let max_retries = match number(props, "MaximumRetryAttempts") {
            None => None,
            Some(n) if n < 0.0 => None,
            Some(n) => Some(n as u32),
        };
        let max_record_age = number(props, "MaximumRecordAgeInSeconds")
            .filter(|n| *n >= 0.0)
            .map(Duration::from_secs_f64);
        let responses = props
            .get("FunctionResponseTypes")
            .and_then(Json::as_array)
            .cloned()
            .unwrap_or_default();
        Ok(MappingSpec {
            logical_id: logical_id.to_string(),
            function: function.to_string(),
            stream_name: template.physical_name(stream_id),
            stream_arn: template.arn(stream_id)?,
            batch_size: number(props, "BatchSize").unwrap_or(100.0).max(1.0) as usize,
            parallelization: parallelization as usize,
            batching_window: Duration::from_secs_f64(
                number(props, "MaximumBatchingWindowInSeconds").unwrap_or(0.0),
            ),
            starting_position,
            report_batch_item_failures: responses.iter().any(|r| r == "ReportBatchItemFailures"),
            bisect: flag(props, "BisectBatchOnFunctionError"),
            max_retries,
            max_record_age,
            on_failure_queue,
            filters,
        })
    }

    /// Every Kinesis mapping of the template: explicit mappings and SAM `Kinesis` events.
    pub fn all(template: &Template) -> Result<Vec<MappingSpec>, TemplateError> {
        kinesis_mappings(template)?
            .iter()
            .map(|m| Self::from_properties(template, &m.logical_id, &m.function, &m.props))
            .collect()
    }
}
