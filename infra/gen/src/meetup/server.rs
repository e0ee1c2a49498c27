//! A websocket that streams RSVPs as `stream.meetup.com/2/rsvps` did: one RSVP a text frame, to
//! every client at once, at a chosen rate; a client that connects with `?since_mtime=<ms>` first
//! gets what was sent since then again (how the real stream let a client catch up, and why a
//! producer that reconnects sees duplicates).
//!
//! The stream starts with the first client, so that a test or a demo gets it from its start. For
//! tests of reconnecting producers, `drop_after` closes every connection after that long, as the
//! seed's producer reconnected every ten seconds.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context as _, Result};
use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_tungstenite::tungstenite::Message;

use super::{mtime_of, RsvpGenerator};

/// Where the RSVPs come from.
pub enum Source {
    /// A file's lines, once.
    Lines(Vec<String>),
    /// The generator, `count` RSVPs or without end.
    Generator(Box<RsvpGenerator>, Option<u64>),
}

impl Source {
    fn next(&mut self, sent: u64) -> Option<String> {
        match self {
            Source::Lines(lines) => lines.get(sent as usize).cloned(),
            Source::Generator(g, count) => match count {
                Some(n) if sent >= *n => None,
                _ => Some(g.next_line()),
            },
        }
    }
}

#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// RSVPs a second.
    pub rate: f64,
    /// Close every connection after this long (clients must reconnect).
    pub drop_after: Option<Duration>,
}

/// Everything sent so far, in order, with each RSVP's `mtime` (for `since_mtime`).
#[derive(Default)]
struct Sent {
    lines: Vec<(i64, Arc<str>)>,
    finished: bool,
}

/// What a running server reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ServerProgress {
    pub sent: u64,
    pub clients: u64,
    pub connections: u64,
    pub finished: bool,
}

pub struct RsvpServer {
    pub addr: SocketAddr,
    pub progress: watch::Receiver<ServerProgress>,
}

/// Binds `addr` and serves until `stop` turns true. The path is not checked: `ws://HOST:PORT/`
/// and `ws://HOST:PORT/2/rsvps` are the same stream.
pub async fn serve(
    addr: SocketAddr, source: Source, options: ServeOptions, stop: watch::Receiver<bool>,
) -> Result<RsvpServer> {
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    let addr = listener.local_addr()?;
    let sent = Arc::new(Mutex::new(Sent::default()));
    let (len_tx, len_rx) = watch::channel(0usize);
    let (progress_tx, progress) = watch::channel(ServerProgress::default());
    let progress_tx = Arc::new(progress_tx);
    let (started_tx, started_rx) = watch::channel(false);
    tokio::spawn(pace(
        source,
        options.rate,
        sent.clone(),
        len_tx,
        started_rx,
        progress_tx.clone(),
        stop.clone(),
    ));
    tokio::spawn(async move {
        let mut stop_accept = stop.clone();
        loop {
            let (socket, _) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(a) => a,
                    Err(_) => continue,
                },
                _ = tally_cloud::stopped(&mut stop_accept) => return,
            };
            // Without `since_mtime` a client gets what is sent from its connection on: from here,
            // not from its handshake (the first client starts the stream).
            let joined_at = sent.lock().expect("not poisoned").lines.len();
            let _ = started_tx.send(true);
            progress_tx.send_modify(|p| {
                p.connections += 1;
                p.clients += 1;
            });
            let (sent, len_rx, stop, progress_tx) = (
                sent.clone(),
                len_rx.clone(),
                stop.clone(),
                progress_tx.clone(),
            );
            let drop_after = options.drop_after;
            tokio::spawn(async move {
                let _ = stream_to(socket, sent, joined_at, len_rx, stop, drop_after).await;
                progress_tx.send_modify(|p| p.clients -= 1);
            });
        }
    });
    Ok(RsvpServer { addr, progress })
}

