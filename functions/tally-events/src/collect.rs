//! `POST /collect`: an app's batch of events, checked one by one, the valid ones put on
//! `EventsStream` (keyed by device) and acknowledged only once Kinesis has every one of them.
//!
//! Unlike an ingestion server that answers before it persists, a 200 here means every accepted
//! event is in the stream; anything short of that is a 503 with `Retry-After`, and the SDK sends
//! the same events again (same `event_id`s, which count once downstream).

use std::future::Future;
use std::io::Read;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use tally_engine::ports::{OutRecord, PortError, RecordPublisher};
use tally_engine::Rejection;

use super::event::EventDecoder;
use super::seal::{SealKeys, Seals};

/// The largest body accepted, decoded (after gzip).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
/// Events per request: what two full `PutRecords` calls take.
pub const MAX_EVENTS: usize = 1000;
/// How often `PutRecords` is tried for the entries Kinesis refused, before a 503.
const PUT_ATTEMPTS: u32 = 4;

/// An app, as the key registry holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct App {
    pub app_id: String,
    pub name: String,
    /// The web origins whose pages may post its events (`https://shop.example`), as
    /// [`web_origin`] writes them; none: no browser may. Requests without an `Origin` (apps,
    /// servers) are not browsers' and need none.
    pub origins: Vec<String>,
}

/// A web origin as a browser sends it in `Origin`: `http` or `https`, a host and maybe a port,
/// nothing after; lower case.
pub fn web_origin(s: &str) -> Result<String, String> {
    let lower = s.trim().to_ascii_lowercase();
    let bad = |why: &str| {
        Err(format!("{s:?} is not a web origin ({why}): write it as https://shop.example or http://127.0.0.1:8080"))
    };
    let Some((scheme, authority)) = lower.split_once("://") else {
        return bad("no scheme");
    };
    if scheme != "https" && scheme != "http" {
        return bad("http or https only");
    }
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || authority.starts_with('[') => (h, Some(p)),
        _ => (authority, None),
    };
    let host_ok = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-.[]:".contains(c));
    if !host_ok {
        return bad("a host name, and no path, query or user");
    }
    if let Some(p) = port {
        if p.is_empty() || p.len() > 5 || !p.chars().all(|c| c.is_ascii_digit()) {
            return bad("the port is a number");
        }
    }
    Ok(lower)
}

/// The registry of app keys, which holds only their hashes.
pub trait AppKeys: Send + Sync {
    fn app_by_key_hash(
        &self, key_hash: &str,
    ) -> impl Future<Output = Result<Option<App>, PortError>> + Send;
}

/// How a key is stored: SHA-256, hex. Keys are 256 random bits, so a fast hash is enough (a slow
/// one is for guessable passwords); a stolen table gives no usable key.
pub fn key_hash(key: &str) -> String {
    Sha256::digest(key.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// One event `/collect` did not accept, by its place in the batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rejected {
    pub index: usize,
    pub reason: String,
    /// The reason's code, as in `bad_records`.
    pub code: &'static str,
}

/// The body of a 200.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Accepted {
    pub accepted: usize,
    pub rejected: Vec<Rejected>,
}

/// Every answer other than a 200: its status, a one-line reason, and for 503 when to retry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CollectError {
    #[error("missing x-api-key header: every request carries its app's key")]
    MissingKey,
    #[error("unknown app key")]
    UnknownKey,
    #[error("pages of origin {origin} may not post events of app {app}: the app's origins are set with tally apps add --origin")]
    OriginNotAllowed { origin: String, app: String },
    #[error("body is larger than {MAX_BODY_BYTES} bytes (decoded)")]
    TooLarge,
    #[error("body is not gzip: {0}")]
    NotGzip(String),
    #[error("unsupported content-encoding {0:?}: send gzip or nothing")]
    UnsupportedEncoding(String),
    #[error("body is not a JSON array of events nor NDJSON: {0}")]
    NotJson(String),
    #[error("more than {MAX_EVENTS} events in one request")]
    TooManyEvents,
    #[error("events stream is throttling: retry after {0} s with the same event ids")]
    Throttled(u64),
    #[error("events stream unavailable: retry after {0} s with the same event ids")]
    Unavailable(u64),
}

