//! `tally core url`: where seed 002's core application database is. Locally it is the MariaDB the
//! local cloud runs for the stack (its URL kept in `.tally/core/<stack>/url`, owner-only).

use anyhow::{bail, Result};

use crate::{Context, Target};

#[derive(clap::Subcommand)]
pub enum Args {
    /// Print the database's URL: mysql://USER:PASSWORD@127.0.0.1:PORT/core.
    Url,
}

pub async fn run(args: Args, ctx: &Context) -> Result<()> {
    match args {
        Args::Url => {
            if !matches!(ctx.target, Target::Local(_)) {
                bail!(
                    "tally core url works on the local cloud only for now: a deployed stack does \
                     not take a core database yet"
                );
            }
            let file = ctx.root.join(".tally/core").join(&ctx.stack).join("url");
            let Ok(url) = std::fs::read_to_string(&file) else {
                bail!(
                    "stack {} has no core database yet: the local cloud makes one when it starts \
                     (make up)",
                    ctx.stack
                );
            };
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
