//! CloudFormation's read API for the running stack, answered at the edge as AWS answers it
//! (query protocol, XML): `DescribeStacks`, `ListStackResources` (paginated) and
//! `DescribeStackResources`. The root is stack `tally` (or `--stack`); each nested application
//! is a stack of its own, `tally-GenderApp`, listed in its parent as an
//! `AWS::CloudFormation::Stack` whose physical id is its stack ARN, as on AWS. SAM's resources
//! are listed as SAM's transform makes them: a function as `AWS::Lambda::Function` with its
//! `<Function>Role`, an application as a stack, the HTTP API as `ServerlessHttpApi`. So a tool
//! finds a stream or a function by its logical id, here and on AWS, the same way.

use std::fmt::Write as _;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::Value as Json;
use tally_stack::template::{scalar_string, Template, TemplateError, ACCOUNT, REGION};

/// Rows of one `ListStackResources` page (AWS pages too; small enough that tools must follow
/// `NextToken` here as there).
const PAGE: usize = 25;

#[derive(Debug, Clone)]
pub struct StackResource {
    pub logical_id: String,
    pub physical_id: String,
    pub kind: String,
}

#[derive(Debug, Clone)]
pub struct Stack {
    pub name: String,
    pub id: String,
    /// The parent's stack ARN, for a nested stack.
    pub parent: Option<String>,
    pub parameters: Vec<(String, String)>,
    pub outputs: Vec<(String, String, Option<String>)>,
    pub resources: Vec<StackResource>,
}

/// The running stack and its nested stacks, as CloudFormation describes them.
#[derive(Debug, Clone)]
pub struct Stacks {
    pub stacks: Vec<Stack>,
    pub created: DateTime<Utc>,
}

fn stack_arn(name: &str) -> String {
    // A stack id ends in a UUID; this one is made from the name, so it is the same every run.
    let h = name.bytes().fold(0xcbf29ce484222325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100000001b3)
    });
    format!(
        "arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/{name}/{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
        h >> 32,
        (h >> 16) & 0xffff,
        h & 0xfff,
        (h >> 20) & 0xfff,
        h & 0xffff_ffff_ffff
    )
}

impl Stacks {
    /// `api_url`: where the local HTTP API answers, the value of the outputs that name AWS's
    /// `execute-api` host (SAM's implicit `ServerlessHttpApi`).
    pub fn of(template: &Template, api_url: &str) -> Result<Self, TemplateError> {
        let name_of = |scope: usize| {
            let app = &template.scopes[scope].app;
            if app.is_empty() {
                template.stack_name.clone()
            } else {
                format!("{}-{app}", template.stack_name)
            }
        };
        let mut stacks: Vec<Stack> = (0..template.scopes.len())
            .map(|i| {
                let name = name_of(i);
                Stack {
                    id: stack_arn(&name),
                    name,
                    parent: None,
                    parameters: template.scopes[i]
                        .parameters
                        .iter()
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect(),
                    outputs: Vec::new(),
                    resources: Vec::new(),
                }
            })
            .collect();
        let mut by_position: Vec<_> = template.resources.values().collect();
        by_position.sort_by_key(|r| (r.scope, r.position));
        let ids: Vec<String> = stacks.iter().map(|s| s.id.clone()).collect();
        for r in by_position {
            let reference = template.resolve_in(
                r.scope,
                &serde_json::json!({ "Ref": r.logical_id }),
                &r.logical_id,
            )?;
            let mut row = |logical_id: String, physical_id: String, kind: &str| {
                stacks[r.scope].resources.push(StackResource {
                    logical_id,
                    physical_id,
                    kind: kind.to_string(),
                })
            };
            match r.kind.as_str() {
                "AWS::Serverless::Application" => {
                    let child = template.scopes.iter().position(|s| s.app == r.logical_id);
                    let arn = child.map(|c| ids[c].clone()).unwrap_or_default();
                    row(r.logical_id.clone(), arn, "AWS::CloudFormation::Stack");
                }
                "AWS::Serverless::Function" => {
                    row(
                        r.logical_id.clone(),
                        scalar_string(&reference),
                        "AWS::Lambda::Function",
                    );
                    if template.resolved_properties(r)?.get("Role").is_none() {
                        let role = format!("{}Role", r.logical_id);
                        row(
                            role.clone(),
                            template.physical_name(&role),
                            "AWS::IAM::Role",
                        );
                    }
                }
                "AWS::Serverless::SimpleTable" => row(
                    r.logical_id.clone(),
                    scalar_string(&reference),
                    "AWS::DynamoDB::Table",
                ),
                "AWS::Serverless::HttpApi" => row(
                    r.logical_id.clone(),
                    scalar_string(&reference),
                    "AWS::ApiGatewayV2::Api",
                ),
                kind => row(r.logical_id.clone(), scalar_string(&reference), kind),
            }
        }
        // SAM's implicit HTTP API, where a function has an HttpApi event and no API of its own.
        for (i, stack) in stacks.iter_mut().enumerate() {
            let implicit = template.resources.values().any(|r| {
                r.scope == i
                    && r.kind == "AWS::Serverless::Function"
                    && r.properties["Events"]
                        .as_object()
                        .into_iter()
                        .flatten()
                        .any(|(_, e)| {
                            e["Type"] == "HttpApi" && e["Properties"].get("ApiId").is_none()
                        })
            });
            if implicit {
                stack.resources.push(StackResource {
                    logical_id: "ServerlessHttpApi".into(),
                    physical_id: format!("{}-ServerlessHttpApi", template.stack_name),
                    kind: "AWS::ApiGatewayV2::Api".into(),
                });
            }
        }
        for (i, scope) in template.scopes.iter().enumerate() {
            for (key, out) in &scope.outputs {
                let value = if names_the_http_api(&out["Value"], template) {
                    format!("{}/", api_url.trim_end_matches('/'))
                } else {
                    scalar_string(&template.resolve_in(
                        i,
                        &out["Value"],
                        &format!("Outputs.{key}"),
                    )?)
                };
                let description = out
                    .get("Description")
                    .and_then(Json::as_str)
                    .map(str::to_string);
                stacks[i].outputs.push((key.clone(), value, description));
            }
            if !scope.app.is_empty() {
                let parent = template
                    .resources
                    .get(&scope.app)
                    .map(|r| r.scope)
                    .unwrap_or(0);
                stacks[i].parent = Some(stacks[parent].id.clone());
            }
        }
        Ok(Stacks {
            stacks,
            created: Utc::now(),
        })
    }

