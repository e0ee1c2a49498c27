//! `tally`: the local cloud CLI. Parses the command line and hands over to the command's module
//! in `cli/`.

use std::process::ExitCode;

use clap::Parser;
use tally_cli::{
    apps, bench, catalog, clusters, collect, core_db, demo, gen, invoke, put, redrive, replay,
    serve_rsvps, smoke, sql, tail, up,
};
use tally_cli::{Cli, Command, Context};

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match Context::of(&cli) {
        Ok(ctx) => match cli.command {
            Command::Up(args) => up::run(args, &ctx).await,
            Command::Put(args) => put::run(args, &ctx).await,
            Command::Tail(args) => tail::run(args, &ctx).await,
            Command::Invoke(args) => invoke::run(args, &ctx).await,
            Command::Demo(args) => demo::run(args, &ctx).await,
            Command::Gen(args) => gen::run(args, &ctx).await,
            Command::Apps(args) => apps::run(args, &ctx).await,
            Command::Collect(args) => collect::run(args, &ctx).await,
            Command::Core(args) => core_db::run(args, &ctx).await,
            Command::Extract => core_db::extract(&ctx).await,
            Command::ServeRsvps(args) => serve_rsvps::run(args, &ctx).await,
            Command::Sql(args) => sql::run(args, &ctx).await,
            Command::Catalog(args) => catalog::run(args, &ctx).await,
            Command::Clusters(args) => clusters::run(args, &ctx).await,
            Command::Replay(args) => replay::run(args, &ctx).await,
            Command::Redrive(args) => redrive::run(args, &ctx).await,
            Command::Bench(args) => bench::run(args, &ctx).await,
            Command::Smoke(args) => smoke::run(args, &ctx).await,
        },
        Err(e) => Err(e),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        // `tally ... | head`: the reader has all it wanted.
        Err(e)
            if e.chain().any(|c| {
                c.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            }) =>
        {
            ExitCode::SUCCESS
        }
        Err(e) => {
            // One line: the context, then its causes.
            eprintln!("tally: {e:#}");
            ExitCode::FAILURE
        }
    }
}
