//! What the template says of each pipeline, so that `template.yaml` stays the one source of truth
//! for the CLI (`tally put` keys), the demo (samples) and the bench (streams and functions). Each
//! stream carries it in its `Metadata`:
//!
//! ```yaml
//! VisitsStream:
//!   Type: AWS::Kinesis::Stream
//!   Metadata:
//!     Tally:
//!       Pipeline: gender           # the pipeline the stream belongs to
//!       PartitionKey: cid          # the record field that keys it
//!       Source: true               # apps put to it (the others are published by functions)
//!       Sample: infra/demo/visits.jsonl   # records `tally demo` puts (optional)
//! ```
//!
//! A pipeline's functions are those whose event source mappings read one of its streams, unless a
//! function names its own (`Metadata: {Tally: {Pipeline: dashboard}}`).

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::Value as Json;

use crate::mappings::kinesis_mappings;
use crate::template::{Template, TemplateError};

/// One stream of a pipeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamFacts {
    pub logical_id: String,
    pub pipeline: String,
    /// The record field whose value is the partition key.
    pub partition_key: Option<String>,
    /// Apps put to it; otherwise functions publish it.
    pub source: bool,
    /// Sample records for the demo, relative to the project root.
    pub sample: Option<PathBuf>,
}

/// A pipeline: its streams and the functions that read them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pipeline {
    pub name: String,
    pub sources: Vec<StreamFacts>,
    pub outputs: Vec<StreamFacts>,
    /// Logical ids of the functions with a mapping on one of its streams.
    pub functions: Vec<String>,
}

impl Pipeline {
    /// The stream apps put to (the first, when there are several).
    pub fn source(&self) -> Option<&StreamFacts> {
        self.sources.first()
    }
}

/// The facts of one stream, or `None` when it carries none.
pub fn stream_facts(
    template: &Template, logical_id: &str,
) -> Result<Option<StreamFacts>, TemplateError> {
    let Some(resource) = template.resources.get(logical_id) else {
        return Ok(None);
    };
    let Some(facts) = resource.metadata.get("Tally") else {
        return Ok(None);
    };
    let at = format!("Resources.{logical_id}.Metadata.Tally");
    let text = |key: &str| facts.get(key).and_then(Json::as_str).map(String::from);
    let pipeline =
        text("Pipeline").ok_or_else(|| TemplateError::Invalid(format!("{at}: no Pipeline")))?;
    let source = match facts.get("Source") {
        None | Some(Json::Bool(false)) => false,
        Some(Json::Bool(true)) => true,
        Some(Json::String(s)) if s == "true" || s == "false" => s == "true",
        Some(other) => {
            return Err(TemplateError::Invalid(format!(
                "{at}.Source: {other} is not true or false"
            )))
        }
    };
    Ok(Some(StreamFacts {
        logical_id: logical_id.to_string(),
        pipeline,
        partition_key: text("PartitionKey"),
        source,
        sample: text("Sample").map(PathBuf::from),
    }))
}

/// Every pipeline of the template, by name.
pub fn pipelines(template: &Template) -> Result<Vec<Pipeline>, TemplateError> {
    let mut by_name: BTreeMap<String, Pipeline> = BTreeMap::new();
    let mut streams: Vec<_> = template.of_kind("AWS::Kinesis::Stream").collect();
    streams.sort_by_key(|s| s.position);
    for stream in streams {
        let Some(facts) = stream_facts(template, &stream.logical_id)? else {
            continue;
        };
        let p = by_name
            .entry(facts.pipeline.clone())
            .or_insert_with(|| Pipeline {
                name: facts.pipeline.clone(),
                sources: Vec::new(),
                outputs: Vec::new(),
                functions: Vec::new(),
            });
        if facts.source {
            p.sources.push(facts);
        } else {
            p.outputs.push(facts);
        }
    }
    for mapping in kinesis_mappings(template)? {
        let stream = mapping.source(template).unwrap_or_default();
        // A function may say which pipeline it belongs to (the dashboard feed reads the outputs
        // of two); otherwise it belongs to the pipeline of the streams it reads.
        let declared = template.resources.get(&mapping.function).and_then(|r| {
            r.metadata
                .get("Tally")?
                .get("Pipeline")?
                .as_str()
                .map(String::from)
        });
        let owner = match declared {
            Some(name) => Some(
                by_name
                    .entry(name.clone())
                    .or_insert_with(|| Pipeline {
                        name,
                        sources: Vec::new(),
                        outputs: Vec::new(),
                        functions: Vec::new(),
                    })
                    .name
                    .clone(),
            ),
            None => stream_facts(template, stream)?.map(|f| f.pipeline),
        };
        if let Some(p) = owner.and_then(|name| by_name.get_mut(&name)) {
            if !p.functions.contains(&mapping.function) {
                p.functions.push(mapping.function);
            }
        }
    }
    Ok(by_name.into_values().collect())
}

