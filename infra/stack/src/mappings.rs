//! The event source mappings the template declares, as written: `AWS::Lambda::EventSourceMapping`
//! resources and SAM `Kinesis` events. What each setting means is the local cloud's concern
//! (`tally-cloud`'s `esm/spec.rs`); which function reads which stream is everyone's (the
//! pipelines, the CLI, the bench).

use serde_json::Value as Json;

use crate::template::{Resource, Template, TemplateError};

/// One declared mapping: where it is declared, its function's logical id and its resolved
/// properties (`EventSourceArn` for a mapping resource, `Stream` for a SAM event).
#[derive(Debug, Clone)]
pub struct DeclaredMapping {
    /// `LogicalId` of a mapping resource, `Function.Events.Name` of a SAM event.
    pub logical_id: String,
    pub function: String,
    pub props: Json,
}

impl DeclaredMapping {
    /// The ARN of the stream or queue it reads.
    pub fn source_arn(&self) -> Option<&str> {
        self.props
            .get("EventSourceArn")
            .or(self.props.get("Stream"))
            .and_then(Json::as_str)
    }

    /// The logical id of the resource it reads, when it is one of the template's.
    pub fn source<'t>(&self, template: &'t Template) -> Option<&'t str> {
        template.logical_id_of(self.source_arn()?)
    }
}

/// The enabled `AWS::Lambda::EventSourceMapping`s, with their function's logical id and their
/// resolved properties.
pub fn explicit_mappings(
    template: &Template,
) -> Result<Vec<(&Resource, &str, Json)>, TemplateError> {
    let mut out = Vec::new();
    for r in template.of_kind("AWS::Lambda::EventSourceMapping") {
        let props = template.resolved_properties(r)?;
        if props.get("Enabled") == Some(&Json::Bool(false)) {
            continue;
        }
        let name = props
            .get("FunctionName")
            .and_then(Json::as_str)
            .unwrap_or_default();
        let function = template.logical_id_of(name).ok_or_else(|| {
            TemplateError::Invalid(format!(
                "Resources.{}: FunctionName {name} is not a function of this template",
                r.logical_id
            ))
        })?;
        out.push((r, function, props));
    }
    Ok(out)
}

/// The resource type of a mapping's event source, when it is a resource of the template.
pub fn source_kind<'t>(template: &'t Template, props: &Json) -> Option<&'t str> {
    let arn = props.get("EventSourceArn").and_then(Json::as_str)?;
    let id = template.logical_id_of(arn)?;
    Some(template.resources[id].kind.as_str())
}

/// Every Kinesis mapping: the explicit ones whose source is not a queue, and every SAM `Kinesis`
/// event (a SAM event type the local cloud does not run is refused here, by name).
pub fn kinesis_mappings(template: &Template) -> Result<Vec<DeclaredMapping>, TemplateError> {
    let mut out = Vec::new();
    for (r, function, props) in explicit_mappings(template)? {
        if source_kind(template, &props) == Some("AWS::SQS::Queue") {
            continue; // an SQS mapping
        }
        out.push(DeclaredMapping {
            logical_id: r.logical_id.clone(),
            function: function.to_string(),
            props,
        });
    }
    for f in template.of_kind("AWS::Serverless::Function") {
        let props = template.resolved_properties(f)?;
        let Some(events) = props.get("Events").and_then(Json::as_object) else {
            continue;
        };
        for (name, e) in events {
            match e.get("Type").and_then(Json::as_str) {
                Some("Kinesis") => out.push(DeclaredMapping {
                    logical_id: format!("{}.Events.{name}", f.logical_id),
                    function: f.logical_id.clone(),
                    props: e["Properties"].clone(),
                }),
                Some("HttpApi") | Some("Api") | None => {}
                Some(other) => {
                    return Err(TemplateError::Unsupported {
                        what: format!("event type {other}"),
                        at: format!("Resources.{}.Properties.Events.{name}", f.logical_id),
                    })
                }
            }
        }
    }
    Ok(out)
}
