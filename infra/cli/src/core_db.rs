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
    match std::fs::read_to_string(tally_cloud::core_db::url_file(&ctx.root, &ctx.stack)) {
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
    for line in extract_into(&url, S3Objects::new(clients.s3.clone(), bucket)).await? {
        println!("{line}");
    }
    Ok(())
}

/// The extractor from the database at `url` into the lake of `store`: a line per table.
pub async fn extract_into(url: &str, store: S3Objects) -> Result<Vec<String>> {
    let extractor = Extractor {
        source: MySqlSource::new(url).map_err(|e| anyhow!(e))?,
        store,
    };
    let reports = extractor
        .run(chrono::Utc::now())
        .await
        .map_err(|e| anyhow!("extraction stopped (the next one starts again where it did): {e}"))?;
    Ok(reports
        .iter()
        .map(|r| {
            format!(
                "{}: {} rows changed since {}: {} new versions in {}, {} bad (bad_records, source core:{})",
                r.table,
                r.read,
                r.since.as_deref().unwrap_or("the start"),
                r.versions,
                r.dimension,
                r.bad,
                r.table
            )
        })
        .collect())
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