    /// These stacks and `more` (a stack of the same name replaced).
    pub fn with(&self, more: &Stacks) -> Stacks {
        let mut stacks: Vec<Stack> = self
            .stacks
            .iter()
            .filter(|s| more.find(&s.name).is_none())
            .cloned()
            .collect();
        stacks.extend(more.stacks.iter().cloned());
        Stacks {
            stacks,
            created: self.created,
        }
    }

    fn find(&self, name_or_id: &str) -> Option<&Stack> {
        self.stacks
            .iter()
            .find(|s| s.name == name_or_id || s.id == name_or_id)
    }

    /// The answer to a query-protocol request (`Action=DescribeStacks&StackName=tally&...`):
    /// the status and the XML body.
    pub fn answer(&self, form: &str) -> (u16, String) {
        let param = |name: &str| form_value(form, name);
        let action = param("Action").unwrap_or_default();
        let stack = param("StackName");
        let found = match stack.as_deref() {
            Some(s) => match self.find(s) {
                Some(st) => Some(st),
                None => return error(&format!("Stack with id {s} does not exist")),
            },
            None => None,
        };
        let created = self.created.to_rfc3339_opts(SecondsFormat::Millis, true);
        let mut body = String::new();
        match (action.as_str(), found) {
            ("DescribeStacks", only) => {
                let list: Vec<&Stack> = match only {
                    Some(s) => vec![s],
                    None => self.stacks.iter().collect(),
                };
                for s in list {
                    let _ = write!(
                        body,
                        "<member><StackName>{}</StackName><StackId>{}</StackId><CreationTime>{created}</CreationTime><StackStatus>CREATE_COMPLETE</StackStatus>",
                        xml(&s.name),
                        xml(&s.id)
                    );
                    if let Some(p) = &s.parent {
                        let root = &self.stacks[0].id;
                        let _ = write!(body, "<ParentId>{}</ParentId><RootId>{}</RootId>", xml(p), xml(root));
                    }
                    body.push_str("<Parameters>");
                    for (k, v) in &s.parameters {
                        let _ = write!(body, "<member><ParameterKey>{}</ParameterKey><ParameterValue>{}</ParameterValue></member>", xml(k), xml(v));
                    }
                    body.push_str("</Parameters><Outputs>");
                    for (k, v, d) in &s.outputs {
                        let _ = write!(body, "<member><OutputKey>{}</OutputKey><OutputValue>{}</OutputValue>", xml(k), xml(v));
                        if let Some(d) = d {
                            let _ = write!(body, "<Description>{}</Description>", xml(d));
                        }
                        body.push_str("</member>");
                    }
                    body.push_str("</Outputs></member>");
                }
                respond("DescribeStacks", &format!("<Stacks>{body}</Stacks>"))
            }
            ("ListStackResources", Some(s)) => {
                let from: usize = param("NextToken").and_then(|t| t.parse().ok()).unwrap_or(0);
                for r in s.resources.iter().skip(from).take(PAGE) {
                    let _ = write!(
                        body,
                        "<member><LogicalResourceId>{}</LogicalResourceId><PhysicalResourceId>{}</PhysicalResourceId><ResourceType>{}</ResourceType><LastUpdatedTimestamp>{created}</LastUpdatedTimestamp><ResourceStatus>CREATE_COMPLETE</ResourceStatus><DriftInformation><StackResourceDriftStatus>NOT_CHECKED</StackResourceDriftStatus></DriftInformation></member>",
                        xml(&r.logical_id),
                        xml(&r.physical_id),
                        xml(&r.kind)
                    );
                }
                let next = if from + PAGE < s.resources.len() {
                    format!("<NextToken>{}</NextToken>", from + PAGE)
                } else {
                    String::new()
                };
                respond(
                    "ListStackResources",
                    &format!("<StackResourceSummaries>{body}</StackResourceSummaries>{next}"),
                )
            }
            ("DescribeStackResources", Some(s)) => {
                let logical = param("LogicalResourceId");
                for r in s
                    .resources
                    .iter()
                    .filter(|r| logical.as_deref().is_none_or(|l| l == r.logical_id))
                {
                    let _ = write!(
                        body,
                        "<member><StackName>{}</StackName><StackId>{}</StackId><LogicalResourceId>{}</LogicalResourceId><PhysicalResourceId>{}</PhysicalResourceId><ResourceType>{}</ResourceType><Timestamp>{created}</Timestamp><ResourceStatus>CREATE_COMPLETE</ResourceStatus></member>",
                        xml(&s.name),
                        xml(&s.id),
                        xml(&r.logical_id),
                        xml(&r.physical_id),
                        xml(&r.kind)
                    );
                }
                respond("DescribeStackResources", &format!("<StackResources>{body}</StackResources>"))
            }
            ("ListStackResources" | "DescribeStackResources", None) => {
                error("1 validation error detected: Value null at 'stackName' failed to satisfy constraint: Member must not be null")
            }
            (other, _) => error(&format!(
                "{other} is not answered by the local cloud (DescribeStacks, ListStackResources and DescribeStackResources are)"
            )),
        }
    }
}

