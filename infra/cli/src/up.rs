//! `tally up`: the local cloud of template.yaml, running until Ctrl-C.

use anyhow::Result;

use crate::{CloudArgs, Context};
use tally_cloud::cloud::LocalCloud;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub cloud: CloudArgs,
}

pub async fn run(args: Args, ctx: &Context) -> Result<()> {
    ctx.local_only("up")?;
    let cloud = LocalCloud::start(args.cloud.options(ctx)?).await?;
    print_cloud(&cloud);
    println!("press Ctrl-C to stop");
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    println!("stopping (delivering Firehose buffers first)");
    cloud.stop().await;
    Ok(())
}

fn print_cloud(cloud: &LocalCloud) {
    println!("tally local cloud is running");
    let faults = cloud.faults.spec();
    if !faults.is_empty() {
        println!("  faults         {faults} (as AWS fails under load; every client retries)");
    }
    println!(
        "  edge endpoint  {}   (export AWS_ENDPOINT_URL={})",
        cloud.edge_url, cloud.edge_url
    );
    println!(
        "  HTTP API       {}   (curl {}/api/v1/getGender/C124?model=MODEL2)",
        cloud.api_url, cloud.api_url
    );
    println!("  resources:");
    for p in &cloud.provisioned {
        println!("    {:<28} {:<28} {}", p.logical_id, p.kind, p.physical);
    }
    println!("  functions (real binaries behind the Lambda Runtime API):");
    for (id, f) in &cloud.functions {
        println!(
            "    {:<28} {}   log {}",
            id,
            f.spec().binary.display(),
            f.spec().log_file.display()
        );
    }
    println!("  event source mappings:");
    for m in &cloud.mappings {
        let s = &m.spec;
        println!(
            "    {:<28} {} -> {} (batch {}, window {:?})",
            s.logical_id, s.stream_name, s.function, s.batch_size, s.batching_window
        );
    }
    for d in &cloud.deliveries {
        println!(
            "  firehose {} -> s3://{}/{}",
            d.spec.stream_name, d.spec.bucket, d.spec.prefix
        );
    }
    for s in cloud.schedules.values() {
        let when = match s.spec.every {
            Some(_) => s.spec.expression.clone(),
            None => format!("{} (not run locally: only rate(...) is)", s.spec.expression),
        };
        println!("  schedule {} -> {}", when, s.spec.function);
    }
}
