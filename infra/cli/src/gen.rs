//! `tally gen rsvps --count N --seed S`: made-up Meetup RSVPs in the real stream's exact shape, one
//! JSON line each (see `meetup/generator.rs` for what they are like). `tally gen events --devices N
//! --minutes M --seed S`: app events as a fleet's SDKs send them (`mobile/generator.rs`).

use std::io::{BufWriter, IsTerminal, Write};
use std::path::PathBuf;

use anyhow::{Context as _, Result};
use chrono::{DateTime, Utc};

use crate::Context;
use tally_gen::meetup::{default_start, Clock, RsvpGenerator, Shape};

#[derive(clap::Subcommand)]
pub enum Args {
    /// Meetup RSVPs (`RsvpStream`'s records).
    Rsvps(RsvpArgs),
    /// App events (`EventsStream`'s records, as `/collect` takes them), in send order.
    Events(EventArgs),
}

#[derive(clap::Args, Clone)]
pub struct EventArgs {
    /// How many devices.
    #[arg(long, default_value_t = 100)]
    pub devices: u64,
    /// Minutes of activity.
    #[arg(long, default_value_t = 60)]
    pub minutes: u32,
    /// The same seed, the same events.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// When the activity starts (RFC 3339, or `now`); default a fixed time.
    #[arg(long, value_parser = parse_start)]
    pub start: Option<DateTime<Utc>>,
    /// Write to this file instead of standard output.
    #[arg(long, short)]
    pub out: Option<PathBuf>,
}

#[derive(clap::Args, Clone)]
pub struct RsvpArgs {
    /// How many RSVPs (versions included).
    #[arg(long, default_value_t = 1000)]
    pub count: u64,
    /// The same seed, the same RSVPs.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// `mtime` of the first RSVP (RFC 3339, or `now`); default: the first real record's.
    #[arg(long, value_parser = parse_start)]
    pub start: Option<DateTime<Utc>>,
    /// RSVPs per second of `mtime`, on average (10 is about what Meetup's stream carried).
    #[arg(long, default_value_t = 10.0)]
    pub rate: f64,
    /// Write to this file instead of standard output.
    #[arg(long, short)]
    pub out: Option<PathBuf>,
}

pub fn parse_start(s: &str) -> Result<DateTime<Utc>, String> {
    if s == "now" {
        return Ok(Utc::now());
    }
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("{s:?} is neither `now` nor an RFC 3339 time ({e})"))
}

pub fn check_rate(rate: f64) -> Result<f64> {
    if !(rate.is_finite() && rate > 0.0) {
        anyhow::bail!("--rate must be a positive number of RSVPs a second, not {rate}");
    }
    Ok(rate)
}

pub async fn run(args: Args, _ctx: &Context) -> Result<()> {
    match args {
        Args::Rsvps(a) => rsvps(a),
        Args::Events(a) => events(a),
    }
}

fn output(out: &Option<PathBuf>) -> Result<(Box<dyn Write>, String)> {
    Ok(match out {
        Some(p) => (
            Box::new(
                std::fs::File::create(p)
                    .with_context(|| format!("cannot create {}", p.display()))?,
            ),
            p.display().to_string(),
        ),
        None => (Box::new(std::io::stdout().lock()), "standard output".into()),
    })
}

fn events(args: EventArgs) -> Result<()> {
    if args.devices == 0 || args.minutes == 0 {
        anyhow::bail!("--devices and --minutes must be at least 1");
    }
    let mut fleet = tally_gen::mobile::Fleet::new(args.devices, args.minutes, args.seed);
    if let Some(start) = args.start {
        fleet.start = start;
    }
    let batches = tally_gen::mobile::batches(&fleet);
    let (mut out, to) = output(&args.out)?;
    let mut out = BufWriter::new(&mut out);
    let mut n = 0;
    for b in &batches {
        for e in &b.events {
            writeln!(out, "{e}")?;
            n += 1;
        }
    }
    out.flush()?;
    eprintln!(
        "wrote {n} events in {} SDK batches from {} devices over {} minutes (seed {}) to {to}",
        batches.len(),
        args.devices,
        args.minutes,
        args.seed
    );
    Ok(())
}

fn rsvps(args: RsvpArgs) -> Result<()> {
    let clock = Clock::Simulated {
        start: args.start.unwrap_or_else(default_start),
        rate: check_rate(args.rate)?,
    };
    let generator = RsvpGenerator::new(args.seed, clock, Shape::default());
    let (mut out, to) = output(&args.out)?;
    let mut out = BufWriter::new(&mut out);
    let bar = if args.out.is_some() && std::io::stderr().is_terminal() {
        indicatif::ProgressBar::new(args.count)
    } else {
        indicatif::ProgressBar::hidden()
    };
    let (mut first, mut last) = (None, None);
    for (i, line) in generator.take(args.count as usize).enumerate() {
        writeln!(out, "{line}")?;
        let mtime = line
            .split("\"mtime\":")
            .nth(1)
            .and_then(|s| s.split(',').next())
            .and_then(|s| s.parse::<i64>().ok());
        first = first.or(mtime);
        last = mtime.or(last);
        if i % 1000 == 0 {
            bar.set_position(i as u64);
        }
    }
    out.flush()?;
    bar.finish_and_clear();
    let time = |ms: Option<i64>| {
        ms.and_then(DateTime::from_timestamp_millis)
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
            .unwrap_or_default()
    };
    eprintln!(
        "wrote {} RSVPs (seed {}), mtime {} to {}, to {to}",
        args.count,
        args.seed,
        time(first),
        time(last)
    );
    Ok(())
}
