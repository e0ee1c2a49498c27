//! `template.yaml` as the local cloud reads it: resources, parameters, conditions (`Fn::Equals`,
//! `Fn::Not`, `Fn::And`, `Fn::Or`, `Condition`; a resource whose condition is false is not
//! there), and the intrinsic functions (`Ref`, `Fn::GetAtt`, `Fn::Sub`, `Fn::Join`, `Fn::Select`,
//! `Fn::Split`, `Fn::If` with `AWS::NoValue`) resolved against local physical names. Anything else
//! is reported as not supported locally, never silently skipped.
//!
//! Nested applications (`AWS::Serverless::Application` with a local `Location`) are read as
//! CloudFormation runs them: each template in its own scope (parameters passed by its parent,
//! its own conditions and `Globals`, its `Outputs` read by `!GetAtt App.Outputs.X`), and their
//! resources in one flat map, since every command addresses a resource by its logical ID: a
//! logical ID may appear only once across all the templates.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value as Json;
use serde_yaml::Value as Yaml;

pub const REGION: &str = "us-east-1";
pub const ACCOUNT: &str = "000000000000";

#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} is not valid YAML: {source}")]
    Yaml {
        path: String,
        source: serde_yaml::Error,
    },
    #[error("template: {0}")]
    Invalid(String),
    #[error("template feature not supported locally: {what} at {at}")]
    Unsupported { what: String, at: String },
}

#[derive(Debug, Clone)]
pub struct Resource {
    pub logical_id: String,
    /// The template it is declared in (an index of [`Template::scopes`]; 0 is the root).
    pub scope: usize,
    pub kind: String,
    /// Properties with YAML tags turned into their long JSON form (`{"Ref": ..}`), unresolved.
    pub properties: Json,
    pub metadata: Json,
    /// Where it stands among the template's resources (0 first): the order the author chose.
    pub position: usize,
}

/// One template of the stack: the root, or a nested application.
#[derive(Debug, Clone)]
pub struct Scope {
    /// The application's logical ID in its parent (`GenderApp`); empty for the root.
    pub app: String,
    /// The template file.
    pub file: PathBuf,
    /// The template's folder: its `CodeUri`s are relative to it, as in SAM.
    pub dir: PathBuf,
    pub parameters: BTreeMap<String, String>,
    pub conditions: BTreeMap<String, bool>,
    pub globals: Json,
    /// The `Outputs` section, unresolved.
    pub outputs: serde_json::Map<String, Json>,
}

#[derive(Debug, Clone)]
pub struct Template {
    pub resources: BTreeMap<String, Resource>,
    /// The root template's parameters.
    pub parameters: BTreeMap<String, String>,
    pub globals: Json,
    /// The root and every nested application, parents before children.
    pub scopes: Vec<Scope>,
    pub stack_name: String,
    /// The endpoint queue URLs are built on (the local cloud's edge, or an emulator in tests).
    pub queue_endpoint: String,
    /// Every condition of the `Conditions` section, evaluated with the parameters.
    pub conditions: BTreeMap<String, bool>,
    /// Resources left out because their condition is false: logical ID -> condition.
    pub omitted: BTreeMap<String, String>,
}

/// The resource type of a nested application.
pub const APPLICATION: &str = "AWS::Serverless::Application";

/// ` in GenderApp`, or nothing for the root template (for messages).
fn in_app(app: &str) -> String {
    if app.is_empty() {
        String::new()
    } else {
        format!(" in {app}")
    }
}

/// The applications whose outputs `v` names (`!GetAtt App.Outputs.X`).
fn outputs_named(v: &Json) -> Vec<String> {
    let mut out = Vec::new();
    match v {
        Json::Object(m) => {
            if let Some(Json::Array(a)) = m.get("Fn::GetAtt") {
                if let [Json::String(app), Json::String(attr)] = a.as_slice() {
                    if attr.starts_with("Outputs.") {
                        out.push(app.clone());
                    }
                }
            }
            for x in m.values() {
                out.extend(outputs_named(x));
            }
        }
        Json::Array(a) => a.iter().for_each(|x| out.extend(outputs_named(x))),
        _ => {}
    }
    out
}

/// What `Ref: AWS::NoValue` resolves to until the object or list holding it drops it.
const NO_VALUE: &str = "\u{0}tally:AWS::NoValue";

