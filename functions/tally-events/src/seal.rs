//! Which events passed through `/collect`: the ingest seal. `/collect` stamps an accepted event
//! with its app (from the key), its `server_time`, and an HMAC-SHA256 of the whole stamped event
//! under a key only tally's functions can read (`ingest_seal`). Anything else on `EventsStream`
//! (the direct Cognito path, or a forged copy of a sealed event) is trusted for nothing it claims
//! about its origin: it counts under the app `direct` with its Kinesis arrival as `server_time`.
//! The metrics and the archive's router both read events through [`IngestSeal::trusted`], so the
//! live counts and the lake agree. docs/events.md says why a seal and not a stream of its own.

use std::future::Future;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, SecondsFormat, Utc};
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Map, Value};
use sha2::Sha256;
use tally_engine::PortError;

/// The field that carries the seal on the stream (the lake never sees it).
pub const SEAL_FIELD: &str = "ingest_seal";
/// The app that events without a valid seal count under.
pub const DIRECT_APP: &str = "direct";
/// Bytes of a seal key.
pub const KEY_BYTES: usize = 32;

/// An object's canonical bytes, without its member `skip` (the seal itself, at the top).
fn canonical_object(map: &Map<String, Value>, skip: Option<&str>, out: &mut Vec<u8>) {
    let mut keys: Vec<&String> = map.keys().filter(|k| Some(k.as_str()) != skip).collect();
    keys.sort();
    out.push(b'{');
    for (i, k) in keys.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(Value::String(k.clone()).to_string().as_bytes());
        out.push(b':');
        canonical(&map[k], out);
    }
    out.push(b'}');
}

/// An event's canonical bytes: objects with their keys sorted, at every depth, so the seal does
/// not depend on how a JSON library orders or spaces a map.
fn canonical(v: &Value, out: &mut Vec<u8>) {
    match v {
        Value::Object(map) => canonical_object(map, None, out),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                canonical(item, out);
            }
            out.push(b']');
        }
        scalar => out.extend_from_slice(scalar.to_string().as_bytes()),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || !s.is_ascii() {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok())
        .collect()
}

/// The seal of `/collect`: made with the stack's key, checked with the same key.
#[derive(Clone)]
pub struct IngestSeal {
    key: Vec<u8>,
}

impl std::fmt::Debug for IngestSeal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IngestSeal(..)")
    }
}

impl IngestSeal {
    pub fn new(key: Vec<u8>) -> Self {
        IngestSeal { key }
    }

    fn mac(&self, event: &Map<String, Value>) -> Hmac<Sha256> {
        // Every event on the stream is checked: the seal is left out in place, not by a copy.
        let mut bytes = Vec::with_capacity(512);
        canonical_object(event, Some(SEAL_FIELD), &mut bytes);
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.key)
            .expect("HMAC takes a key of any length");
        mac.update(&bytes);
        mac
    }

    /// Seals a stamped event (what `/collect` puts on the stream).
    pub fn seal(&self, mut event: Map<String, Value>) -> Map<String, Value> {
        let tag = hex(&self.mac(&event).finalize().into_bytes());
        event.insert(SEAL_FIELD.into(), Value::String(tag));
        event
    }

    /// Whether `event` is exactly what `/collect` sealed (compared in constant time).
    pub fn verifies(&self, event: &Map<String, Value>) -> bool {
        let Some(tag) = event
            .get(SEAL_FIELD)
            .and_then(Value::as_str)
            .and_then(unhex)
        else {
            return false;
        };
        self.mac(event).verify_slice(&tag).is_ok()
    }

    /// What the pipelines may believe of an event from the stream: a sealed one as `/collect`
    /// stamped it; any other under the app `direct`, without an app name, received at its
    /// Kinesis `arrival`. The seal itself is dropped either way.
    pub fn trusted(
        &self, mut event: Map<String, Value>, arrival: DateTime<Utc>,
    ) -> Map<String, Value> {
        let sealed = self.verifies(&event);
        event.remove(SEAL_FIELD);
        if !sealed {
            event.insert("app_id".into(), Value::String(DIRECT_APP.into()));
            event.remove("app_name");
            event.insert(
                "server_time".into(),
                Value::String(arrival.to_rfc3339_opts(SecondsFormat::Millis, true)),
            );
        }
        event
    }
}

