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
    /// Parameters whose `Ref` is a list (`CommaDelimitedList`, `List<...>`), as CloudFormation's.
    pub list_parameters: std::collections::BTreeSet<String>,
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
        &self, given: &BTreeMap<String, String>, who: &str,
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
        path: &Path, stack_name: &str, overrides: &BTreeMap<String, String>,
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
        &mut self, app: String, path: &Path, parameters: BTreeMap<String, String>,
        file: TemplateFile,
    ) -> Result<(), TemplateError> {
        let doc = &file.doc;
        let index = self.scopes.len();
        self.scopes.push(Scope {
            app: app.clone(),
            file: path.to_path_buf(),
            dir: path.parent().unwrap_or(Path::new(".")).to_path_buf(),
            parameters,
            list_parameters: doc
                .get("Parameters")
                .and_then(Json::as_object)
                .into_iter()
                .flatten()
                .filter(|(_, spec)| {
                    spec.get("Type")
                        .and_then(Json::as_str)
                        .is_some_and(|t| t == "CommaDelimitedList" || t.starts_with("List<"))
                })
                .map(|(name, _)| name.clone())
                .collect(),
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
        // An output whose condition is false does not exist, as in CloudFormation.
        let scope = &mut self.scopes[index];
        let mut outputs = std::mem::take(&mut scope.outputs);
        for (key, out) in &outputs {
            if let Some(c) = out.get("Condition").and_then(Json::as_str) {
                if !scope.conditions.contains_key(c) {
                    return Err(TemplateError::Invalid(format!(
                        "Outputs.{key}{}: unknown condition {c:?}",
                        in_app(&app)
                    )));
                }
            }
        }
        outputs.retain(|_, out| {
            out.get("Condition")
                .and_then(Json::as_str)
                .is_none_or(|c| scope.conditions[c])
        });
        scope.outputs = outputs;
        if let Some(rules) = doc.get("Rules").and_then(Json::as_object) {
            self.check_rules(index, rules, &defined)?;
        }
        let Some(res) = doc.get("Resources").and_then(Json::as_object) else {
            return Err(TemplateError::Invalid(format!(
                "no Resources section{}",
                in_app(&app)
            )));
        };
        for (id, r) in res {
            // CloudFormation refuses it: `!Ref` could not tell them apart.
            if self.scopes[index].parameters.contains_key(id) {
                return Err(TemplateError::Invalid(format!(
                    "{id}{} is both a parameter and a resource: they must not share a name",
                    in_app(&app)
                )));
            }
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
            "AWS::CloudWatch::Alarm" => {
                format!("arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{name}")
            }
            "AWS::SNS::Topic" => format!("arn:aws:sns:{REGION}:{ACCOUNT}:{name}"),
            "AWS::Logs::LogGroup" => format!("arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{name}:*"),
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
}

pub use intrinsics::{number, scalar_string};

mod intrinsics;
#[cfg(test)]
mod tests;
