//! The producer of the seed (its websocket producer), for Kinesis: reads RSVPs from a websocket
//! and puts them to a stream in batches. Bounded memory (a full buffer stops reading the socket, so
//! the server slows down rather than the producer growing), reconnects with backoff asking for
//! what it may have missed (`since_mtime`: duplicates are fine, the statistics count each version
//! once), and on stop puts everything it holds before it returns.

use std::time::Duration;

use anyhow::{bail, Result};
use aws_sdk_kinesis::Client;
use futures_util::StreamExt;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

use super::mtime_of;
use tally_cloud::kinesis::{partition_key, put_records_refused};

#[derive(Debug, Clone)]
pub struct ProducerOptions {
    pub url: String,
    /// Physical stream name.
    pub stream: String,
    /// The record field that keys it (`event.event_id`).
    pub partition_field: Option<String>,
    /// Stop after this many RSVPs received.
    pub max_records: Option<u64>,
    /// Records per `PutRecords` call (Kinesis takes at most 500).
    pub batch: usize,
    /// How long a record waits for its batch to fill.
    pub linger: Duration,
    /// RSVPs held between the socket and Kinesis before reading pauses.
    pub buffer: usize,
    pub max_backoff: Duration,
}

impl ProducerOptions {
    pub fn new(url: &str, stream: &str) -> Self {
        ProducerOptions {
            url: url.to_string(),
            stream: stream.to_string(),
            partition_field: None,
            max_records: None,
            batch: 500,
            linger: Duration::from_millis(500),
            buffer: 5_000,
            max_backoff: Duration::from_secs(30),
        }
    }
}

/// What the producer did so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProducerProgress {
    pub received: u64,
    pub put: u64,
    /// Connections made (the first, then each reconnect).
    pub connections: u64,
    pub failed_connects: u64,
    /// The newest `mtime` received.
    pub last_mtime: Option<i64>,
    pub last_error: Option<String>,
    pub connected: bool,
}

/// Checks the URL before anything starts: a one-line error for what cannot work.
pub fn check_url(url: &str) -> Result<()> {
    // wss:// is checked against the machine's root certificates (SSL_CERT_FILE too).
    if !url.starts_with("ws://") && !url.starts_with("wss://") {
        bail!("{url}: expected a ws:// or wss:// URL, such as ws://127.0.0.1:8765/2/rsvps");
    }
    Ok(())
}

fn with_since(url: &str, since: Option<i64>) -> String {
    match since {
        None => url.to_string(),
        Some(ms) => {
            let sep = if url.contains('?') { '&' } else { '?' };
            format!("{url}{sep}since_mtime={ms}")
        }
    }
}

/// Runs until `stop` turns true or `max_records` are received, then puts what it holds and
/// returns what it did. `progress` gets each change.
pub async fn produce(
    kinesis: &Client, options: &ProducerOptions, stop: watch::Receiver<bool>,
    progress: watch::Sender<ProducerProgress>,
) -> Result<ProducerProgress> {
    check_url(&options.url)?;
    let (tx, rx) = mpsc::channel::<String>(options.buffer.max(1));
    let writer = put_batches(kinesis, options, rx, &progress);
    let reader = read_socket(options, tx, stop, &progress);
    let ((), put_result) = tokio::join!(reader, writer);
    put_result?;
    Ok(progress.borrow().clone())
}

async fn read_socket(
    options: &ProducerOptions, tx: mpsc::Sender<String>, mut stop: watch::Receiver<bool>,
    progress: &watch::Sender<ProducerProgress>,
) {
    let mut since: Option<i64> = None;
    let mut backoff = Duration::from_millis(250);
    let mut received: u64 = 0;
    loop {
        if *stop.borrow() {
            return;
        }
        let connect = tokio_tungstenite::connect_async(with_since(&options.url, since));
        let ws = tokio::select! {
            c = connect => c,
            _ = tally_cloud::stopped(&mut stop) => return,
        };
        let mut ws = match ws {
            Ok((ws, _)) => {
                backoff = Duration::from_millis(250);
                progress.send_modify(|p| {
                    p.connections += 1;
                    p.connected = true;
                });
                ws
            }
            Err(e) => {
                progress.send_modify(|p| {
                    p.failed_connects += 1;
                    p.last_error = Some(format!("cannot connect to {}: {e}", options.url));
                });
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = tally_cloud::stopped(&mut stop) => return,
                }
                backoff = (backoff * 2).min(options.max_backoff);
                continue;
            }
        };
        loop {
            let message = tokio::select! {
                m = ws.next() => m,
                _ = tally_cloud::stopped(&mut stop) => {
                    let _ = ws.close(None).await;
                    return;
                }
            };
            match message {
                Some(Ok(Message::Text(text))) => {
                    let line = text.as_str().to_string();
                    since = mtime_of(&line).max(since);
                    // Waits while the buffer is full: the socket is not read meanwhile.
                    if tx.send(line).await.is_err() {
                        return;
                    }
                    received += 1;
                    progress.send_modify(|p| {
                        p.received = received;
                        p.last_mtime = since;
                    });
                    if options.max_records.is_some_and(|m| received >= m) {
                        let _ = ws.close(None).await;
                        return;
                    }
                }
                Some(Ok(Message::Close(_))) | None => break,
                Some(Err(e)) => {
                    progress.send_modify(|p| p.last_error = Some(format!("connection lost: {e}")));
                    break;
                }
                Some(Ok(_)) => {}
            }
        }
        progress.send_modify(|p| p.connected = false);
    }
}

async fn put_batches(
    kinesis: &Client, options: &ProducerOptions, mut rx: mpsc::Receiver<String>,
    progress: &watch::Sender<ProducerProgress>,
) -> Result<()> {
    let mut held: Vec<String> = Vec::new();
    let mut first_at = Instant::now();
    let mut put: u64 = 0;
    loop {
        let due = first_at + options.linger;
        let closed = tokio::select! {
            line = rx.recv() => match line {
                Some(line) => {
                    if held.is_empty() {
                        first_at = Instant::now();
                    }
                    held.push(line);
                    if held.len() < options.batch.clamp(1, 500) {
                        continue;
                    }
                    false
                }
                None => true,
            },
            _ = tokio::time::sleep_until(due), if !held.is_empty() => false,
        };
        if !held.is_empty() {
            put += put_held(kinesis, options, &mut held).await? as u64;
            progress.send_modify(|p| p.put = put);
        }
        if closed {
            return Ok(());
        }
    }
}

/// Puts the held records (at most one call's worth), again while Kinesis refuses some: nothing
/// is dropped.
async fn put_held(
    kinesis: &Client, options: &ProducerOptions, held: &mut Vec<String>,
) -> Result<usize> {
    let mut accepted = 0;
    for attempt in 0..20u32 {
        let entries: Vec<(String, &[u8])> = held
            .iter()
            .map(|l| {
                (
                    partition_key(l, options.partition_field.as_deref()),
                    l.as_bytes(),
                )
            })
            .collect();
        let (outcome, refused) = put_records_refused(kinesis, &options.stream, &entries).await;
        accepted += outcome.accepted;
        if refused.is_empty() {
            held.clear();
            return Ok(accepted);
        }
        let refused: Vec<String> = refused.into_iter().map(|i| held[i].clone()).collect();
        *held = refused;
        tokio::time::sleep(Duration::from_millis(200 << attempt.min(5))).await;
    }
    bail!(
        "{} records were refused by {} again and again",
        held.len(),
        options.stream
    )
}
