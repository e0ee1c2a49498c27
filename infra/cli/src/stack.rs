//! Where the commands find the stack they work on: CloudFormation, the same calls locally (the
//! edge answers them for the running stack) and on AWS (`--aws`: the default credential chain
//! and region) or at any endpoint (`--endpoint-url`). A resource is addressed by its logical id,
//! whichever nested stack holds it.

use std::collections::BTreeMap;

use anyhow::{anyhow, bail, Result};
use aws_config::SdkConfig;
use aws_sdk_cloudformation::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

/// Which cloud the commands talk to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// The local cloud's edge (`AWS_ENDPOINT_URL`, else 127.0.0.1:4566), as its administrator.
    Local(String),
    /// AWS, with the default credential chain and region.
    Aws,
    /// Another endpoint, with the default credential chain and region.
    Endpoint(String),
}

impl Target {
    pub fn from_flags(aws: bool, endpoint_url: Option<String>) -> Self {
        match (aws, endpoint_url) {
            (_, Some(url)) => Target::Endpoint(url),
            (true, None) => Target::Aws,
            (false, None) => Target::Local(
                std::env::var("AWS_ENDPOINT_URL")
                    .unwrap_or_else(|_| "http://127.0.0.1:4566".into()),
            ),
        }
    }

    pub async fn sdk_config(&self) -> SdkConfig {
        match self {
            Target::Local(url) => tally_cloud::clients::local_config(url).await,
            Target::Aws => aws_config::load_from_env().await,
            Target::Endpoint(url) => aws_config::from_env().endpoint_url(url).load().await,
        }
    }

    /// Where the user is told to look when the stack cannot be reached.
    pub fn describe(&self) -> String {
        match self {
            Target::Local(url) => format!("the local cloud at {url}"),
            Target::Aws => "AWS".into(),
            Target::Endpoint(url) => url.clone(),
        }
    }
}

/// A deployed (or running) stack: every resource of it and of its nested stacks by logical id,
/// and the root's outputs.
#[derive(Debug, Clone, Default)]
pub struct DeployedStack {
    pub name: String,
    /// The root stack's ARN (its partition, region and account are every resource's).
    pub stack_id: String,
    /// Logical id -> (resource type, physical id).
    pub resources: BTreeMap<String, (String, String)>,
    pub outputs: BTreeMap<String, String>,
    /// The root stack's parameters as deployed.
    pub parameters: BTreeMap<String, String>,
}

impl DeployedStack {
    /// Reads `name` and its nested stacks (`DescribeStacks`, `ListStackResources` page by page).
    pub async fn describe(config: &SdkConfig, name: &str, target: &Target) -> Result<Self> {
        let cfn = aws_sdk_cloudformation::Client::new(config);
        let unreachable = |e: SdkError<_, _>| {
            match &e {
            SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) => match target {
                Target::Local(url) => anyhow!("cannot reach the local cloud at {url}: start it with `make up`"),
                other => anyhow!("cannot reach {}: {}", other.describe(), DisplayErrorContext(&e)),
            },
            _ if e.message().is_some_and(|m| m.contains("does not exist")) => anyhow!(
                "stack {name} does not exist at {}: deploy it (`make deploy`, or `make up` locally) or name it with --stack",
                target.describe()
            ),
            _ => anyhow!("describing stack {name}: {}", DisplayErrorContext(&e)),
        }
        };
        let root = cfn
            .describe_stacks()
            .stack_name(name)
            .send()
            .await
            .map_err(unreachable)?;
        let outputs = root
            .stacks()
            .first()
            .map(|s| {
                s.outputs()
                    .iter()
                    .filter_map(|o| {
                        Some((o.output_key()?.to_string(), o.output_value()?.to_string()))
                    })
                    .collect()
            })
            .unwrap_or_default();
        let parameters = root
            .stacks()
            .first()
            .map(|s| {
                s.parameters()
                    .iter()
                    .filter_map(|p| {
                        Some((
                            p.parameter_key()?.to_string(),
                            p.parameter_value().unwrap_or_default().to_string(),
                        ))
                    })
                    .collect()
            })
            .unwrap_or_default();
        let stack_id = root
            .stacks()
            .first()
            .and_then(|s| s.stack_id())
            .unwrap_or_default()
            .to_string();
        let mut stack = DeployedStack {
            name: name.to_string(),
            stack_id,
            resources: BTreeMap::new(),
            outputs,
            parameters,
        };
        let mut todo = vec![name.to_string()];
        while let Some(current) = todo.pop() {
            let mut pages = cfn
                .list_stack_resources()
                .stack_name(&current)
                .into_paginator()
                .send();
            while let Some(page) = pages.next().await {
                let page = page.map_err(|e| {
                    anyhow!(
                        "listing the resources of stack {current}: {}",
                        DisplayErrorContext(&e)
                    )
                })?;
                for r in page.stack_resource_summaries() {
                    let (kind, physical) = (
                        r.resource_type().unwrap_or_default().to_string(),
                        r.physical_resource_id().unwrap_or_default().to_string(),
                    );
                    if kind == "AWS::CloudFormation::Stack" && !physical.is_empty() {
                        todo.push(physical.clone());
                    }
                    stack.resources.insert(
                        r.logical_resource_id().unwrap_or_default().to_string(),
                        (kind, physical),
                    );
                }
            }
        }
        Ok(stack)
    }

    /// The ARN of a resource of the stack's account and region: `arn("kinesis",
    /// "stream/NAME")`.
    pub fn arn(&self, service: &str, resource: &str) -> String {
        let mut parts = self.stack_id.split(':').skip(1);
        let (partition, _, region, account) =
            (parts.next(), parts.next(), parts.next(), parts.next());
        format!(
            "arn:{}:{service}:{}:{}:{resource}",
            partition.unwrap_or("aws"),
            region.unwrap_or_default(),
            account.unwrap_or_default()
        )
    }

    /// The physical id of `logical_id`, which must be of type `kind`.
    pub fn physical(&self, logical_id: &str, kind: &str) -> Result<&str> {
        match self.resources.get(logical_id) {
            Some((k, p)) if k == kind => Ok(p),
            Some((k, _)) => bail!("{logical_id} in stack {} is a {k}, not a {kind}", self.name),
            None => bail!(
                "stack {} has no resource {logical_id}: is it deployed from this project's template.yaml?",
                self.name
            ),
        }
    }

    /// The logical ids of the resources of `kind`.
    pub fn of_kind<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.resources
            .iter()
            .filter(move |(_, (k, _))| k == kind)
            .map(|(id, _)| id.as_str())
    }
}