impl CollectError {
    pub fn status(&self) -> u16 {
        match self {
            CollectError::MissingKey => 401,
            CollectError::UnknownKey | CollectError::OriginNotAllowed { .. } => 403,
            CollectError::TooLarge => 413,
            CollectError::UnsupportedEncoding(_) => 415,
            CollectError::NotGzip(_) | CollectError::NotJson(_) | CollectError::TooManyEvents => {
                400
            }
            CollectError::Throttled(_) | CollectError::Unavailable(_) => 503,
        }
    }

    /// Seconds for the `Retry-After` header of a 503.
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            CollectError::Throttled(s) | CollectError::Unavailable(s) => Some(*s),
            _ => None,
        }
    }
}

/// The decoded body: gunzipped within the limit (a gzip bomb stops at the limit).
pub fn decode_body(body: &[u8], content_encoding: Option<&str>) -> Result<Vec<u8>, CollectError> {
    let encoding = content_encoding.map(|e| e.trim().to_ascii_lowercase());
    let data = match encoding.as_deref() {
        None | Some("") | Some("identity") => body.to_vec(),
        Some("gzip") => {
            let mut out = Vec::new();
            flate2::read::MultiGzDecoder::new(body)
                .take(MAX_BODY_BYTES as u64 + 1)
                .read_to_end(&mut out)
                .map_err(|e| CollectError::NotGzip(e.to_string()))?;
            out
        }
        Some(other) => return Err(CollectError::UnsupportedEncoding(other.to_string())),
    };
    if data.len() > MAX_BODY_BYTES {
        return Err(CollectError::TooLarge);
    }
    Ok(data)
}

/// The events of a body: a JSON array, or NDJSON (one event a line). An entry that is not an
/// object stays in place, to be rejected by its index.
pub fn parse_events(body: &[u8]) -> Result<Vec<Value>, CollectError> {
    let text = std::str::from_utf8(body)
        .map_err(|e| CollectError::NotJson(format!("not utf-8 at byte {}", e.valid_up_to())))?;
    let trimmed = text.trim_start();
    let events = if trimmed.starts_with('[') {
        match serde_json::from_str::<Value>(text) {
            Ok(Value::Array(events)) => events,
            Ok(_) => return Err(CollectError::NotJson("expected an array".into())),
            Err(e) => return Err(CollectError::NotJson(e.to_string())),
        }
    } else if trimmed.is_empty() {
        return Err(CollectError::NotJson("empty body".into()));
    } else {
        let mut events = Vec::new();
        for (n, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            events.push(
                serde_json::from_str(line)
                    .map_err(|e| CollectError::NotJson(format!("line {}: {e}", n + 1)))?,
            );
        }
        events
    };
    if events.len() > MAX_EVENTS {
        return Err(CollectError::TooManyEvents);
    }
    Ok(events)
}

/// An accepted event as it goes on the stream: as sent, plus `app_id`, `app_name` and
/// `server_time` (the app's own values for these are replaced: the key says which app it is).
pub fn stamp(mut event: Map<String, Value>, app: &App, now: DateTime<Utc>) -> Map<String, Value> {
    event.insert("app_id".into(), Value::String(app.app_id.clone()));
    event.insert("app_name".into(), Value::String(app.name.clone()));
    event.insert(
        "server_time".into(),
        Value::String(now.to_rfc3339_opts(SecondsFormat::Millis, true)),
    );
    event
}

/// `/collect`'s work, with its three ports: the key registry, the events stream and the seal's
/// key.
pub struct Collector<K, P, S> {
    pub keys: K,
    pub stream: P,
    pub seals: Seals<S>,
    pub decoder: EventDecoder,
    /// Backoff between `PutRecords` attempts for refused entries (doubles each time).
    pub backoff: Duration,
}

