//! `tally serve-rsvps`: a websocket that streams Meetup RSVPs as `stream.meetup.com/2/rsvps` did,
//! from a file or the generator, at a chosen rate, until Ctrl-C.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, Result};

use super::gen::{check_rate, parse_start};
use crate::Context;
use tally_gen::meetup::server::{serve, ServeOptions, Source};
use tally_gen::meetup::{Clock, RsvpGenerator, Shape};

#[derive(clap::Args)]
pub struct Args {
    /// Serve this file's lines (one RSVP each) instead of generated RSVPs.
    #[arg(long)]
    pub file: Option<PathBuf>,
    /// Generated RSVPs: the seed.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Generated RSVPs: stop after this many (default: no end).
    #[arg(long)]
    pub count: Option<u64>,
    /// Generated RSVPs: `mtime` from this time (RFC 3339) advancing at the rate, instead of the
    /// wall clock.
    #[arg(long, value_parser = parse_start)]
    pub start: Option<chrono::DateTime<chrono::Utc>>,
    /// RSVPs a second.
    #[arg(long, default_value_t = 10.0)]
    pub rate: f64,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8765")]
    pub listen: SocketAddr,
    /// Close every connection after this many seconds (to try a producer's reconnects).
    #[arg(long, value_name = "SECONDS")]
    pub drop_after: Option<f64>,
}

pub async fn run(args: Args, _ctx: &Context) -> Result<()> {
    let rate = check_rate(args.rate)?;
    let source = match &args.file {
        Some(p) => Source::Lines(
            std::fs::read_to_string(p)
                .with_context(|| format!("cannot read {}", p.display()))?
                .lines()
                .filter(|l| !l.trim().is_empty())
                .map(String::from)
                .collect(),
        ),
        None => {
            let clock = match args.start {
                Some(start) => Clock::Simulated { start, rate },
                None => Clock::Live,
            };
            Source::Generator(
                Box::new(RsvpGenerator::new(args.seed, clock, Shape::default())),
                args.count,
            )
        }
    };
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let options = ServeOptions {
        rate,
        drop_after: args.drop_after.map(Duration::from_secs_f64),
    };
    let server = serve(args.listen, source, options, stop).await?;
    eprintln!(
        "serving RSVPs on ws://{}/2/rsvps at {rate}/s from the first connection (Ctrl-C stops)",
        server.addr
    );
    let mut progress = server.progress.clone();
    let terminal = std::io::stderr().is_terminal();
    let mut last_report = std::time::Instant::now();
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            changed = progress.changed() => {
                if changed.is_err() { break; }
                let p = *progress.borrow_and_update();
                if terminal && last_report.elapsed() > Duration::from_secs(1) {
                    eprint!("\r{} RSVPs sent, {} clients connected ({} connections)   ", p.sent, p.clients, p.connections);
                    last_report = std::time::Instant::now();
                }
            }
        }
    }
    let _ = stop_tx.send(true);
    let p = *server.progress.borrow();
    eprintln!(
        "{}stopped: {} RSVPs sent over {} connections",
        if terminal { "\n" } else { "" },
        p.sent,
        p.connections
    );
    Ok(())
}
