//! `tally clusters [--clusters K]`: the seed's ML step on the local cloud's lake. Groups are
//! clustered by the Jaccard distance of their topic sets (`tally_lake::clusters`), and
//! `group_clusters` is replaced with the answer; `queries/rsvp/cluster_names.sql` names each
//! cluster by its most common topics.

use anyhow::{Context as _, Result};
use tally_aws::S3Objects;

use super::sql::flushed_lake;
use crate::Context;

#[derive(clap::Args)]
pub struct Args {
    /// How many clusters to cut the dendrogram into.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub clusters: u32,
}

pub async fn run(args: Args, ctx: &Context) -> Result<()> {
    ctx.local_only("clusters")?;
    let (clients, bucket) = flushed_lake(ctx).await?;
    let store = S3Objects::new(clients.s3.clone(), bucket);
    let report = tally_lake::clusters::write_clusters(&store, args.clusters as usize)
        .await
        .context("cannot cluster the groups")?;
    if report.groups == 0 {
        println!("no groups in the lake yet: put RSVPs first (tally put RsvpStream ...)");
    } else {
        println!(
            "{} groups in {} clusters: {}",
            report.groups, report.clusters, report.file
        );
    }
    Ok(())
}