/// The pipeline called `name`.
pub fn pipeline(template: &Template, name: &str) -> Result<Pipeline, TemplateError> {
    let all = pipelines(template)?;
    let known: Vec<String> = all.iter().map(|p| p.name.clone()).collect();
    all.into_iter().find(|p| p.name == name).ok_or_else(|| {
        TemplateError::Invalid(format!(
            "no pipeline {name} in the streams' Metadata (pipelines: {})",
            known.join(", ")
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn output_ids(p: &Pipeline) -> Vec<&str> {
        p.outputs.iter().map(|o| o.logical_id.as_str()).collect()
    }

    fn template() -> Template {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../template.yaml");
        Template::load(&path, "tally", &BTreeMap::new()).unwrap()
    }

    #[test]
    fn the_template_names_each_pipeline_with_its_streams_and_functions() {
        let t = template();
        let gender = pipeline(&t, "gender").unwrap();
        let source = gender.source().unwrap();
        assert_eq!(
            (source.logical_id.as_str(), source.partition_key.as_deref()),
            ("VisitsStream", Some("cid"))
        );
        assert_eq!(
            source.sample,
            Some(PathBuf::from("infra/demo/visits.jsonl"))
        );
        assert_eq!(output_ids(&gender), ["GenderResultsStream"]);
        let mut functions = gender.functions.clone();
        functions.sort();
        assert_eq!(
            functions,
            ["GenderModelsFunction", "ResultsWriterFunction"],
            "the default deployment: every model in one function"
        );
        let rules = pipeline(&t, "rules").unwrap();
        assert_eq!(
            rules.source().unwrap().partition_key.as_deref(),
            Some("user_id")
        );
        assert_eq!(
            output_ids(&rules),
            [
                "PaidUserStream",
                "PropertyStatusStream",
                "PossibleBrokerStream"
            ],
            "in the template's order"
        );
        assert_eq!(rules.functions.len(), 3);
        let keys: Vec<Option<String>> = rules
            .outputs
            .iter()
            .map(|o| o.partition_key.clone())
            .collect();
        assert!(keys.iter().all(Option::is_some), "{keys:?}");
        assert!(pipeline(&t, "nope")
            .unwrap_err()
            .to_string()
            .contains("pipelines: dashboard, events, gender, rsvp, rules"));
        let rsvp = pipeline(&t, "rsvp").unwrap();
        assert_eq!(
            rsvp.source().unwrap().partition_key.as_deref(),
            Some("event.event_id")
        );
        assert_eq!(rsvp.outputs[0].logical_id, "RsvpStatsStream");
        assert_eq!(rsvp.functions, ["RsvpStatsFunction"]);
        let dashboard = pipeline(&t, "dashboard").unwrap();
        assert_eq!(dashboard.functions, ["DashboardFeedFunction"]);
        assert!(dashboard.sources.is_empty());
        let events = pipeline(&t, "events").unwrap();
        assert_eq!(
            events.source().unwrap().partition_key.as_deref(),
            Some("device.id")
        );
        assert_eq!(events.functions, ["EventsMetricsFunction"]);
        assert!(events.outputs.is_empty());
    }
}