/// Where the stack's seal key lives (AppsTable on AWS): made once, by whoever asks first.
pub trait SealKeys: Send + Sync {
    fn seal_key(&self) -> impl Future<Output = Result<Vec<u8>, PortError>> + Send;
}

/// A fixed key: for tests, and for the in-memory pipelines.
impl SealKeys for Vec<u8> {
    async fn seal_key(&self) -> Result<Vec<u8>, PortError> {
        Ok(self.clone())
    }
}

/// The seal of a warm instance: its key read once, on first use (a failed read is tried again
/// on the next use, so a cold start never fails on it).
pub struct Seals<K> {
    keys: K,
    seal: Mutex<Option<Arc<IngestSeal>>>,
}

impl<K: SealKeys> Seals<K> {
    pub fn new(keys: K) -> Self {
        Seals {
            keys,
            seal: Mutex::new(None),
        }
    }

    pub async fn get(&self) -> Result<Arc<IngestSeal>, PortError> {
        if let Some(seal) = self.seal.lock().unwrap().clone() {
            return Ok(seal);
        }
        let key = self.keys.seal_key().await?;
        if key.len() < 16 {
            return Err(PortError::Fatal(format!(
                "the ingest seal key is {} bytes, at least 16 are needed",
                key.len()
            )));
        }
        let seal = Arc::new(IngestSeal::new(key));
        *self.seal.lock().unwrap() = Some(seal.clone());
        Ok(seal)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => unreachable!(),
        }
    }

    fn arrival() -> DateTime<Utc> {
        "2026-11-22T10:00:05Z".parse().unwrap()
    }

    #[test]
    fn a_sealed_event_keeps_its_app_and_a_forged_one_counts_as_direct() {
        let seal = IngestSeal::new(vec![7; KEY_BYTES]);
        let stamped = event(
            json!({"event_id":"e1","event_type":"app_open","app_id":"flyers","app_name":"Flyers","server_time":"2026-11-22T10:00:00.000Z","device":{"id":"d1","model":"x"},"attributes":{"b":[1,{"z":1,"a":2}]}}),
        );
        let sealed = seal.seal(stamped.clone());
        assert!(seal.verifies(&sealed));
        // Through a JSON round trip with another key order, still sealed.
        let text = serde_json::to_string(&sealed).unwrap();
        let again: Map<String, Value> = serde_json::from_str(&text).unwrap();
        assert_eq!(seal.trusted(again, arrival()), stamped);

        // A forged copy: same id and app, another server time; or another key; or no seal.
        let mut forged = sealed.clone();
        forged.insert("server_time".into(), json!("2000-01-01T00:00:00.000Z"));
        let other_key = IngestSeal::new(vec![8; KEY_BYTES]).seal(stamped.clone());
        for e in [forged, other_key, stamped.clone()] {
            let t = seal.trusted(e, arrival());
            assert_eq!(t["app_id"], DIRECT_APP);
            assert_eq!(t["server_time"], "2026-11-22T10:00:05.000Z");
            assert!(t.get("app_name").is_none() && t.get(SEAL_FIELD).is_none());
            assert_eq!(t["event_id"], "e1", "the rest of the event is kept");
        }
        let mut garbage = stamped;
        garbage.insert(SEAL_FIELD.into(), json!("zz\u{e9}"));
        assert!(!seal.verifies(&garbage));
    }

    #[tokio::test]
    async fn the_key_is_read_once_and_a_short_key_is_refused() {
        let seals = Seals::new(vec![1u8; KEY_BYTES]);
        let a = seals.get().await.unwrap();
        let b = seals.get().await.unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        assert!(Seals::new(vec![1u8; 4]).get().await.is_err());
    }
}