/// Turns YAML (with short-form tags) into JSON with long-form intrinsics.
fn to_json(v: &Yaml) -> Result<Json, TemplateError> {
    Ok(match v {
        Yaml::Null => Json::Null,
        Yaml::Bool(b) => Json::Bool(*b),
        Yaml::Number(n) => {
            if let Some(i) = n.as_i64() {
                Json::from(i)
            } else {
                Json::from(n.as_f64().unwrap_or_default())
            }
        }
        Yaml::String(s) => Json::String(s.clone()),
        Yaml::Sequence(items) => Json::Array(items.iter().map(to_json).collect::<Result<_, _>>()?),
        Yaml::Mapping(m) => {
            let mut out = serde_json::Map::new();
            for (k, v) in m {
                let key = match k {
                    Yaml::String(s) => s.clone(),
                    other => serde_yaml::to_string(other)
                        .unwrap_or_default()
                        .trim()
                        .to_string(),
                };
                out.insert(key, to_json(v)?);
            }
            Json::Object(out)
        }
        Yaml::Tagged(t) => {
            let tag = t.tag.to_string();
            let tag = tag.trim_start_matches('!');
            let name = if tag == "Ref" || tag == "Condition" {
                tag.to_string()
            } else {
                format!("Fn::{tag}")
            };
            let mut inner = to_json(&t.value)?;
            // `!GetAtt A.B` is the short form of `Fn::GetAtt: [A, B]`.
            if name == "Fn::GetAtt" {
                if let Json::String(s) = &inner {
                    let (a, b) = s.split_once('.').ok_or_else(|| {
                        TemplateError::Invalid(format!("!GetAtt {s} needs Resource.Attribute"))
                    })?;
                    inner = serde_json::json!([a, b]);
                }
            }
            serde_json::json!({ name: inner })
        }
    })
}

/// A template file read as JSON, with the author's order of its resources.
struct TemplateFile {
    doc: Json,
    declared: Vec<String>,
}

