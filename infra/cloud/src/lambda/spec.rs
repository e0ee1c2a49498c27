//! How to run each function of the template: its binary and the environment the template gives
//! it, as Lambda would.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value as Json;

use crate::cloud::{CloudError, CloudOptions};
use tally_stack::template::{scalar_string, Resource, Template, TemplateError, REGION};

/// How to run one function.
#[derive(Debug, Clone)]
pub struct FunctionSpec {
    pub logical_id: String,
    pub physical_name: String,
    pub arn: String,
    pub binary: PathBuf,
    pub env: HashMap<String, String>,
    pub timeout: Duration,
    pub memory_mb: u32,
    pub log_file: PathBuf,
    /// `ReservedConcurrentExecutions`: the most instances at once (the local default when unset).
    pub reserved_concurrency: Option<u32>,
    /// The cloud's faults on demand (`lambda:crash` kills the process during an invocation).
    pub faults: std::sync::Arc<crate::faults::Faults>,
}

/// The binary a function runs: its crate's package name (or `BuildProperties.Binary`).
fn function_binary(
    opts: &CloudOptions, template: &Template, function: &Resource,
) -> Result<PathBuf, CloudError> {
    let (id, metadata) = (&function.logical_id, &function.metadata);
    let method = metadata
        .get("BuildMethod")
        .and_then(Json::as_str)
        .unwrap_or_default();
    if method != "rust-cargolambda" {
        return Err(TemplateError::Unsupported {
            what: format!("BuildMethod {method:?} (only rust-cargolambda runs locally)"),
            at: format!("Resources.{id}.Metadata"),
        }
        .into());
    }
    if let Some(bin) = metadata
        .get("BuildProperties")
        .and_then(|b| b.get("Binary"))
        .and_then(Json::as_str)
    {
        return Ok(opts.bin_dir.join(bin));
    }
    let manifest = template.scopes[0]
        .dir
        .join(template.code_dir(function)?)
        .join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest).map_err(|e| {
        CloudError::Function(format!(
            "function {id}: cannot read {}: {e}",
            manifest.display()
        ))
    })?;
    let name = text
        .lines()
        .skip_while(|l| l.trim() != "[package]")
        .find_map(|l| {
            l.trim().strip_prefix("name").map(|r| {
                r.trim_start_matches([' ', '='])
                    .trim()
                    .trim_matches('"')
                    .to_string()
            })
        })
        .ok_or_else(|| {
            CloudError::Function(format!(
                "function {id}: no package name in {}",
                manifest.display()
            ))
        })?;
    Ok(opts.bin_dir.join(name))
}

/// The variables the template gives a function: its `Globals` merged with its own.
pub fn function_environment(
    template: &Template, logical_id: &str,
) -> Result<HashMap<String, String>, TemplateError> {
    let function = template
        .resources
        .get(logical_id)
        .ok_or_else(|| TemplateError::Invalid(format!("no function {logical_id}")))?;
    let globals = template.globals_of(function)?;
    let props = template.resolved_properties(function)?;
    let mut env = HashMap::new();
    for vars in [
        &globals["Function"]["Environment"]["Variables"],
        &props["Environment"]["Variables"],
    ] {
        for (k, v) in vars.as_object().into_iter().flatten() {
            env.insert(k.clone(), scalar_string(v));
        }
    }
    Ok(env)
}

/// How to run each function of the template: its binary, and the environment the template gives
/// it, pointed at the edge endpoint `edge_url`.
pub fn function_specs(
    template: &Template, opts: &CloudOptions, edge_url: &str,
) -> Result<Vec<FunctionSpec>, CloudError> {
    let mut specs = Vec::new();
    for f in template.of_kind("AWS::Serverless::Function") {
        let globals = template.globals_of(f)?;
        let gf = &globals["Function"];
        let props = template.resolved_properties(f)?;
        let get = |k: &str| props.get(k).or(gf.get(k));
        let runtime = get("Runtime").and_then(Json::as_str).unwrap_or_default();
        if !runtime.starts_with("provided") {
            return Err(TemplateError::Unsupported {
                what: format!("Runtime {runtime} (only provided.al2023/provided.al2)"),
                at: format!("Resources.{}", f.logical_id),
            }
            .into());
        }
        let mut env = function_environment(template, &f.logical_id)?;
        // The function's role's key: the edge allows what the role's policies allow.
        let key = tally_control::iam::role_key(&tally_control::iam::role_of_function(
            template,
            &f.logical_id,
        )?);
        for (k, v) in [
            ("AWS_REGION", REGION),
            ("AWS_DEFAULT_REGION", REGION),
            ("AWS_ACCESS_KEY_ID", key.as_str()),
            ("AWS_SECRET_ACCESS_KEY", "test"),
        ] {
            env.insert(k.into(), v.into());
        }
        env.insert("AWS_ENDPOINT_URL".into(), edge_url.to_string());
        let num = |k: &str, d: f64| {
            get(k)
                .map(scalar_string)
                .and_then(|s| s.parse::<f64>().ok())
                .unwrap_or(d)
        };
        specs.push(FunctionSpec {
            logical_id: f.logical_id.clone(),
            physical_name: template.physical_name(&f.logical_id),
            arn: template.arn(&f.logical_id)?,
            binary: function_binary(opts, template, f)?,
            env,
            timeout: Duration::from_secs_f64(num("Timeout", 3.0)),
            memory_mb: num("MemorySize", 128.0) as u32,
            log_file: opts.log_dir.join(format!("{}.log", f.logical_id)),
            reserved_concurrency: reserved_concurrency(&props, &f.logical_id)?,
            faults: opts.faults.clone(),
        });
    }
    Ok(specs)
}

/// `ReservedConcurrentExecutions`, if set. Zero (a function switched off) is not run locally.
fn reserved_concurrency(props: &Json, id: &str) -> Result<Option<u32>, TemplateError> {
    let Some(v) = props.get("ReservedConcurrentExecutions") else {
        return Ok(None);
    };
    match scalar_string(v).parse::<u32>() {
        Ok(n) if n > 0 => Ok(Some(n)),
        _ => Err(TemplateError::Unsupported {
            what: format!(
                "ReservedConcurrentExecutions {} (a positive number runs locally; 0 switches the function off)",
                scalar_string(v)
            ),
            at: format!("Resources.{id}.Properties"),
        }),
    }
}