/// Whether an output's value is the HTTP API's URL (AWS's `execute-api` host, locally the API's
/// address): it names SAM's implicit API, an explicit `AWS::Serverless::HttpApi`, or an
/// application's `ApiUrl` output.
fn names_the_http_api(v: &Json, template: &Template) -> bool {
    let text = v.to_string();
    text.contains("ServerlessHttpApi")
        || text.contains("Outputs.ApiUrl")
        || template
            .of_kind("AWS::Serverless::HttpApi")
            .any(|api| text.contains(&format!("${{{}}}", api.logical_id)))
}

fn respond(action: &str, result: &str) -> (u16, String) {
    (
        200,
        format!(
            "<{action}Response xmlns=\"http://cloudformation.amazonaws.com/doc/2010-05-15/\"><{action}Result>{result}</{action}Result><ResponseMetadata><RequestId>tally-local</RequestId></ResponseMetadata></{action}Response>"
        ),
    )
}

fn error(message: &str) -> (u16, String) {
    (
        400,
        format!(
            "<ErrorResponse xmlns=\"http://cloudformation.amazonaws.com/doc/2010-05-15/\"><Error><Type>Sender</Type><Code>ValidationError</Code><Message>{}</Message></Error><RequestId>tally-local</RequestId></ErrorResponse>",
            xml(message)
        ),
    )
}

fn xml(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn form_value(form: &str, name: &str) -> Option<String> {
    form.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == name).then(|| crate::iam::call::form_decode(v))
    })
}