/// Appends RSVPs to `sent` at `rate` a second from the first connection on.
async fn pace(
    mut source: Source, rate: f64, sent: Arc<Mutex<Sent>>, len_tx: watch::Sender<usize>,
    mut started: watch::Receiver<bool>, progress: Arc<watch::Sender<ServerProgress>>,
    mut stop: watch::Receiver<bool>,
) {
    tokio::select! {
        _ = started.wait_for(|s| *s) => {}
        _ = tally_cloud::stopped(&mut stop) => return,
    }
    let t0 = Instant::now();
    let mut count: u64 = 0;
    loop {
        let due = (t0.elapsed().as_secs_f64() * rate).floor() as u64 + 1;
        let mut batch = Vec::new();
        while count < due {
            match source.next(count) {
                Some(line) => {
                    batch.push((mtime_of(&line).unwrap_or(0), Arc::<str>::from(line)));
                    count += 1;
                }
                None => break,
            }
        }
        let finished = count < due;
        let len = {
            let mut s = sent.lock().expect("not poisoned");
            s.lines.extend(batch);
            s.finished = finished;
            s.lines.len()
        };
        len_tx.send_replace(len);
        progress.send_modify(|p| {
            p.sent = count;
            p.finished = finished;
        });
        if finished {
            return;
        }
        // Wake for the next RSVP due, at most every 10 ms (bursts at high rates).
        let next = Duration::from_secs_f64((count as f64 / rate).max(0.0));
        tokio::select! {
            _ = tokio::time::sleep_until((t0 + next).max(Instant::now() + Duration::from_millis(10))) => {}
            _ = tally_cloud::stopped(&mut stop) => return,
        }
    }
}

/// `since_mtime` of a request's query, if any.
fn since_mtime(query: Option<&str>) -> Option<i64> {
    query?
        .split('&')
        .find_map(|kv| kv.strip_prefix("since_mtime="))
        .and_then(|v| v.parse().ok())
}

async fn stream_to(
    socket: TcpStream, sent: Arc<Mutex<Sent>>, joined_at: usize,
    mut len_rx: watch::Receiver<usize>, mut stop: watch::Receiver<bool>,
    drop_after: Option<Duration>,
) -> Result<()> {
    let mut since = None;
    // The callback's error type is tungstenite's, large by its design; it is never returned here.
    #[allow(clippy::result_large_err)]
    let ws = tokio_tungstenite::accept_hdr_async(socket, |req: &Request, resp: Response| {
        since = since_mtime(req.uri().query());
        Ok(resp)
    })
    .await?;
    let (mut sink, mut incoming) = ws.split();
    let mut cursor = {
        let s = sent.lock().expect("not poisoned");
        match since {
            // Replay from the first RSVP at or after `since_mtime`.
            Some(ms) => s
                .lines
                .iter()
                .position(|(m, _)| *m >= ms)
                .unwrap_or(s.lines.len()),
            // Like the real stream: what comes from now on.
            None => joined_at,
        }
    };
    let deadline = drop_after.map(|d| Instant::now() + d);
    loop {
        let pending: Vec<Arc<str>> = {
            let s = sent.lock().expect("not poisoned");
            s.lines[cursor.min(s.lines.len())..]
                .iter()
                .map(|(_, l)| l.clone())
                .collect()
        };
        for line in pending {
            if deadline.is_some_and(|d| Instant::now() >= d) {
                sink.send(Message::Close(None)).await?;
                return Ok(());
            }
            sink.send(Message::Text(line.as_ref().into())).await?;
            cursor += 1;
        }
        tokio::select! {
            changed = len_rx.changed() => if changed.is_err() { return Ok(()) },
            message = incoming.next() => match message {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return Ok(()),
                Some(Ok(_)) => {}
            },
            _ = sleep_until_opt(deadline) => {
                sink.send(Message::Close(None)).await?;
                return Ok(());
            }
            _ = tally_cloud::stopped(&mut stop) => {
                sink.send(Message::Close(None)).await?;
                return Ok(());
            }
        }
    }
}

async fn sleep_until_opt(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_mtime_comes_from_the_query() {
        assert_eq!(
            since_mtime(Some("since_mtime=1602629755622")),
            Some(1602629755622)
        );
        assert_eq!(since_mtime(Some("a=1&since_mtime=5")), Some(5));
        assert_eq!(since_mtime(Some("since_mtime=x")), None);
        assert_eq!(since_mtime(None), None);
    }
}
