//! Identity policy statements and their evaluation, as IAM evaluates them: an explicit `Deny`
//! wins, then any `Allow`, else the call is denied implicitly. Actions match case-insensitively
//! with `*` and `?`, resources with `*` and `?`; conditions are the operators templates use
//! (string, ARN and `Bool`, with `ForAllValues:` / `ForAnyValue:` and `...IfExists`).

use std::collections::BTreeMap;

use serde_json::Value as Json;

/// One call as IAM sees it: the action, the resource's ARN, and the condition keys it carries
/// (`dynamodb:LeadingKeys` holds several values, most keys one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    pub action: String,
    pub resource: String,
    pub context: BTreeMap<String, Vec<String>>,
}

impl Call {
    pub fn new(action: impl Into<String>, resource: impl Into<String>) -> Self {
        Call {
            action: action.into(),
            resource: resource.into(),
            context: BTreeMap::new(),
        }
    }

    pub fn with(mut self, key: &str, values: Vec<String>) -> Self {
        self.context.insert(key.to_string(), values);
        self
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    Allow,
    Deny,
}

/// One condition: `operator` applied to the call's values of `key` against `values`.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    operator: Operator,
    set: SetQualifier,
    if_exists: bool,
    key: String,
    values: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Operator {
    StringEquals,
    StringNotEquals,
    StringEqualsIgnoreCase,
    StringLike,
    StringNotLike,
    ArnLike,
    ArnNotLike,
    Bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SetQualifier {
    Single,
    ForAllValues,
    ForAnyValue,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Statement {
    pub sid: Option<String>,
    pub effect: Effect,
    pub actions: Vec<String>,
    pub resources: Vec<String>,
    pub conditions: Vec<Condition>,
}

/// What a set of statements says of a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Allowed, by these statements (their indices).
    Allow(Vec<usize>),
    ExplicitDeny,
    ImplicitDeny,
}

fn strings(v: &Json) -> Vec<String> {
    match v {
        Json::Array(a) => a.iter().flat_map(strings).collect(),
        Json::String(s) => vec![s.clone()],
        Json::Null => vec![],
        other => vec![other.to_string()],
    }
}

impl Statement {
    /// A statement of a resolved policy document; `at` names it in errors.
    pub fn parse(v: &Json, at: &str) -> Result<Self, String> {
        for unsupported in ["NotAction", "NotResource", "NotPrincipal"] {
            if v.get(unsupported).is_some() {
                return Err(format!("{at}: {unsupported} is not evaluated locally"));
            }
        }
        let effect = match v.get("Effect").and_then(Json::as_str) {
            Some("Allow") => Effect::Allow,
            Some("Deny") => Effect::Deny,
            other => return Err(format!("{at}: Effect {other:?} (Allow or Deny)")),
        };
        let actions = strings(v.get("Action").unwrap_or(&Json::Null));
        let resources = strings(v.get("Resource").unwrap_or(&Json::Null));
        if actions.is_empty() || resources.is_empty() {
            return Err(format!("{at}: a statement needs an Action and a Resource"));
        }
        let mut conditions = Vec::new();
        for (op, keys) in v
            .get("Condition")
            .and_then(Json::as_object)
            .into_iter()
            .flatten()
        {
            for (key, values) in keys.as_object().into_iter().flatten() {
                conditions.push(Condition::parse(op, key, values, at)?);
            }
        }
        Ok(Statement {
            sid: v.get("Sid").and_then(Json::as_str).map(str::to_string),
            effect,
            actions,
            resources,
            conditions,
        })
    }

    /// Whether the statement applies to the call (its effect aside).
    pub fn matches(&self, call: &Call) -> bool {
        self.actions
            .iter()
            .any(|a| wildcard(&a.to_ascii_lowercase(), &call.action.to_ascii_lowercase()))
            && self.resources.iter().any(|r| wildcard(r, &call.resource))
            && self.conditions.iter().all(|c| c.holds(call))
    }
}

impl Condition {
    fn parse(op: &str, key: &str, values: &Json, at: &str) -> Result<Self, String> {
        let (set, rest) = if let Some(r) = op.strip_prefix("ForAllValues:") {
            (SetQualifier::ForAllValues, r)
        } else if let Some(r) = op.strip_prefix("ForAnyValue:") {
            (SetQualifier::ForAnyValue, r)
        } else {
            (SetQualifier::Single, op)
        };
        let (name, if_exists) = match rest.strip_suffix("IfExists") {
            Some(n) => (n, true),
            None => (rest, false),
        };
        let operator = match name {
            "StringEquals" => Operator::StringEquals,
            "StringNotEquals" => Operator::StringNotEquals,
            "StringEqualsIgnoreCase" => Operator::StringEqualsIgnoreCase,
            "StringLike" => Operator::StringLike,
            "StringNotLike" => Operator::StringNotLike,
            "ArnLike" | "ArnEquals" => Operator::ArnLike,
            "ArnNotLike" | "ArnNotEquals" => Operator::ArnNotLike,
            "Bool" => Operator::Bool,
            other => {
                return Err(format!(
                    "{at}: condition operator {other} is not evaluated locally"
                ))
            }
        };
        Ok(Condition {
            operator,
            set,
            if_exists,
            key: key.to_string(),
            values: strings(values),
        })
    }

    /// One of the call's values against the condition's values.
    fn value_matches(&self, v: &str) -> bool {
        let any = |f: &dyn Fn(&str) -> bool| self.values.iter().any(|c| f(c));
        match self.operator {
            Operator::StringEquals => any(&|c| c == v),
            Operator::StringNotEquals => !any(&|c| c == v),
            Operator::StringEqualsIgnoreCase => any(&|c| c.eq_ignore_ascii_case(v)),
            Operator::StringLike | Operator::ArnLike => any(&|c| wildcard(c, v)),
            Operator::StringNotLike | Operator::ArnNotLike => !any(&|c| wildcard(c, v)),
            Operator::Bool => any(&|c| c.eq_ignore_ascii_case(v)),
        }
    }

    fn holds(&self, call: &Call) -> bool {
        let values = call
            .context
            .get(&self.key)
            .map(Vec::as_slice)
            .unwrap_or_default();
        match self.set {
            // As IAM: true when the call carries no value of the key at all.
            SetQualifier::ForAllValues => values.iter().all(|v| self.value_matches(v)),
            SetQualifier::ForAnyValue => values.iter().any(|v| self.value_matches(v)),
            SetQualifier::Single if values.is_empty() => self.if_exists,
            SetQualifier::Single => values.iter().any(|v| self.value_matches(v)),
        }
    }
}

/// IAM's wildcards: `*` any run of characters, `?` any one.
pub fn wildcard(pattern: &str, s: &str) -> bool {
    let (p, s): (Vec<char>, Vec<char>) = (pattern.chars().collect(), s.chars().collect());
    let (mut pi, mut si, mut star, mut mark) = (0, 0, None, 0);
    while si < s.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == s[si]) {
            pi += 1;
            si += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = si;
            pi += 1;
        } else if let Some(st) = star {
            pi = st + 1;
            mark += 1;
            si = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// The decision of `statements` on `call`.
pub fn decide(statements: &[Statement], call: &Call) -> Decision {
    let matching: Vec<usize> = (0..statements.len())
        .filter(|i| statements[*i].matches(call))
        .collect();
    if matching
        .iter()
        .any(|i| statements[*i].effect == Effect::Deny)
    {
        Decision::ExplicitDeny
    } else if matching.is_empty() {
        Decision::ImplicitDeny
    } else {
        Decision::Allow(matching)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn statement(v: Json) -> Statement {
        Statement::parse(&v, "test").unwrap()
    }

    #[test]
    fn wildcards_match_as_iam_matches_them() {
        assert!(wildcard(
            "arn:aws:s3:::b/lake/*",
            "arn:aws:s3:::b/lake/x/y.parquet"
        ));
        assert!(!wildcard("arn:aws:s3:::b/lake/*", "arn:aws:s3:::b/raw/x"));
        assert!(wildcard("kinesis:get*", "kinesis:getrecords"));
        assert!(wildcard("*", ""));
        assert!(wildcard("a?c", "abc"));
        assert!(!wildcard("a?c", "ac"));
        assert!(wildcard("*#*", "events#minute#1"));
    }

    #[test]
    fn leading_keys_allow_only_the_owners_items_and_deny_wins() {
        let allow = statement(json!({
            "Effect": "Allow",
            "Action": ["dynamodb:UpdateItem", "dynamodb:GetItem"],
            "Resource": "arn:aws:dynamodb:us-east-1:000000000000:table/t",
            "Condition": {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["rsvp#*"]}}
        }));
        let call = |action: &str, keys: &[&str]| {
            Call::new(action, "arn:aws:dynamodb:us-east-1:000000000000:table/t").with(
                "dynamodb:LeadingKeys",
                keys.iter().map(|k| k.to_string()).collect(),
            )
        };
        let statements = vec![allow.clone()];
        assert_eq!(
            decide(&statements, &call("dynamodb:UpdateItem", &["rsvp#1"])),
            Decision::Allow(vec![0])
        );
        assert_eq!(
            decide(&statements, &call("dynamodb:updateitem", &["rsvp#1"])),
            Decision::Allow(vec![0])
        );
        assert_eq!(
            decide(
                &statements,
                &call("dynamodb:UpdateItem", &["rsvp#1", "MODELS#C1"])
            ),
            Decision::ImplicitDeny
        );
        assert_eq!(
            decide(&statements, &call("dynamodb:PutItem", &["rsvp#1"])),
            Decision::ImplicitDeny
        );
        let deny = statement(json!({"Effect": "Deny", "Action": "dynamodb:*", "Resource": "*"}));
        assert_eq!(
            decide(&[allow, deny], &call("dynamodb:GetItem", &["rsvp#1"])),
            Decision::ExplicitDeny
        );
    }

    #[test]
    fn a_single_valued_condition_on_an_absent_key_fails_unless_if_exists() {
        let list = |op: &str| {
            statement(json!({
                "Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::b",
                "Condition": {op: {"s3:prefix": ["lake/*"]}}
            }))
        };
        let bare = Call::new("s3:ListBucket", "arn:aws:s3:::b");
        assert!(!list("StringLike").matches(&bare));
        assert!(list("StringLikeIfExists").matches(&bare));
        let lake = bare.clone().with("s3:prefix", vec!["lake/rsvps/".into()]);
        assert!(list("StringLike").matches(&lake));
        assert!(!list("StringNotLike").matches(&lake));
    }

    #[test]
    fn what_is_not_evaluated_locally_is_an_error_not_an_allow() {
        for v in [
            json!({"Effect": "Allow", "NotAction": "s3:*", "Resource": "*"}),
            json!({"Effect": "Allow", "Action": "s3:*", "Resource": "*", "Condition": {"DateGreaterThan": {"aws:CurrentTime": "2020-01-01"}}}),
            json!({"Effect": "Maybe", "Action": "s3:*", "Resource": "*"}),
        ] {
            assert!(Statement::parse(&v, "Resources.F").is_err(), "{v}");
        }
    }
}
