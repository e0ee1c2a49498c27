//! `tally apps add NAME`: registers an app in the running cloud's `AppsTable` and prints its new
//! key, alone on the last line (the table keeps only the key's SHA-256: the key is shown once).
//! `tally apps list`: the registered apps.

use anyhow::{bail, Context as _, Result};
use tally_aws::{app_id_for, new_app_key, DynamoAppKeys};
use tally_events::collect::{key_hash, App};

use crate::Context;

#[derive(clap::Subcommand)]
pub enum Args {
    /// Register an app and print its key (shown once; only its hash is stored).
    Add {
        /// The app's name, as dim_app shows it.
        name: String,
    },
    /// The registered apps (id and name; keys are not stored).
    List,
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
        Args::Add { name } => {
            let name = name.trim().to_string();
            if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
                bail!("an app name is 1 to 100 characters without control characters");
            }
            let app = App {
                app_id: app_id_for(&name)?,
                name,
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
            for app in registry.apps().await.with_context(unreachable)? {
                println!("{}\t{}", app.app_id, app.name);
            }
        }
    }
    Ok(())
}
