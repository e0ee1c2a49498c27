//! The `tally` commands, one module each with its own arguments and `run()`. What several of them
//! need (the project, the stack, a stream of the running cloud) is here.

pub mod apps;
pub mod bench;
pub mod catalog;
pub mod clusters;
pub mod collect;
pub mod core_db;
pub mod demo;
pub mod gen;
pub mod invoke;
pub mod put;
pub mod redrive;
pub mod replay;
pub mod serve_rsvps;
pub mod smoke;
pub mod sql;
pub mod stack;
pub mod tail;
pub mod up;

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{anyhow, bail, Context as _, Result};
use clap::{Parser, Subcommand};

use tally_cloud::clients::Clients;
use tally_cloud::cloud::CloudOptions;
use tally_cloud::emulators::project_root;
use tally_stack::pipelines::{stream_facts, StreamFacts};
use tally_stack::template::Template;

pub use stack::{DeployedStack, Target};

#[derive(Parser)]
#[command(
    name = "tally",
    version,
    about = "Run tally's template.yaml on this machine, without Docker or an AWS account"
)]
pub struct Cli {
    /// The stack's name (CloudFormation's; a nested stack is found through its parent).
    #[arg(long, global = true, env = "TALLY_STACK", default_value = "tally")]
    pub stack: String,
    /// Work on the stack deployed on AWS (the default credential chain and region: AWS_PROFILE,
    /// AWS_REGION, SSO, ...), not the local cloud.
    #[arg(long, global = true)]
    pub aws: bool,
    /// Work on the stack at this endpoint, with the default credential chain and region.
    #[arg(long, global = true, value_name = "URL", conflicts_with = "aws")]
    pub endpoint_url: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Start the local cloud and keep it running until Ctrl-C.
    Up(up::Args),
    /// Put lines to a stream, each line one record, as is.
    Put(put::Args),
    /// Print each record's data as one JSON line.
    Tail(tail::Args),
    /// Invoke a function once through the Runtime API and print its response.
    Invoke(invoke::Args),
    /// Start the local cloud, put each pipeline's sample, show what came out, stop.
    Demo(demo::Args),
    /// Make up records in a stream's exact shape (`tally gen rsvps`, `tally gen events`).
    #[command(subcommand)]
    Gen(gen::Args),
    /// Register apps that may post events (`tally apps add NAME` prints the key).
    #[command(subcommand)]
    Apps(apps::Args),
    /// Post NDJSON events to /collect as a mobile SDK does.
    Collect(collect::Args),
    /// Seed 002's core application database (`tally core url`).
    #[command(subcommand)]
    Core(core_db::Args),
    /// Extract the core database's changes into the lake's dimensions now (dim_vendor,
    /// dim_flyer, dim_user; bad rows to bad_records).
    Extract,
    /// Stream RSVPs over a websocket as stream.meetup.com/2/rsvps did.
    ServeRsvps(serve_rsvps::Args),
    /// Query the local cloud's lake with SQL (the same text runs on Athena).
    Sql(sql::Args),
    /// Print each pipeline's Glue tables and named queries, for the template that holds them.
    Catalog(catalog::Args),
    /// Run the seed's ML step now (GroupClustersFunction): clusters of the lake's groups by topic,
    /// a random forest that predicts them, judged on held-out groups.
    Clusters(clusters::Args),
    /// Deliver a stream's archived records to its consumers again, as Lambda did (same shards and
    /// sequence numbers: what a consumer applied stays applied once).
    Replay(replay::Args),
    /// Deliver the batches described on StreamFailureQueue to their functions again, after a fix.
    Redrive(redrive::Args),
    /// Measure every figure of BENCHMARKS.md on the local cloud (`make bench` builds and runs it).
    Bench(bench::Args),
    /// Check a running stack end to end, local or deployed (--aws): one line per check.
    Smoke(smoke::Args),
}

/// What every command works in: the project (found from the current folder) and the stack.
pub struct Context {
    pub root: PathBuf,
    pub stack: String,
    /// The cloud the stack is in: local, AWS, or another endpoint.
    pub target: Target,
}

impl Context {
    /// The project around the current folder, the local cloud.
    pub fn new(stack: &str) -> Result<Self> {
        let here = std::env::current_dir().context("cannot read the current folder")?;
        Ok(Context {
            root: project_root(&here)?,
            stack: stack.to_string(),
            target: Target::from_flags(false, None),
        })
    }

    /// The context `cli` asks for.
    pub fn of(cli: &Cli) -> Result<Self> {
        let mut ctx = Self::new(&cli.stack)?;
        ctx.target = Target::from_flags(cli.aws, cli.endpoint_url.clone());
        Ok(ctx)
    }

    /// The stack's resources and outputs, as CloudFormation lists them.
    pub async fn deployed(&self) -> Result<DeployedStack> {
        DeployedStack::describe(&self.target.sdk_config().await, &self.stack, &self.target).await
    }

    /// SDK clients for the target (the local cloud's as its administrator).
    pub async fn clients(&self) -> Clients {
        Clients::from_config(&self.target.sdk_config().await)
    }

    /// For the commands that only run against the local cloud.
    pub fn local_only(&self, command: &str) -> Result<()> {
        match &self.target {
            Target::Local(_) => Ok(()),
            other => bail!(
                "tally {command} works on the local cloud only, not {}",
                other.describe()
            ),
        }
    }

    pub fn template(&self) -> Result<Template> {
        self.template_with(&BTreeMap::new())
    }

