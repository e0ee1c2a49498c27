//! `tally core url`: where seed 002's core application database is. Locally it is the MariaDB the
//! local cloud runs for the stack (its URL kept in `.tally/core/<stack>/url`, owner-only).
//! `tally extract`: the stack's `CoreExtractorFunction` invoked now (locally, or with `--aws` the
//! deployed one, which otherwise runs on its schedule), from that database into the lake's
//! dimensions.

use anyhow::{bail, Result};
use serde_json::Value;

use crate::{Context, Target};

/// The local cloud's core database for the stack.
fn local_url(ctx: &Context) -> Result<String> {
    if !matches!(ctx.target, Target::Local(_)) {
        bail!(
            "tally core url works on the local cloud only: a deployed stack reads the database \
             its parameter CoreDbEndpoint names"
        );
    }
    match std::fs::read_to_string(tally_cloud::core_db::url_file(&ctx.root, &ctx.stack)) {
        Ok(url) => Ok(url.trim().to_string()),
        Err(_) => bail!(
            "stack {} has no core database yet: the local cloud makes one when it starts (make up)",
            ctx.stack
        ),
    }
}

const FUNCTION: &str = "CoreExtractorFunction";

/// `tally extract`: every core table's changes since the lake's newest version, now.
pub async fn extract(ctx: &Context) -> Result<()> {
    let deployed = ctx.deployed().await?;
    if !deployed
        .of_kind("AWS::Lambda::Function")
        .any(|id| id == FUNCTION)
    {
        bail!(
            "stack {} reads no core database: deploy it with CoreDbEndpoint and CoreDbSecretArn \
             (README, \"The core database on AWS\")",
            ctx.stack
        );
    }
    let answer = crate::invoke::invoke_now(
        ctx,
        &deployed,
        FUNCTION,
        &serde_json::json!({}),
        "reading the core database's changes",
    )
    .await?;
    for line in report(&answer) {
        println!("{line}");
    }
    Ok(())
}

/// The function's answer, for people: a line per table.
pub fn report(answer: &Value) -> Vec<String> {
    answer["tables"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            let table = r["table"].as_str().unwrap_or("?");
            format!(
                "{table}: {} rows changed since {}: {} new versions in {}, {} bad (bad_records, source core:{table})",
                r["read"],
                r["since"].as_str().unwrap_or("the start"),
                r["versions"],
                r["dimension"].as_str().unwrap_or("?"),
                r["bad"],
            )
        })
        .collect()
}

#[derive(clap::Subcommand)]
pub enum Args {
    /// Print the database's URL: mysql://USER:PASSWORD@127.0.0.1:PORT/core.
    Url,
}

pub async fn run(args: Args, ctx: &Context) -> Result<()> {
    match args {
        Args::Url => {
            let url = local_url(ctx)?;
            let port = url.rsplit(':').next().and_then(|p| p.split('/').next());
            let listening = port
                .and_then(|p| p.parse::<u16>().ok())
                .is_some_and(|p| std::net::TcpStream::connect(("127.0.0.1", p)).is_ok());
            if !listening {
                eprintln!("(its server is not running: make up starts it with the local cloud)");
            }
            println!("{}", url.trim());
        }
    }
    Ok(())
}
