//! `tally apps add NAME`: registers an app in the running cloud's `AppsTable` and prints its new
//! key, alone on the last line (the table keeps only the key's SHA-256: the key is shown once).
//! `tally apps list`: the registered apps.

use anyhow::{bail, Context as _, Result};
use tally_aws::DynamoAppKeys;
use tally_pipelines::events::collect::{key_hash, App};

use super::Context;
use crate::clients::{Clients, Endpoints};

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub what: What,
}

#[derive(clap::Subcommand)]
pub enum What {
    /// Register an app and print its key (shown once; only its hash is stored).
    Add {
        /// The app's name, as dim_app shows it.
        name: String,
    },
    /// The registered apps (id and name; keys are not stored).
    List,
}

/// A new key: `tk_` and 244 random bits (two v4 UUIDs) in hex.
pub fn new_key() -> String {
    format!(
        "tk_{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

/// `Flyers Canada` -> `flyers-canada-3f2a9c`: readable, and unique however often a name is reused.
pub fn app_id_for(name: &str) -> String {
    let slug: String = name
        .to_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let slug: Vec<&str> = slug.split('-').filter(|s| !s.is_empty()).collect();
    let suffix = &uuid::Uuid::new_v4().simple().to_string()[..6];
    match slug.join("-") {
        s if s.is_empty() => format!("app-{suffix}"),
        s => format!("{}-{suffix}", &s[..s.len().min(40)]),
    }
}

pub async fn registry(ctx: &Context) -> Result<DynamoAppKeys> {
    let template = ctx.template()?;
    let table = template.physical_name("AppsTable");
    let clients = Clients::new(&Endpoints::all(&ctx.edge_url())).await;
    Ok(DynamoAppKeys::new(clients.dynamodb, table))
}

pub async fn run(args: Args, ctx: &Context) -> Result<()> {
    let registry = registry(ctx).await?;
    let unreachable = || {
        format!(
            "cannot reach the apps table at {}: is `make up` running, with stack {} (--stack)?",
            ctx.edge_url(),
            ctx.stack
        )
    };
    match args.what {
        What::Add { name } => {
            let name = name.trim().to_string();
            if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
                bail!("an app name is 1 to 100 characters without control characters");
            }
            let app = App {
                app_id: app_id_for(&name),
                name,
            };
            let key = new_key();
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
        What::List => {
            for app in registry.apps().await.with_context(unreachable)? {
                println!("{}\t{}", app.app_id, app.name);
            }
        }
    }
    Ok(())
}
