//! IAM as AWS enforces it, so that a permission missing from a template fails here before a
//! deploy. Every role of the template (a function's, from its `Policies`; an `AWS::IAM::Role`'s,
//! from its inline policies) gets an access key of its own; functions, their event source
//! mappings and Firehose deliveries sign with their role's key, and the edge asks the
//! [`Authorizer`] about each request before it reaches an emulator. The administrator's key
//! ([`ADMIN_KEY`], what the CLI, the tests and provisioning use) may do anything, as the account's
//! administrator may.
//!
//! Resource policies (the bucket's and queues' TLS-only statements) are not evaluated: every local
//! call is plain HTTP, and they only deny.

pub mod call;
pub mod policy;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use serde_json::Value as Json;
use tally_stack::template::{Template, TemplateError, ACCOUNT};

pub use call::{calls_of, Request, StackFacts};
pub use policy::{decide, Call, Decision, Statement};

/// The administrator's access key (the local cloud's fixed test credentials; any key that is
/// not a role's acts as the administrator too).
pub const ADMIN_KEY: &str = "test";

/// The access key a role's sessions sign with: letters and digits only, as DynamoDB Local
/// insists (a logical id is letters and digits).
pub fn role_key(role: &str) -> String {
    format!("{ROLE_KEY_PREFIX}{role}")
}

const ROLE_KEY_PREFIX: &str = "ROLE";

/// A role of the template and what its policies allow.
#[derive(Debug)]
pub struct Role {
    pub logical_id: String,
    /// `arn:aws:sts::ACCOUNT:assumed-role/NAME/SESSION`, as AWS names the caller when it refuses.
    pub session_arn: String,
    pub statements: Vec<Statement>,
    /// Per statement, the calls it alone allowed: counted without a lock, as every call of every
    /// function passes here.
    sole_allower: Vec<AtomicU64>,
}

impl Role {
    fn new(logical_id: String, session_arn: String, statements: Vec<Statement>) -> Self {
        let sole_allower = statements.iter().map(|_| AtomicU64::new(0)).collect();
        Role {
            logical_id,
            session_arn,
            statements,
            sole_allower,
        }
    }
}

/// The role a function runs with: its `Role` (an `AWS::IAM::Role` of the template), or the one
/// SAM makes for it, `<Function>Role`, from its `Policies`.
pub fn role_of_function(template: &Template, function: &str) -> Result<String, TemplateError> {
    let f = template
        .resources
        .get(function)
        .ok_or_else(|| TemplateError::Invalid(format!("no function {function}")))?;
    let props = template.resolved_properties(f)?;
    Ok(match props.get("Role").and_then(Json::as_str) {
        Some(arn) => template
            .logical_id_of(arn)
            .ok_or_else(|| TemplateError::Unsupported {
                what: format!("Role {arn} from outside the template"),
                at: format!("Resources.{function}.Properties.Role"),
            })?
            .to_string(),
        None => format!("{function}Role"),
    })
}

fn invalid(at: &str, e: String) -> TemplateError {
    TemplateError::Unsupported {
        what: e,
        at: at.to_string(),
    }
}

/// Statements of a resolved policy document (`{"Statement": [...]}`).
fn document_statements(doc: &Json, at: &str) -> Result<Vec<Statement>, TemplateError> {
    let list = match &doc["Statement"] {
        Json::Array(a) => a.clone(),
        Json::Null => vec![],
        one => vec![one.clone()],
    };
    list.iter()
        .enumerate()
        .map(|(i, s)| {
            Statement::parse(s, &format!("{at}.Statement[{i}]")).map_err(|e| invalid(at, e))
        })
        .collect()
}

/// Every role of the template with its statements.
pub fn roles(template: &Template) -> Result<Vec<Role>, TemplateError> {
    let session =
        |name: &str, session: &str| format!("arn:aws:sts::{ACCOUNT}:assumed-role/{name}/{session}");
    let mut roles = Vec::new();
    for f in template.of_kind("AWS::Serverless::Function") {
        let props = template.resolved_properties(f)?;
        if props.get("Role").is_some() {
            continue;
        }
        let at = format!("Resources.{}.Properties.Policies", f.logical_id);
        let mut statements = Vec::new();
        let policies = match &props["Policies"] {
            Json::Array(a) => a.clone(),
            Json::Null => vec![],
            one => vec![one.clone()],
        };
        for (i, p) in policies.iter().enumerate() {
            let at = format!("{at}[{i}]");
            match p {
                Json::Object(o) if o.contains_key("Statement") => {
                    statements.extend(document_statements(p, &at)?)
                }
                // Logs only: the local cloud keeps function logs in files, not CloudWatch.
                Json::String(s) if s.ends_with("AWSLambdaBasicExecutionRole") => {}
                other => {
                    return Err(invalid(
                        &at,
                        format!(
                            "policy {} is not evaluated locally (write its statements inline)",
                            other
                                .as_object()
                                .and_then(|o| o.keys().next().cloned())
                                .unwrap_or_else(|| other.to_string())
                        ),
                    ))
                }
            }
        }
        let name = format!("{}Role", f.logical_id);
        let session_arn = session(
            &template.physical_name(&name),
            &template.physical_name(&f.logical_id),
        );
        roles.push(Role::new(name, session_arn, statements));
    }
    for r in template.of_kind("AWS::IAM::Role") {
        let props = template.resolved_properties(r)?;
        let mut statements = Vec::new();
        for (i, p) in props["Policies"]
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
        {
            let at = format!("Resources.{}.Properties.Policies[{i}]", r.logical_id);
            statements.extend(document_statements(&p["PolicyDocument"], &at)?);
        }
        if let Some(arns) = props["ManagedPolicyArns"]
            .as_array()
            .filter(|a| !a.is_empty())
        {
            return Err(invalid(
                &format!("Resources.{}.Properties.ManagedPolicyArns", r.logical_id),
                format!("managed policies {arns:?} are not evaluated locally (write their statements inline)"),
            ));
        }
        let session_arn = session(&template.physical_name(&r.logical_id), "tally-local");
        roles.push(Role::new(r.logical_id.clone(), session_arn, statements));
    }
    Ok(roles)
}