impl TemplateFile {
    fn read(path: &Path) -> Result<Self, TemplateError> {
        let text = std::fs::read_to_string(path).map_err(|source| TemplateError::Read {
            path: path.display().to_string(),
            source,
        })?;
        let yaml: Yaml = serde_yaml::from_str(&text).map_err(|source| TemplateError::Yaml {
            path: path.display().to_string(),
            source,
        })?;
        // JSON objects sort their keys; the YAML mapping keeps the author's order.
        let declared = yaml
            .get("Resources")
            .and_then(Yaml::as_mapping)
            .map(|m| {
                m.keys()
                    .filter_map(|k| k.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        Ok(TemplateFile {
            doc: to_json(&yaml)?,
            declared,
        })
    }

    /// The parameters' values: `given` where given, else the defaults.
    fn parameters(
        &self,
        given: &BTreeMap<String, String>,
        who: &str,
    ) -> Result<BTreeMap<String, String>, TemplateError> {
        let mut parameters = BTreeMap::new();
        if let Some(params) = self.doc.get("Parameters").and_then(Json::as_object) {
            for (name, spec) in params {
                let value = match given.get(name) {
                    Some(v) => v.clone(),
                    None => match spec.get("Default") {
                        Some(Json::String(s)) => s.clone(),
                        Some(Json::Number(n)) => n.to_string(),
                        Some(other) => other.to_string(),
                        None if who.is_empty() => {
                            return Err(TemplateError::Invalid(format!(
                                "parameter {name} has no Default: pass --parameter {name}=VALUE"
                            )))
                        }
                        None => {
                            return Err(TemplateError::Invalid(format!(
                                "{who} does not pass parameter {name}, which has no Default"
                            )))
                        }
                    },
                };
                parameters.insert(name.clone(), value);
            }
        }
        for name in given.keys() {
            if !parameters.contains_key(name) {
                return Err(TemplateError::Invalid(if who.is_empty() {
                    format!("unknown parameter {name}")
                } else {
                    format!("{who} passes parameter {name}, which its template does not declare")
                }));
            }
        }
        Ok(parameters)
    }
}

impl Template {
    pub fn load(
        path: &Path,
        stack_name: &str,
        overrides: &BTreeMap<String, String>,
    ) -> Result<Self, TemplateError> {
        let root = TemplateFile::read(path)?;
        let parameters = root.parameters(overrides, "")?;
        let mut template = Template {
            resources: BTreeMap::new(),
            parameters: parameters.clone(),
            globals: root.doc.get("Globals").cloned().unwrap_or(Json::Null),
            scopes: Vec::new(),
            stack_name: stack_name.to_string(),
            queue_endpoint: "http://127.0.0.1:4566".into(),
            conditions: BTreeMap::new(),
            omitted: BTreeMap::new(),
        };
        template.add_scope(String::new(), path, parameters, root)?;
        template.conditions = template.scopes[0].conditions.clone();
        template.add_applications()?;
        Ok(template)
    }

    /// Adds one template's scope and resources.
    fn add_scope(
        &mut self,
        app: String,
        path: &Path,
        parameters: BTreeMap<String, String>,
        file: TemplateFile,
    ) -> Result<(), TemplateError> {
        let doc = &file.doc;
        let index = self.scopes.len();
        self.scopes.push(Scope {
            app: app.clone(),
            file: path.to_path_buf(),
            dir: path.parent().unwrap_or(Path::new(".")).to_path_buf(),
            parameters,
            conditions: BTreeMap::new(),
            globals: doc.get("Globals").cloned().unwrap_or(Json::Null),
            outputs: doc
                .get("Outputs")
                .and_then(Json::as_object)
                .cloned()
                .unwrap_or_default(),
        });
        let defined = doc
            .get("Conditions")
            .and_then(Json::as_object)
            .cloned()
            .unwrap_or_default();
        for name in defined.keys() {
            let value = self.condition(index, name, &defined, &mut Vec::new())?;
            self.scopes[index].conditions.insert(name.clone(), value);
        }
        let Some(res) = doc.get("Resources").and_then(Json::as_object) else {
            return Err(TemplateError::Invalid(format!(
                "no Resources section{}",
                in_app(&app)
            )));
        };
        for (id, r) in res {
            let kind = r.get("Type").and_then(Json::as_str).ok_or_else(|| {
                TemplateError::Invalid(format!("resource {id}{} has no Type", in_app(&app)))
            })?;
            if let Some(c) = r.get("Condition") {
                let name = c.as_str().unwrap_or_default();
                match self.scopes[index].conditions.get(name) {
                    Some(true) => {}
                    Some(false) => {
                        self.omitted.insert(id.clone(), name.to_string());
                        continue;
                    }
                    None => {
                        return Err(TemplateError::Invalid(format!(
                            "Resources.{id}{}: unknown condition {name:?}",
                            in_app(&app)
                        )))
                    }
                }
            }
            if let Some(other) = self.resources.get(id) {
                return Err(TemplateError::Invalid(format!(
                    "logical ID {id} is declared in {} and in {}: logical IDs must be unique \
                     across the nested applications (commands address resources by them)",
                    self.scope_name(other.scope),
                    self.scope_name(index)
                )));
            }
            self.resources.insert(
                id.clone(),
                Resource {
                    logical_id: id.clone(),
                    scope: index,
                    kind: kind.to_string(),
                    properties: r
                        .get("Properties")
                        .cloned()
                        .unwrap_or(Json::Object(Default::default())),
                    metadata: r.get("Metadata").cloned().unwrap_or(Json::Null),
                    position: file
                        .declared
                        .iter()
                        .position(|d| d == id)
                        .map_or(usize::MAX, |p| index * 100_000 + p),
                },
            );
        }
        Ok(())
    }

    /// Reads every nested application, each once the outputs its parameters name are known.
    fn add_applications(&mut self) -> Result<(), TemplateError> {
        // In the author's order, so that the resources of all templates keep it too.
        let mut apps: Vec<&Resource> = self.of_kind(APPLICATION).collect();
        apps.sort_by_key(|r| r.position);
        let mut pending: Vec<String> = apps.iter().map(|r| r.logical_id.clone()).collect();
        while !pending.is_empty() {
            let ready = pending.iter().position(|id| {
                let r = &self.resources[id];
                outputs_named(&r.properties)
                    .iter()
                    .all(|app| self.scope_of_app(app).is_some() || !pending.contains(app))
            });
            let Some(ready) = ready else {
                return Err(TemplateError::Invalid(format!(
                    "the applications {} pass one another's outputs in a cycle",
                    pending.join(", ")
                )));
            };
            let id = pending.remove(ready);
            let r = self.resources[&id].clone();
            let at = format!("Resources.{id}.Properties");
            let props = self.resolve_in(r.scope, &r.properties, &at)?;
            let Some(location) = props.get("Location").and_then(Json::as_str) else {
                return Err(TemplateError::Unsupported {
                    what: "an application from the Serverless Application Repository (only a local Location)".into(),
                    at,
                });
            };
            let path = self.scopes[r.scope].dir.join(location);
            let given = props
                .get("Parameters")
                .and_then(Json::as_object)
                .into_iter()
                .flatten()
                .map(|(k, v)| (k.clone(), scalar_string(v)))
                .collect();
            let file = TemplateFile::read(&path)?;
            let parameters = file.parameters(&given, &id)?;
            let first_new = self.scopes.len();
            self.add_scope(id, &path, parameters, file)?;
            pending.extend(
                self.resources
                    .values()
                    .filter(|r| r.scope >= first_new && r.kind == APPLICATION)
                    .map(|r| r.logical_id.clone()),
            );
        }
        Ok(())
    }

    /// The scope of the application `app`, once it is read.
    pub fn scope_of_app(&self, app: &str) -> Option<usize> {
        self.scopes.iter().position(|s| s.app == app)
    }

    /// The template a scope comes from, for messages: `the root template`, `GenderApp`.
    fn scope_name(&self, scope: usize) -> String {
        match self.scopes[scope].app.as_str() {
            "" => "the root template".into(),
            app => app.to_string(),
        }
    }

    /// The folder of the template `r` is declared in.
    pub fn dir_of(&self, r: &Resource) -> &Path {
        &self.scopes[r.scope].dir
    }

    /// A function's code folder (its `CodeUri`, relative to its template) from the root
    /// template's folder: `functions/gender-model`.
    pub fn code_dir(&self, function: &Resource) -> Result<PathBuf, TemplateError> {
        let props = self.resolved_properties(function)?;
        let code = props.get("CodeUri").and_then(Json::as_str).unwrap_or(".");
        let full = self.dir_of(function).join(code);
        let rel = full.strip_prefix(&self.scopes[0].dir).unwrap_or(&full);
        let mut out = PathBuf::new();
        for c in rel.components() {
            match c {
                std::path::Component::ParentDir => {
                    out.pop();
                }
                std::path::Component::CurDir => {}
                other => out.push(other),
            }
        }
        Ok(out)
    }

    /// The `Globals` of the template `r` is declared in, resolved there.
    pub fn globals_of(&self, r: &Resource) -> Result<Json, TemplateError> {
        let scope = &self.scopes[r.scope];
        self.resolve_in(
            r.scope,
            &scope.globals,
            &format!("Globals{}", in_app(&scope.app)),
        )
    }

    /// Evaluates condition `name` of `defined` (conditions may name conditions; `seen` breaks
    /// cycles).
    fn condition(
        &self,
        scope: usize,
        name: &str,
        defined: &serde_json::Map<String, Json>,
        seen: &mut Vec<String>,
    ) -> Result<bool, TemplateError> {
        if let Some(v) = self.scopes[scope].conditions.get(name) {
            return Ok(*v);
        }
        if seen.iter().any(|s| s == name) {
            return Err(TemplateError::Invalid(format!(
                "condition {name} depends on itself"
            )));
        }
        let expr = defined
            .get(name)
            .ok_or_else(|| TemplateError::Invalid(format!("unknown condition {name:?}")))?;
        seen.push(name.to_string());
        let value = self.condition_value(scope, expr, defined, seen, &format!("Conditions.{name}"));
        seen.pop();
        value
    }

    fn condition_value(
        &self,
        scope: usize,
        expr: &Json,
        defined: &serde_json::Map<String, Json>,
        seen: &mut Vec<String>,
        at: &str,
    ) -> Result<bool, TemplateError> {
        let bad = || TemplateError::Invalid(format!("bad condition at {at}"));
        let (op, arg) = expr
            .as_object()
            .filter(|m| m.len() == 1)
            .and_then(|m| m.iter().next())
            .ok_or_else(bad)?;
        let args = || arg.as_array().ok_or_else(bad);
        match op.as_str() {
            "Condition" => self.condition(scope, arg.as_str().ok_or_else(bad)?, defined, seen),
            "Fn::Equals" => match args()?.as_slice() {
                [a, b] => Ok(scalar_string(&self.resolve_in(scope, a, at)?)
                    == scalar_string(&self.resolve_in(scope, b, at)?)),
                _ => Err(bad()),
            },
            "Fn::Not" => match args()?.as_slice() {
                [c] => Ok(!self.condition_value(scope, c, defined, seen, at)?),
                _ => Err(bad()),
            },
            "Fn::And" | "Fn::Or" => {
                let mut values = Vec::new();
                for c in args()? {
                    values.push(self.condition_value(scope, c, defined, seen, at)?);
                }
                Ok(if op == "Fn::And" {
                    values.iter().all(|v| *v)
                } else {
                    values.iter().any(|v| *v)
                })
            }
            other => Err(TemplateError::Unsupported {
                what: format!("{other} in a condition"),
                at: at.to_string(),
            }),
        }
    }

    /// Why `logical_id` is not in this deployment, when a condition left it out (for errors).
    pub fn why_absent(&self, logical_id: &str) -> Option<String> {
        let condition = self.omitted.get(logical_id)?;
        Some(format!(
            "{logical_id} is not deployed with these parameters: its condition {condition} is false"
        ))
    }

    pub fn of_kind<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = &'a Resource> + 'a {
        self.resources.values().filter(move |r| r.kind == kind)
    }

    /// The local physical name of a resource (what `Ref` returns for most types).
    pub fn physical_name(&self, logical_id: &str) -> String {
        let kind = self
            .resources
            .get(logical_id)
            .map(|r| r.kind.as_str())
            .unwrap_or_default();
        let name = format!("{}-{}", self.stack_name, logical_id);
        if kind == "AWS::S3::Bucket" {
            name.to_ascii_lowercase()
        } else {
            name
        }
    }

    pub fn arn(&self, logical_id: &str) -> Result<String, TemplateError> {
        let r = self
            .resources
            .get(logical_id)
            .ok_or_else(|| TemplateError::Invalid(format!("no resource {logical_id}")))?;
        let name = self.physical_name(logical_id);
        Ok(match r.kind.as_str() {
            "AWS::Kinesis::Stream" => format!("arn:aws:kinesis:{REGION}:{ACCOUNT}:stream/{name}"),
            "AWS::DynamoDB::Table" => format!("arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{name}"),
            "AWS::S3::Bucket" => format!("arn:aws:s3:::{name}"),
            "AWS::SQS::Queue" => format!("arn:aws:sqs:{REGION}:{ACCOUNT}:{name}"),
            "AWS::Serverless::Function" | "AWS::Lambda::Function" => {
                format!("arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}")
            }
            "AWS::IAM::Role" => format!("arn:aws:iam::{ACCOUNT}:role/{name}"),
            "AWS::KinesisFirehose::DeliveryStream" => {
                format!("arn:aws:firehose:{REGION}:{ACCOUNT}:deliverystream/{name}")
            }
            other => {
                return Err(TemplateError::Unsupported {
                    what: format!("Arn of {other}"),
                    at: format!("Resources.{logical_id}"),
                })
            }
        })
    }

    /// The logical id whose local ARN or physical name is `s`.
    pub fn logical_id_of(&self, s: &str) -> Option<&str> {
        self.resources.keys().map(String::as_str).find(|id| {
            *id == s || self.physical_name(id) == s || self.arn(id).ok().as_deref() == Some(s)
        })
    }

    pub fn queue_url(&self, logical_id: &str, endpoint: &str) -> String {
        format!(
            "{}/{ACCOUNT}/{}",
            endpoint.trim_end_matches('/'),
            self.physical_name(logical_id)
        )
    }

    fn reference(&self, scope: usize, name: &str, at: &str) -> Result<Json, TemplateError> {
        let sc = &self.scopes[scope];
        if let Some(v) = sc.parameters.get(name) {
            return Ok(Json::String(v.clone()));
        }
        match name {
            "AWS::Region" => return Ok(Json::from(REGION)),
            "AWS::AccountId" => return Ok(Json::from(ACCOUNT)),
            "AWS::Partition" => return Ok(Json::from("aws")),
            "AWS::URLSuffix" => return Ok(Json::from("amazonaws.com")),
            // A nested stack's own name, as CloudFormation names it (less its random suffix).
            "AWS::StackName" if sc.app.is_empty() => {
                return Ok(Json::from(self.stack_name.clone()))
            }
            "AWS::StackName" => return Ok(Json::from(format!("{}-{}", self.stack_name, sc.app))),
            _ => {}
        }
        let r = self
            .resources
            .get(name)
            .ok_or_else(|| TemplateError::Invalid(format!("Ref to unknown {name} at {at}")))?;
        Ok(Json::String(match r.kind.as_str() {
            "AWS::SQS::Queue" => self.queue_url(name, &self.queue_endpoint),
            _ => self.physical_name(name),
        }))
    }

    fn get_att(&self, id: &str, attr: &str, at: &str) -> Result<Json, TemplateError> {
        if let Some(output) = attr.strip_prefix("Outputs.") {
            return self.output(id, output, at);
        }
        match attr {
            "Arn" => self.arn(id).map(Json::String),
            "QueueName" | "Name" => Ok(Json::String(self.physical_name(id))),
            "QueueUrl" => Ok(Json::String(self.queue_url(id, &self.queue_endpoint))),
            _ => Err(TemplateError::Unsupported {
                what: format!("Fn::GetAtt {id}.{attr}"),
                at: at.to_string(),
            }),
        }
    }

    /// Resolves every intrinsic function in `v`. `at` names the place, for error messages.
    pub fn resolve(&self, v: &Json, at: &str) -> Result<Json, TemplateError> {
        self.resolve_in(0, v, at)
    }

    /// `!GetAtt App.Outputs.X`: the output `X` of the application `app`, resolved in its scope.
    fn output(&self, app: &str, name: &str, at: &str) -> Result<Json, TemplateError> {
        let scope = self.scope_of_app(app).ok_or_else(|| {
            TemplateError::Invalid(match self.why_absent(app) {
                Some(why) => format!("{why} (at {at})"),
                None => format!("Fn::GetAtt {app}.Outputs.{name}: no application {app} at {at}"),
            })
        })?;
        let value = self.scopes[scope]
            .outputs
            .get(name)
            .and_then(|o| o.get("Value"))
            .ok_or_else(|| {
                TemplateError::Invalid(format!(
                    "Fn::GetAtt {app}.Outputs.{name}: {app} has no output {name} (at {at})"
                ))
            })?;
        self.resolve_in(scope, value, &format!("{app}: Outputs.{name}"))
    }

    /// Resolves every intrinsic function in `v` as the template of `scope` sees them.
    pub fn resolve_in(&self, scope: usize, v: &Json, at: &str) -> Result<Json, TemplateError> {
        match v {
            Json::Array(items) => {
                let mut out = Vec::with_capacity(items.len());
                for i in items {
                    let v = self.resolve_in(scope, i, at)?;
                    if v != NO_VALUE {
                        out.push(v);
                    }
                }
                Ok(Json::Array(out))
            }
            Json::Object(map) if map.len() == 1 => {
                let (k, arg) = map.iter().next().unwrap();
                match k.as_str() {
                    "Ref" if arg == "AWS::NoValue" => Ok(Json::from(NO_VALUE)),
                    "Ref" => self.reference(scope, arg.as_str().unwrap_or_default(), at),
                    "Fn::If" => match arg.as_array().map(Vec::as_slice) {
                        Some([Json::String(name), then, otherwise]) => {
                            match self.scopes[scope].conditions.get(name) {
                                Some(true) => self.resolve_in(scope, then, at),
                                Some(false) => self.resolve_in(scope, otherwise, at),
                                None => Err(TemplateError::Invalid(format!(
                                    "Fn::If names unknown condition {name:?} at {at}"
                                ))),
                            }
                        }
                        _ => Err(TemplateError::Invalid(format!("bad Fn::If at {at}"))),
                    },
                    "Fn::GetAtt" => {
                        let parts: Vec<String> = match self.resolve_in(scope, arg, at)? {
                            Json::Array(a) => a
                                .iter()
                                .map(|p| p.as_str().unwrap_or_default().to_string())
                                .collect(),
                            Json::String(s) => s.splitn(2, '.').map(String::from).collect(),
                            _ => vec![],
                        };
                        match parts.as_slice() {
                            [id, attr] => self.get_att(id, attr, at),
                            _ => Err(TemplateError::Invalid(format!("bad Fn::GetAtt at {at}"))),
                        }
                    }
                    "Fn::Sub" => self.sub(scope, arg, at),
                    "Fn::Join" => {
                        let a = self.resolve_in(scope, arg, at)?;
                        let (sep, items) = (
                            a.get(0).and_then(Json::as_str).unwrap_or_default(),
                            a.get(1).and_then(Json::as_array),
                        );
                        let items = items.ok_or_else(|| {
                            TemplateError::Invalid(format!("bad Fn::Join at {at}"))
                        })?;
                        Ok(Json::String(
                            items
                                .iter()
                                .map(scalar_string)
                                .collect::<Vec<_>>()
                                .join(sep),
                        ))
                    }
                    "Fn::Select" => {
                        let a = self.resolve_in(scope, arg, at)?;
                        let i = a
                            .get(0)
                            .map(scalar_string)
                            .and_then(|s| s.parse::<usize>().ok());
                        let list = a.get(1).and_then(Json::as_array);
                        match (i, list) {
                            (Some(i), Some(list)) if i < list.len() => Ok(list[i].clone()),
                            _ => Err(TemplateError::Invalid(format!("bad Fn::Select at {at}"))),
                        }
                    }
                    "Fn::Split" => {
                        let a = self.resolve_in(scope, arg, at)?;
                        let sep = a.get(0).and_then(Json::as_str).unwrap_or_default();
                        let s = a.get(1).map(scalar_string).unwrap_or_default();
                        Ok(Json::Array(
                            s.split(sep).map(|p| Json::String(p.to_string())).collect(),
                        ))
                    }
                    k if k.starts_with("Fn::") || k == "Condition" => {
                        Err(TemplateError::Unsupported {
                            what: k.to_string(),
                            at: at.to_string(),
                        })
                    }
                    _ => {
                        let v = self.resolve_in(scope, arg, &format!("{at}.{k}"))?;
                        Ok(Json::Object(
                            std::iter::once((k.clone(), v))
                                .filter(|(_, v)| v != NO_VALUE)
                                .collect(),
                        ))
                    }
                }
            }
            Json::Object(map) => {
                let mut out = serde_json::Map::new();
                for (k, v) in map {
                    let v = self.resolve_in(scope, v, &format!("{at}.{k}"))?;
                    if v != NO_VALUE {
                        out.insert(k.clone(), v);
                    }
                }
                Ok(Json::Object(out))
            }
            other => Ok(other.clone()),
        }
    }

    fn sub(&self, scope: usize, arg: &Json, at: &str) -> Result<Json, TemplateError> {
        let (text, vars) = match arg {
            Json::String(s) => (s.clone(), serde_json::Map::new()),
            Json::Array(a) if a.len() == 2 => (
                a[0].as_str().unwrap_or_default().to_string(),
                self.resolve_in(scope, &a[1], at)?
                    .as_object()
                    .cloned()
                    .unwrap_or_default(),
            ),
            _ => return Err(TemplateError::Invalid(format!("bad Fn::Sub at {at}"))),
        };
        let mut out = String::new();
        let mut rest = text.as_str();
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            // `${!Literal}` writes `${Literal}`.
            if let Some(lit) = after.strip_prefix('!') {
                out.push_str("${");
                rest = lit;
                continue;
            }
            let end = after.find('}').ok_or_else(|| {
                TemplateError::Invalid(format!("unclosed ${{ in Fn::Sub at {at}"))
            })?;
            let name = &after[..end];
            let value = match vars.get(name) {
                Some(v) => v.clone(),
                None => match name.split_once('.') {
                    Some((id, attr)) if self.resources.contains_key(id) => {
                        self.get_att(id, attr, at)?
                    }
                    _ => self.reference(scope, name, at)?,
                },
            };
            out.push_str(&scalar_string(&value));
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        Ok(Json::String(out))
    }

    /// A resource's properties with every intrinsic resolved.
    pub fn resolved_properties(&self, r: &Resource) -> Result<Json, TemplateError> {
        self.resolve_in(
            r.scope,
            &r.properties,
            &format!("Resources.{}.Properties", r.logical_id),
        )
    }
}

pub fn scalar_string(v: &Json) -> String {
    match v {
        Json::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template() -> Template {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../template.yaml");
        Template::load(&path, "tally", &BTreeMap::new()).unwrap()
    }

    #[test]
    fn resolves_refs_getatts_and_subs_of_the_real_template() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../template.yaml");
        let per_model = BTreeMap::from([("GenderDeployment".into(), "per-model".into())]);
        let t = Template::load(&path, "tally", &per_model).unwrap();
        assert!(!t.resources.contains_key("GenderModelsFunction"));
        assert_eq!(t.omitted["GenderModelsFunction"], "CombinedDeployment");
        let f = &t.resources["Model2Function"];
        let props = t.resolved_properties(f).unwrap();
        let env = &props["Environment"]["Variables"];
        assert_eq!(env["MODEL"], "MODEL2");
        assert_eq!(env["STATE_TABLE"], "tally-GenderStateTable");
        assert_eq!(env["WINDOW_DAYS"], "7");
        let stmts = &props["Policies"][0]["Statement"];
        assert_eq!(
            stmts[3]["Resource"],
            "arn:aws:s3:::tally-archivebucket/dead-letter/MODEL2/*"
        );
        let esm = t.resolved_properties(&t.resources["Model2Visits"]).unwrap();
        assert_eq!(
            esm["EventSourceArn"],
            "arn:aws:kinesis:us-east-1:000000000000:stream/tally-VisitsStream"
        );
        assert_eq!(esm["BatchSize"], "2000");
    }

    #[test]
    fn parameters_can_be_overridden_and_unknown_ones_are_refused() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../template.yaml");
        let t = Template::load(
            &path,
            "tally",
            &BTreeMap::from([("WindowDays".into(), "3".into())]),
        )
        .unwrap();
        assert_eq!(t.parameters["WindowDays"], "3");
        let err = Template::load(
            &path,
            "tally",
            &BTreeMap::from([("Nope".into(), "3".into())]),
        )
        .unwrap_err();
        assert_eq!(err.to_string(), "template: unknown parameter Nope");
    }

    #[test]
    fn unsupported_intrinsics_are_named() {
        let t = template();
        let err = t
            .resolve(
                &serde_json::json!({"Fn::FindInMap": ["M", "a", "b"]}),
                "Resources.X.Properties.Y",
            )
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "template feature not supported locally: Fn::FindInMap at Resources.X.Properties.Y"
        );
    }

    fn conditional(mode: &str) -> Template {
        let dir = std::env::temp_dir().join(format!("tally-cond-{}-{mode}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("template.yaml");
        std::fs::write(
            &path,
            r#"
Parameters:
  Mode:
    Type: String
    Default: one
  Size:
    Type: Number
    Default: 3
Conditions:
  IsOne: !Equals [!Ref Mode, one]
  IsMany: !Not [!Condition IsOne]
  ManyAndBig: !And [!Condition IsMany, !Or [!Equals [!Ref Size, 3], !Equals [!Ref Size, 4]]]
Resources:
  One:
    Type: AWS::SQS::Queue
    Condition: IsOne
  Many:
    Type: AWS::SQS::Queue
    Condition: IsMany
    Properties:
      DelaySeconds: !If [ManyAndBig, 5, !Ref AWS::NoValue]
      Tags: [!If [IsOne, {Key: a, Value: b}, !Ref AWS::NoValue]]
"#,
        )
        .unwrap();
        Template::load(
            &path,
            "tally",
            &BTreeMap::from([("Mode".into(), mode.into())]),
        )
        .unwrap()
    }

    #[test]
    fn conditions_choose_resources_and_values() {
        let one = conditional("one");
        assert!(one.resources.contains_key("One") && !one.resources.contains_key("Many"));
        assert!(!one.conditions["IsMany"]);
        let many = conditional("many");
        assert!(!many.resources.contains_key("One"));
        assert!(many.conditions["ManyAndBig"]);
        let props = many.resolved_properties(&many.resources["Many"]).unwrap();
        assert_eq!(props["DelaySeconds"], 5);
        assert_eq!(
            props["Tags"],
            serde_json::json!([]),
            "AWS::NoValue drops the item"
        );
        let none = many
            .resolve(
                &serde_json::json!({"A": {"Fn::If": ["IsOne", 1, {"Ref": "AWS::NoValue"}]}, "B": 2}),
                "X",
            )
            .unwrap();
        assert_eq!(
            none,
            serde_json::json!({"B": 2}),
            "AWS::NoValue drops the key"
        );
    }

    /// A root with one nested application in a folder of its own; `child` is its template.
    fn nested(name: &str, passes: &str, child: &str) -> Result<Template, TemplateError> {
        let dir = std::env::temp_dir().join(format!("tally-nested-{}-{name}", std::process::id()));
        std::fs::create_dir_all(dir.join("app")).unwrap();
        std::fs::write(
            dir.join("template.yaml"),
            format!(
                r#"
Parameters:
  Mode:
    Type: String
    Default: one
Resources:
  Shared:
    Type: AWS::SQS::Queue
  App:
    Type: AWS::Serverless::Application
    Properties:
      Location: app/template.yaml
      Parameters:
{passes}
  Reader:
    Type: AWS::SQS::Queue
    Properties:
      QueueName: !GetAtt App.Outputs.StreamArn
"#
            ),
        )
        .unwrap();
        std::fs::write(dir.join("app/template.yaml"), child).unwrap();
        Template::load(&dir.join("template.yaml"), "tally", &BTreeMap::new())
    }

    const CHILD: &str = r#"
Parameters:
  Mode:
    Type: String
  SharedArn:
    Type: String
Globals:
  Function:
    Timeout: 9
Conditions:
  IsOne: !Equals [!Ref Mode, one]
Resources:
  Stream:
    Type: AWS::Kinesis::Stream
    Properties:
      Name: !If [IsOne, !Sub "${AWS::StackName}-one", many]
      Tags: [{Key: queue, Value: !Ref SharedArn}]
Outputs:
  StreamArn:
    Value: !GetAtt Stream.Arn
"#;

    #[test]
    fn nested_applications_get_their_parameters_and_give_their_outputs() {
        let passes = "        Mode: !Ref Mode\n        SharedArn: !GetAtt Shared.Arn";
        let t = nested("ok", passes, CHILD).unwrap();
        assert_eq!(t.scopes.len(), 2);
        let stream = &t.resources["Stream"];
        assert_eq!(t.scopes[stream.scope].app, "App");
        assert!(t.dir_of(stream).ends_with("app"));
        assert_eq!(t.globals_of(stream).unwrap()["Function"]["Timeout"], 9);
        let props = t.resolved_properties(stream).unwrap();
        assert_eq!(props["Name"], "tally-App-one", "the child's own stack name");
        assert_eq!(
            props["Tags"][0]["Value"],
            "arn:aws:sqs:us-east-1:000000000000:tally-Shared"
        );
        let reader = t.resolved_properties(&t.resources["Reader"]).unwrap();
        assert_eq!(
            reader["QueueName"],
            "arn:aws:kinesis:us-east-1:000000000000:stream/tally-Stream"
        );
    }

    #[test]
    fn a_nested_application_must_get_what_it_declares_and_declare_what_it_gets() {
        let missing = nested("missing", "        Mode: !Ref Mode", CHILD).unwrap_err();
        assert_eq!(
            missing.to_string(),
            "template: App does not pass parameter SharedArn, which has no Default"
        );
        let extra = "        Mode: !Ref Mode\n        SharedArn: x\n        Size: 3";
        let extra = nested("extra", extra, CHILD).unwrap_err();
        assert_eq!(
            extra.to_string(),
            "template: App passes parameter Size, which its template does not declare"
        );
    }

    #[test]
    fn a_logical_id_is_unique_across_the_applications() {
        let child = CHILD
            .replace("  Stream:", "  Shared:")
            .replace("Stream.Arn", "Shared.Arn");
        let passes = "        Mode: !Ref Mode\n        SharedArn: x";
        let err = nested("dup", passes, &child).unwrap_err();
        assert!(
            err.to_string().starts_with(
                "template: logical ID Shared is declared in the root template and in App"
            ),
            "{err}"
        );
    }

    #[test]
    fn the_real_template_is_a_root_of_applications() {
        let t = template();
        let apps: Vec<&str> = t.scopes.iter().skip(1).map(|s| s.app.as_str()).collect();
        assert_eq!(
            apps,
            [
                "GenderApp",
                "RulesApp",
                "RsvpApp",
                "EventsApp",
                "LakeApp",
                "ApiApp"
            ]
        );
        // Every stream and function is in an application; the root keeps what they share.
        for r in t.resources.values() {
            let in_root = r.scope == 0;
            match r.kind.as_str() {
                "AWS::Kinesis::Stream" | "AWS::Serverless::Function" => {
                    assert!(!in_root, "{} is in the root", r.logical_id)
                }
                "AWS::S3::Bucket" | "AWS::Glue::Database" | "AWS::SNS::Topic" => {
                    assert!(in_root, "{} is not in the root", r.logical_id)
                }
                _ => {}
            }
        }
    }
}
