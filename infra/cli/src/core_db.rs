//! `tally core url`: where seed 002's core application database is. Locally it is the MariaDB the
//! local cloud runs for the stack (its URL kept in `.tally/core/<stack>/url`, owner-only).
//! `tally extract`: the extractor run now (`core_extractor`), from that database into the lake's
//! dimensions.

use anyhow::{anyhow, bail, Result};
use core_extractor::mysql::MySqlSource;
use core_extractor::Extractor;
use tally_aws::S3Objects;

use crate::{Context, Target};

/// The local cloud's core database for the stack.
fn local_url(ctx: &Context, command: &str) -> Result<String> {
    if !matches!(ctx.target, Target::Local(_)) {
        bail!(
            "tally {command} works on the local cloud only for now: a deployed stack does not take \
             a core database yet"
        );
    }
    let file = ctx.root.join(".tally/core").join(&ctx.stack).join("url");
    match std::fs::read_to_string(&file) {
        Ok(url) => Ok(url.trim().to_string()),
        Err(_) => bail!(
            "stack {} has no core database yet: the local cloud makes one when it starts (make up)",
            ctx.stack
        ),
    }
}

/// `tally extract`: every core table's changes since the lake's newest version, now.
pub async fn extract(ctx: &Context) -> Result<()> {
    let url = local_url(ctx, "extract")?;
    let (clients, bucket) = super::sql::flushed_lake(ctx).await?;
    let extractor = Extractor {
        source: MySqlSource::new(&url).map_err(|e| anyhow!(e))?,
        store: S3Objects::new(clients.s3.clone(), bucket),
    };
    let reports = extractor
        .run(chrono::Utc::now())
        .await
        .map_err(|e| anyhow!("extraction stopped (the next one starts again where it did): {e}"))?;
    for r in reports {
        println!(
            "{}: {} rows changed since {}: {} new versions in {}, {} bad (bad_records, source core:{})",
            r.table,
            r.read,
            r.since.as_deref().unwrap_or("the start"),
            r.versions,
            dimension_of(r.table),
            r.bad,
            r.table
        );
    }
    Ok(())
}

/// The dimension a core table's versions go to.
pub fn dimension_of(table: &str) -> &'static str {
    core_extractor::SOURCES
        .iter()
        .find(|s| s.name == table)
        .map_or("?", |s| s.dim.name)
}

#[derive(clap::Subcommand)]
pub enum Args {
    /// Print the database's URL: mysql://USER:PASSWORD@127.0.0.1:PORT/core.
    Url,
}

pub async fn run(args: Args, ctx: &Context) -> Result<()> {
    match args {
        Args::Url => {
            let url = local_url(ctx, "core url")?;
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