    /// The template with parameter overrides.
    pub fn template_with(&self, params: &BTreeMap<String, String>) -> Result<Template> {
        Ok(Template::load(
            &self.root.join("template.yaml"),
            &self.stack,
            params,
        )?)
    }

    /// The edge endpoint of a running local cloud (`AWS_ENDPOINT_URL`, else the default).
    pub fn edge_url(&self) -> String {
        std::env::var("AWS_ENDPOINT_URL").unwrap_or_else(|_| "http://127.0.0.1:4566".into())
    }

    /// Local cloud options for this project and stack, with the function binaries built with
    /// this `tally` (target/debug for target/debug/tally, ...) unless `bin_dir` says otherwise.
    pub fn cloud_options(&self, bin_dir: Option<PathBuf>) -> CloudOptions {
        let mut opts = CloudOptions::new(self.root.clone());
        opts.stack_name = self.stack.clone();
        if let Some(dir) = bin_dir.or_else(own_bin_dir) {
            opts.bin_dir = dir;
        }
        opts
    }
}

/// The folder of this `tally` executable, when the function binaries are built next to it.
pub fn own_bin_dir() -> Option<PathBuf> {
    let dir = std::env::current_exe().ok()?.parent()?.to_path_buf();
    dir.join("gender-model").is_file().then_some(dir)
}

/// Flags of the commands that start a local cloud.
#[derive(clap::Args, Clone)]
pub struct CloudArgs {
    /// Template parameter override, NAME=VALUE (repeatable).
    #[arg(long = "param", value_name = "NAME=VALUE")]
    pub params: Vec<String>,
    /// Port of the edge endpoint every AWS SDK and CLI can use.
    #[arg(long, default_value_t = 4566)]
    pub edge_port: u16,
    /// Port of the HTTP API.
    #[arg(long, default_value_t = 5000)]
    pub api_port: u16,
    /// Folder of the function binaries (default: the folder of this tally executable).
    #[arg(long, value_name = "DIR")]
    pub bin_dir: Option<PathBuf>,
    /// Fail as AWS fails: service:kind=rate,... (dynamodb:throttle, dynamodb:error,
    /// kinesis:throttle, kinesis:error, s3:error, firehose:throttle, lambda:crash).
    #[arg(long, value_name = "SPEC")]
    pub faults: Option<String>,
    /// Seed of the faults' draws (the same seed, the same sequence of draws).
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub faults_seed: u64,
    /// Another template of this project (its `CodeUri`s relative to its folder), e.g. a copy
    /// with a permission taken out.
    #[arg(long, value_name = "FILE")]
    pub template: Option<PathBuf>,
    /// Let every call through, whatever the roles' policies say (IAM is enforced by default,
    /// as on AWS).
    #[arg(long)]
    pub no_iam: bool,
}

/// `--param NAME=VALUE` flags as template parameter overrides.
pub fn parse_params(params: &[String]) -> Result<BTreeMap<String, String>> {
    params
        .iter()
        .map(|p| {
            p.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .ok_or_else(|| anyhow!("--param {p}: expected NAME=VALUE"))
        })
        .collect()
}

impl CloudArgs {
    pub fn options(&self, ctx: &Context) -> Result<CloudOptions> {
        let mut opts = ctx.cloud_options(self.bin_dir.clone());
        opts.params = parse_params(&self.params)?;
        opts.edge_port = self.edge_port;
        opts.api_port = self.api_port;
        opts.enforce_iam = !self.no_iam;
        if let Some(t) = &self.template {
            opts.template =
                std::fs::canonicalize(t).map_err(|e| anyhow!("--template {}: {e}", t.display()))?;
        }
        if let Some(spec) = &self.faults {
            let spec = tally_cloud::faults::FaultSpec::parse(spec)
                .map_err(|e| anyhow!("--faults: {e}"))?;
            opts.faults = tally_cloud::faults::Faults::new(spec, self.faults_seed);
        }
        Ok(opts)
    }
}

/// A stream of the running local cloud.
pub struct StreamTarget {
    pub clients: Clients,
    pub logical_id: String,
    /// Physical name.
    pub name: String,
    pub facts: Option<StreamFacts>,
}

/// The stream `stream` (a logical id or a physical name) of the cloud at the edge endpoint, with
/// a one-line reason when there is no such stream or no cloud.
pub async fn stream_target(ctx: &Context, stream: &str) -> Result<StreamTarget> {
    let template = ctx.template()?;
    let Some(logical_id) = template
        .logical_id_of(stream)
        .filter(|id| template.resources[*id].kind == "AWS::Kinesis::Stream")
        .map(String::from)
    else {
        let known: Vec<&str> = template
            .of_kind("AWS::Kinesis::Stream")
            .map(|r| r.logical_id.as_str())
            .collect();
        bail!(
            "no stream {stream} in template.yaml (streams: {})",
            known.join(", ")
        );
    };
    let deployed = ctx.deployed().await?;
    let name = deployed
        .physical(&logical_id, "AWS::Kinesis::Stream")?
        .to_string();
    let clients = ctx.clients().await;
    if let Err(e) = clients
        .kinesis
        .describe_stream_summary()
        .stream_name(&name)
        .send()
        .await
    {
        use aws_sdk_kinesis::error::ProvideErrorMetadata;
        bail!(
            "stream {name} is not available at {}: {}",
            ctx.target.describe(),
            e.message().unwrap_or("unknown error")
        );
    }
    Ok(StreamTarget {
        clients,
        facts: stream_facts(&template, &logical_id)?,
        logical_id,
        name,
    })
}
