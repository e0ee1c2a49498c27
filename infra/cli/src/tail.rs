//! `tally tail STREAM`: each record's data as one JSON line (a string when it is not JSON).

use std::io::Write;
use std::time::Duration;

use anyhow::Result;

use crate::{stream_target, Context};
use tally_cloud::kinesis::reader::list_shards;
use tally_cloud::kinesis::{ShardReader, StartAt};

#[derive(clap::Args)]
pub struct Args {
    /// Stream logical ID (GenderResultsStream) or physical name.
    pub stream: String,
    /// Start at the oldest record instead of new ones.
    #[arg(long)]
    pub from_beginning: bool,
    /// Keep waiting for new records.
    #[arg(long)]
    pub follow: bool,
}

pub async fn run(args: Args, ctx: &Context) -> Result<()> {
    let target = stream_target(ctx, &args.stream).await?;
    let kinesis = &target.clients.kinesis;
    let start = if args.from_beginning {
        StartAt::TrimHorizon
    } else {
        StartAt::Latest
    };
    let mut readers: Vec<ShardReader> = list_shards(kinesis, &target.name)
        .await?
        .iter()
        .map(|s| ShardReader::new(kinesis.clone(), &target.name, s.shard_id(), start.clone()))
        .collect();
    let mut stdout = std::io::stdout().lock();
    loop {
        let mut all_at_end = true;
        for reader in readers.iter_mut() {
            let page = reader.read(10_000).await?;
            for r in &page.records {
                let line = match serde_json::from_slice::<serde_json::Value>(&r.data) {
                    Ok(v) => v.to_string(),
                    Err(_) => {
                        serde_json::Value::String(String::from_utf8_lossy(&r.data).into_owned())
                            .to_string()
                    }
                };
                writeln!(stdout, "{line}")?;
            }
            all_at_end &= page.at_end;
        }
        if all_at_end {
            if !args.follow {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}
