//! `tally invoke FUNCTION --event FILE`: the Docker-free `sam local invoke`. Like SAM, which uses
//! the account's real resources, it uses a running local cloud's resources when there is one,
//! else a private local cloud without stream pollers, just for this invocation.

use std::path::PathBuf;

use anyhow::{anyhow, Context as _, Result};

use crate::Context;
use tally_cloud::clients::{Clients, Endpoints};
use tally_cloud::cloud::LocalCloud;
use tally_cloud::lambda::{function_specs, FunctionHost};

#[derive(clap::Args)]
pub struct Args {
    /// Function logical ID (Model2Function) or physical name.
    pub function: String,
    /// Event file (see events/).
    #[arg(long, value_name = "FILE")]
    pub event: PathBuf,
    #[arg(long, value_name = "DIR")]
    pub bin_dir: Option<PathBuf>,
    /// Template parameter override, NAME=VALUE (repeatable), as `sam local invoke
    /// --parameter-overrides` (`GenderDeployment=per-model` for Model1Function..Model3Function).
    #[arg(long = "param", value_name = "NAME=VALUE")]
    pub params: Vec<String>,
}

pub async fn run(args: Args, ctx: &Context) -> Result<()> {
    let payload = std::fs::read(&args.event)
        .with_context(|| format!("cannot read {}", args.event.display()))?;
    serde_json::from_slice::<serde_json::Value>(&payload)
        .with_context(|| format!("{} is not JSON", args.event.display()))?;
    let mut opts = ctx.cloud_options(args.bin_dir);
    opts.params = super::parse_params(&args.params)?;
    let url = ctx.edge_url();
    // One try: nothing listening is the usual answer, not a fault to retry.
    let running = Clients::new(&Endpoints::all(&url))
        .await
        .dynamodb
        .list_tables()
        .customize()
        .config_override(
            aws_sdk_dynamodb::config::Builder::default()
                .retry_config(aws_config::retry::RetryConfig::disabled()),
        )
        .send()
        .await
        .is_ok();
    let function = &args.function;
    let body = if running {
        // The running stack's parameters (the local cloud fills some, such as its core
        // database's), then the command's.
        let mut params = ctx.deployed().await?.parameters.clone();
        params.extend(opts.params.clone());
        let template = ctx.template_with(&params)?;
        let id = template.logical_id_of(function).map(String::from);
        let spec = function_specs(&template, &opts, &url)?
            .into_iter()
            .find(|s| Some(&s.logical_id) == id.as_ref())
            .ok_or_else(|| match template.why_absent(function) {
                Some(why) => anyhow!("{why} (a --param chooses the deployment)"),
                None => anyhow!("no function {function} in template.yaml"),
            })?;
        let host = FunctionHost::start(spec).await?;
        let outcome = host.invoke(payload).await;
        host.stop().await;
        outcome.with_context(|| function.clone())?
    } else {
        opts.run_streams = false;
        opts.edge_port = 0;
        opts.api_port = 0;
        let cloud = LocalCloud::start(opts).await?;
        let outcome = cloud.invoke(function, payload).await;
        cloud.stop().await;
        outcome?
    };
    let text = match serde_json::from_slice::<serde_json::Value>(&body) {
        Ok(v) => serde_json::to_string_pretty(&v)?,
        Err(_) => String::from_utf8_lossy(&body).into_owned(),
    };
    println!("{text}");
    Ok(())
}

/// Invokes the function `logical_id` of the stack `deployed` now (locally, or with `--aws` the
/// deployed one) and waits, a spinner saying what it is `doing`: its answer, or its error as ours.
pub async fn invoke_now(
    ctx: &Context, deployed: &crate::stack::DeployedStack, logical_id: &str,
    request: &serde_json::Value, doing: &str,
) -> Result<serde_json::Value> {
    let function = deployed.physical(logical_id, "AWS::Lambda::Function")?;
    let lambda = aws_sdk_lambda::Client::new(&ctx.target.sdk_config().await);
    let spinner =
        indicatif::ProgressBar::new_spinner().with_message(format!("{logical_id}: {doing}"));
    spinner.enable_steady_tick(std::time::Duration::from_millis(200));
    let out = invoke_payload(&lambda, function, request.to_string().into_bytes()).await;
    spinner.finish_and_clear();
    let (payload, failed) = out?;
    let answer: serde_json::Value = serde_json::from_slice(&payload).unwrap_or_default();
    if failed.is_some() {
        let why = answer["errorMessage"].as_str().map_or_else(
            || String::from_utf8_lossy(&payload).into_owned(),
            str::to_string,
        );
        anyhow::bail!("{logical_id} failed: {why}");
    }
    Ok(answer)
}

/// One Lambda `Invoke` of `function`: what it answered, and its `X-Amz-Function-Error` kind when
/// it failed.
pub(crate) async fn invoke_payload(
    lambda: &aws_sdk_lambda::Client, function: &str, payload: Vec<u8>,
) -> Result<(Vec<u8>, Option<String>)> {
    let out = lambda
        .invoke()
        .function_name(function)
        .payload(aws_sdk_lambda::primitives::Blob::new(payload))
        .send()
        .await
        .map_err(|e| {
            anyhow!(
                "invoking {function}: {}",
                aws_sdk_lambda::error::DisplayErrorContext(&e)
            )
        })?;
    let answer = out
        .payload()
        .map(|p| p.as_ref().to_vec())
        .unwrap_or_default();
    Ok((answer, out.function_error().map(str::to_string)))
}