/// Why a call was refused, in AWS's words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denied {
    pub action: String,
    pub resource: String,
    pub message: String,
}

/// What was refused so far.
#[derive(Debug, Default, Clone)]
pub struct Ledger {
    /// (role, action, resource) of refused calls, the first of each.
    pub denied: Vec<(String, String, String)>,
}

/// Decides each signed request: a role's key may do what its statements allow, an unknown role
/// key nothing, any other key anything (the account's administrator).
pub struct Authorizer {
    roles: BTreeMap<String, Role>,
    facts: StackFacts,
    ledger: Mutex<Ledger>,
}

/// The caller a request's access key names.
pub enum Caller<'a> {
    Admin,
    Role(&'a Role),
    Unknown,
}

impl Authorizer {
    pub fn new(template: &Template) -> Result<Self, TemplateError> {
        Ok(Authorizer {
            roles: roles(template)?
                .into_iter()
                .map(|r| (role_key(&r.logical_id), r))
                .collect(),
            facts: StackFacts::of(template),
            ledger: Mutex::new(Ledger::default()),
        })
    }

    /// Who signed with `access_key`: a role's key is that role (an unknown one is refused as
    /// AWS refuses a key it does not know); any other key is the account's administrator, so
    /// the AWS CLI works at the edge with whatever credentials its profile holds.
    pub fn caller(&self, access_key: Option<&str>) -> Caller<'_> {
        match access_key {
            Some(k) if k.starts_with(ROLE_KEY_PREFIX) => {
                self.roles.get(k).map_or(Caller::Unknown, Caller::Role)
            }
            _ => Caller::Admin,
        }
    }

    /// Every call of the request allowed for `role`, or the first refused.
    pub fn check(&self, role: &Role, req: &Request) -> Result<(), Denied> {
        for call in calls_of(req, &self.facts) {
            self.check_call(role, &call)?;
        }
        Ok(())
    }

    /// One call (Firehose's invocation of its transformation, say) for `role`.
    pub fn check_call(&self, role: &Role, call: &Call) -> Result<(), Denied> {
        let why = match decide(&role.statements, call) {
            Decision::Allow(by) => {
                if let [only] = by.as_slice() {
                    role.sole_allower[*only].fetch_add(1, Ordering::Relaxed);
                }
                return Ok(());
            }
            Decision::ExplicitDeny => {
                "with an explicit deny in an identity-based policy".to_string()
            }
            Decision::ImplicitDeny => format!(
                "because no identity-based policy allows the {} action",
                call.action
            ),
        };
        let message = format!(
            "User: {} is not authorized to perform: {} on resource: {} {why}",
            role.session_arn, call.action, call.resource
        );
        let seen = (
            role.logical_id.clone(),
            call.action.clone(),
            call.resource.clone(),
        );
        let mut ledger = self.ledger.lock().unwrap();
        if ledger.denied.len() < 1000 && !ledger.denied.contains(&seen) {
            // Once per role, action and resource: what CloudTrail would show, without a flood.
            eprintln!("iam: denied: {message}");
            ledger.denied.push(seen);
        }
        Err(Denied {
            action: call.action.clone(),
            resource: call.resource.clone(),
            message,
        })
    }

    pub fn role(&self, logical_id: &str) -> Option<&Role> {
        self.roles.get(&role_key(logical_id))
    }

    /// Statements that have not yet been the only one to allow a call: taken out, nothing so
    /// far would have been refused. (role, statement index, the statement.)
    pub fn not_yet_needed(&self) -> Vec<(&str, usize, &Statement)> {
        self.roles
            .values()
            .flat_map(|r| r.statements.iter().enumerate().map(move |(i, s)| (r, i, s)))
            .filter(|(r, i, _)| r.sole_allower[*i].load(Ordering::Relaxed) == 0)
            .map(|(r, i, s)| (r.logical_id.as_str(), i, s))
            .collect()
    }

    pub fn roles(&self) -> impl Iterator<Item = &Role> {
        self.roles.values()
    }

    pub fn ledger(&self) -> Ledger {
        self.ledger.lock().unwrap().clone()
    }
}
