//! The intrinsic functions and conditions, resolved as the template of a scope sees them:
//! `Ref` (parameters, pseudo parameters, local physical names), `Fn::GetAtt` (with a nested
//! application's `Outputs.X`), `Fn::Sub`, `Fn::Join`, `Fn::Select`, `Fn::Split`, `Fn::If` with
//! `AWS::NoValue`, and `Fn::Equals`, `Fn::Not`, `Fn::And`, `Fn::Or`, `Condition` in conditions
//! and in `Rules`.

use serde_json::Value as Json;

use super::{Resource, Template, TemplateError, ACCOUNT, NO_VALUE, REGION};

impl Template {
    /// Evaluates condition `name` of `defined` (conditions may name conditions; `seen` breaks
    /// cycles).
    pub(super) fn condition(
        &self, scope: usize, name: &str, defined: &serde_json::Map<String, Json>,
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

    /// The template's `Rules`, as CloudFormation checks them before it creates anything: when a
    /// rule's `RuleCondition` holds (or it has none), each of its `Assertions` must, else the
    /// stack is refused with that assertion's `AssertDescription`.
    pub(super) fn check_rules(
        &self, scope: usize, rules: &serde_json::Map<String, Json>,
        defined: &serde_json::Map<String, Json>,
    ) -> Result<(), TemplateError> {
        for (name, rule) in rules {
            let at = format!("Rules.{name}");
            if let Some(c) = rule.get("RuleCondition") {
                if !self.condition_value(scope, c, defined, &mut Vec::new(), &at)? {
                    continue;
                }
            }
            for a in rule["Assertions"].as_array().into_iter().flatten() {
                if !self.condition_value(scope, &a["Assert"], defined, &mut Vec::new(), &at)? {
                    let why = a["AssertDescription"]
                        .as_str()
                        .unwrap_or("an assertion fails");
                    return Err(TemplateError::Invalid(format!("{at}: {why}")));
                }
            }
        }
        Ok(())
    }

    fn condition_value(
        &self, scope: usize, expr: &Json, defined: &serde_json::Map<String, Json>,
        seen: &mut Vec<String>, at: &str,
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
            // A rule's: every member of a list is the value (an empty CommaDelimitedList is [""]).
            "Fn::EachMemberEquals" => match args()?.as_slice() {
                [list, value] => {
                    let value = scalar_string(&self.resolve_in(scope, value, at)?);
                    let list = self.resolve_in(scope, list, at)?;
                    let members = list.as_array().ok_or_else(bad)?;
                    Ok(members.iter().all(|m| scalar_string(m) == value))
                }
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

    fn reference(&self, scope: usize, name: &str, at: &str) -> Result<Json, TemplateError> {
        let sc = &self.scopes[scope];
        if let Some(v) = sc.parameters.get(name) {
            if sc.list_parameters.contains(name) {
                // As CloudFormation: its items, trimmed ("" is one empty item).
                return Ok(Json::Array(
                    v.split(',').map(|i| Json::from(i.trim())).collect(),
                ));
            }
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

/// A numeric property, which templates write as a number or as a string (`"5"`, a parameter).
pub fn number(props: &Json, key: &str) -> Option<f64> {
    props
        .get(key)
        .map(scalar_string)
        .and_then(|s| s.parse().ok())
}

pub fn scalar_string(v: &Json) -> String {
    match v {
        Json::String(s) => s.clone(),
        other => other.to_string(),
    }
}