impl<K: AppKeys, P: RecordPublisher, S: SealKeys> Collector<K, P, S> {
    pub fn new(keys: K, stream: P, seal_keys: S) -> Self {
        Collector {
            keys,
            stream,
            seals: Seals::new(seal_keys),
            decoder: EventDecoder::default(),
            backoff: Duration::from_millis(50),
        }
    }

    /// One request: the key, the page's `Origin` when a browser sent it, the raw body and its
    /// `Content-Encoding`.
    pub async fn collect(
        &self, api_key: Option<&str>, origin: Option<&str>, body: &[u8],
        content_encoding: Option<&str>, now: DateTime<Utc>,
    ) -> Result<Accepted, CollectError> {
        let key = api_key
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .ok_or(CollectError::MissingKey)?;
        let app = self
            .keys
            .app_by_key_hash(&key_hash(key))
            .await
            .map_err(|_| CollectError::Unavailable(1))?
            .ok_or(CollectError::UnknownKey)?;
        if let Some(origin) = origin.map(str::trim).filter(|o| !o.is_empty()) {
            // The API's CORS lets the stack's origins through; each app allows only its own.
            if !app.origins.iter().any(|o| o.eq_ignore_ascii_case(origin)) {
                return Err(CollectError::OriginNotAllowed {
                    origin: origin.to_string(),
                    app: app.name.clone(),
                });
            }
        }
        let events = parse_events(&decode_body(body, content_encoding)?)?;
        let seal = self.seals.get().await.map_err(|e| {
            tracing::error!(error = %e, "ingest seal key not read");
            CollectError::Unavailable(1)
        })?;
        let mut rejected = Vec::new();
        let mut records = Vec::new();
        for (index, value) in events.into_iter().enumerate() {
            let checked = match value {
                Value::Object(obj) => {
                    let size = serde_json::to_vec(&obj).map(|v| v.len()).unwrap_or(0);
                    if size > self.decoder.max_bytes {
                        Err(Rejection::Oversized {
                            bytes: size,
                            limit: self.decoder.max_bytes,
                        })
                    } else {
                        self.decoder.decode_object(&obj, now).map(|e| (e, obj))
                    }
                }
                _ => Err(Rejection::NotAnObject),
            };
            match checked {
                Ok((event, obj)) => records.push(OutRecord {
                    partition_key: event.device.id.clone(),
                    data: serde_json::to_vec(&seal.seal(stamp(obj, &app, now)))
                        .expect("json serialises"),
                }),
                Err(why) => rejected.push(Rejected {
                    index,
                    reason: why.to_string(),
                    code: why.code(),
                }),
            }
        }
        self.put_all(records.clone()).await?;
        Ok(Accepted {
            accepted: records.len(),
            rejected,
        })
    }

    /// `PutRecords` until Kinesis has every record, retrying only the refused entries.
    async fn put_all(&self, mut pending: Vec<OutRecord>) -> Result<(), CollectError> {
        let mut wait = self.backoff;
        for attempt in 1..=PUT_ATTEMPTS {
            if pending.is_empty() {
                return Ok(());
            }
            match self.stream.publish(&pending).await {
                Ok(refused) => {
                    pending = refused.into_iter().map(|i| pending[i].clone()).collect();
                }
                Err(PortError::Fatal(e)) => {
                    // A configuration or permission error: the operator's to fix.
                    tracing::error!(error = %e, "events stream refused the request");
                    return Err(CollectError::Unavailable(5));
                }
                Err(_) => {}
            }
            if !pending.is_empty() && attempt < PUT_ATTEMPTS {
                tokio::time::sleep(wait).await;
                wait *= 2;
            }
        }
        if pending.is_empty() {
            Ok(())
        } else {
            Err(CollectError::Throttled(1))
        }
    }
}
