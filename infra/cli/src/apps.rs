//! The apps that may post events, in the stack's `AppsTable` (locally or deployed):
//! `tally apps add NAME` registers one and prints its key alone on the last line (the table keeps
//! only the key's SHA-256: the key is shown once); `tally apps list`, one line per app;
//! `tally apps rotate NAME [--grace SECONDS]`, a new key, the old one working for the grace
//! period; `tally apps revoke NAME`, every key refused (within a minute: `/collect` caches keys).

use anyhow::{anyhow, bail, Context as _, Result};
use tally_aws::{app_id_for, new_app_key, AppKey, DynamoAppKeys};
use tally_events::collect::{key_hash, web_origin, App};

use crate::Context;

#[derive(clap::Subcommand)]
pub enum Args {
    /// Register an app and print its key (shown once; only its hash is stored).
    Add {
        /// The app's name, as dim_app shows it.
        name: String,
        /// A web origin whose pages may post the app's events from a browser
        /// (https://shop.example; several allowed; none: no browser may). It must be one of the
        /// stack's CollectAllowedOrigins too, which the API's CORS answers from.
        #[arg(long = "origin", value_name = "ORIGIN")]
        origins: Vec<String>,
    },
    /// One line per app: id, name, created, state (keys are not stored).
    List,
    /// Give an app (its name or id) a new key, printed alone on the last line; its current key
    /// keeps working for the grace period.
    Rotate {
        app: String,
        /// How long the old key keeps working, in seconds (0: refused from now on).
        #[arg(long, default_value_t = 86_400)]
        grace: u32,
    },
    /// Refuse every key of an app (its name or id) from now on.
    Revoke { app: String },
}

/// The one app `name_or_id` names among the registry's keys.
fn the_app(keys: &[AppKey], name_or_id: &str) -> Result<App> {
    let mut apps: Vec<&App> = keys
        .iter()
        .map(|k| &k.app)
        .filter(|a| a.app_id == name_or_id || a.name == name_or_id)
        .collect();
    apps.dedup();
    match apps.as_slice() {
        [one] => Ok((*one).clone()),
        [] => bail!("no app {name_or_id} (tally apps list shows them)"),
        many => bail!(
            "{} apps are named {name_or_id}: name one by its id ({})",
            many.len(),
            many.iter()
                .map(|a| a.app_id.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// An app's state from its keys: `active`, `rotating (old key until ...)`, `revoked`.
fn state(keys: &[&AppKey], now: i64) -> String {
    let working: Vec<&&AppKey> = keys.iter().filter(|k| k.works_at(now)).collect();
    if working.is_empty() {
        return "revoked".into();
    }
    match working.iter().filter_map(|k| k.expires_at).max() {
        None => "active".into(),
        Some(at) => format!(
            "rotating (old key until {})",
            chrono::DateTime::from_timestamp(at, 0)
                .map(|t| t.to_rfc3339())
                .unwrap_or_default()
        ),
    }
}

/// The stack parameter the API's CORS configuration comes from.
const STACK_ORIGINS: &str = "CollectAllowedOrigins";

/// `origins` as browsers send them, each one the stack's API lets through: an origin the API's
/// CORS does not allow would be refused by every browser before the app is asked.
async fn browser_origins(ctx: &Context, origins: &[String]) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for o in origins {
        let origin = web_origin(o).map_err(|e| anyhow!(e))?;
        if !out.contains(&origin) {
            out.push(origin);
        }
    }
    if out.is_empty() {
        return Ok(out);
    }
    let deployed = ctx.deployed().await?;
    let allowed: Vec<String> = deployed
        .parameters
        .get(STACK_ORIGINS)
        .map(|l| l.split(',').filter_map(|o| web_origin(o).ok()).collect())
        .unwrap_or_default();
    let missing: Vec<&String> = out.iter().filter(|o| !allowed.contains(o)).collect();
    if !missing.is_empty() {
        let all: Vec<String> = allowed
            .iter()
            .chain(missing.iter().copied())
            .cloned()
            .collect();
        bail!(
            "the stack's API does not let {} through ({STACK_ORIGINS} is {:?}): deploy with \
             {STACK_ORIGINS}={} first (sam deploy --parameter-overrides, or locally tally up \
             --param), then add the app",
            missing
                .iter()
                .map(|o| o.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            allowed.join(","),
            all.join(",")
        );
    }
    Ok(out)
}

/// The apps table of the stack, wherever it runs.
pub async fn registry(ctx: &Context) -> Result<DynamoAppKeys> {
    let deployed = ctx.deployed().await?;
    let table = deployed
        .physical("AppsTable", "AWS::DynamoDB::Table")?
        .to_string();
    Ok(DynamoAppKeys::on(tally_aws::DynamoTable::new(
        ctx.clients().await.dynamodb,
        table,
    )))
}

pub async fn run(args: Args, ctx: &Context) -> Result<()> {
    let registry = registry(ctx).await?;
    let unreachable = || {
        format!(
            "cannot reach the apps table of stack {} at {}",
            ctx.stack,
            ctx.target.describe()
        )
    };
    match args {
        Args::Add { name, origins } => {
            let name = name.trim().to_string();
            if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
                bail!("an app name is 1 to 100 characters without control characters");
            }
            let origins = browser_origins(ctx, &origins).await?;
            let app = App {
                app_id: app_id_for(&name)?,
                name,
                origins,
            };
            let key = new_app_key()?;
            registry
                .register(&key_hash(&key), &app)
                .await
                .with_context(unreachable)?;
            eprintln!(
                "registered app {} ({}); its key, shown only now, is on the next line",
                app.app_id, app.name
            );
            println!("{key}");
        }
        Args::List => {
            let keys = registry.keys().await.with_context(unreachable)?;
            let now = chrono::Utc::now().timestamp();
            for app in registry.apps().await.with_context(unreachable)? {
                let of_app: Vec<&AppKey> = keys.iter().filter(|k| k.app == app).collect();
                let created = of_app
                    .iter()
                    .map(|k| k.created.as_str())
                    .min()
                    .unwrap_or_default();
                let origins = match app.origins.as_slice() {
                    [] => "no browser".to_string(),
                    o => o.join(" "),
                };
                println!(
                    "{}\t{}\t{created}\t{}\t{origins}",
                    app.app_id,
                    app.name,
                    state(&of_app, now)
                );
            }
        }
        Args::Rotate { app, grace } => {
            let keys = registry.keys().await.with_context(unreachable)?;
            let app = the_app(&keys, &app)?;
            let now = chrono::Utc::now().timestamp();
            if !keys.iter().any(|k| k.app == app && k.works_at(now)) {
                bail!(
                    "app {} ({}) is revoked: register a new one with tally apps add",
                    app.app_id,
                    app.name
                );
            }
            let key = new_app_key()?;
            registry
                .register(&key_hash(&key), &app)
                .await
                .with_context(unreachable)?;
            registry
                .expire_app(&keys, &app, now + i64::from(grace))
                .await
                .with_context(unreachable)?;
            eprintln!(
                "app {} ({}) has a new key, shown only now, on the next line; the old one works for {grace} s more",
                app.app_id, app.name
            );
            println!("{key}");
        }
        Args::Revoke { app } => {
            let keys = registry.keys().await.with_context(unreachable)?;
            let app = the_app(&keys, &app)?;
            let now = chrono::Utc::now().timestamp();
            registry
                .expire_app(&keys, &app, now)
                .await
                .with_context(unreachable)?;
            eprintln!(
                "app {} ({}) revoked: its keys are refused within a minute",
                app.app_id, app.name
            );
        }
    }
    Ok(())
}
