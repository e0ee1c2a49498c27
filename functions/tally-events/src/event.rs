//! An app event as the contract gives it, decoded and validated the same way wherever it arrives:
//! in `POST /collect` (one rejected entry per bad event), in the archive's router and in the live
//! metrics (a typed bad row each).

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use tally_engine::{json_object, Rejection, StreamRecord};

use super::schema::EventTypes;
use super::seal::{IngestSeal, DIRECT_APP};
use tally_engine::event_time::parse_time;
use tally_engine::TimeBounds;

/// The largest event accepted: far above a real one (a few hundred bytes), far below Kinesis'
/// 1 MiB record.
pub const MAX_EVENT_BYTES: usize = 32 * 1024;
/// Ids of events, devices, users, sessions and apps.
pub const MAX_ID_CHARS: usize = 128;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Platform {
    Ios,
    Android,
    Web,
}

impl Platform {
    pub fn parse(s: &str) -> Option<Platform> {
        match s {
            "ios" => Some(Platform::Ios),
            "android" => Some(Platform::Android),
            "web" => Some(Platform::Web),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Platform::Ios => "ios",
            Platform::Android => "android",
            Platform::Web => "web",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Device {
    pub id: String,
    pub platform: Option<Platform>,
    pub os_version: Option<String>,
    pub model: Option<String>,
    pub app_version: Option<String>,
}

/// One valid event.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub event_id: String,
    pub event_type: String,
    pub client_time: DateTime<Utc>,
    pub device: Device,
    pub user_id: Option<String>,
    pub session_id: Option<String>,
    pub attributes: Map<String, Value>,
    /// Added by `/collect` from the app's key; `direct` for an event without its seal
    /// (`seal.rs`).
    pub app_id: Option<String>,
    pub app_name: Option<String>,
    /// Added by `/collect`: when it was accepted.
    pub server_time: Option<DateTime<Utc>>,
}

impl Event {
    /// When tally first had it: the ingest's time, else the stream's arrival time.
    pub fn received(&self, arrival: DateTime<Utc>) -> DateTime<Utc> {
        self.server_time.unwrap_or(arrival)
    }

    /// The app it counts under (an event read without the seal's check, such as a test's, with
    /// no app is `direct`'s).
    pub fn app(&self) -> &str {
        self.app_id.as_deref().unwrap_or(DIRECT_APP)
    }
}

fn id_field(
    obj: &Map<String, Value>, field: &'static str, required: bool,
) -> Result<Option<String>, Rejection> {
    let s = match obj.get(field) {
        None | Some(Value::Null) if required => return Err(Rejection::MissingField(field)),
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(s)) => s.clone(),
        // Numeric ids are common in SDKs: kept as their decimal text.
        Some(Value::Number(n)) if n.is_u64() || n.is_i64() => n.to_string(),
        Some(other) => return Err(Rejection::wrong_type(field, "a string", other)),
    };
    if s.is_empty() || s.chars().count() > MAX_ID_CHARS || s.chars().any(char::is_control) {
        return Err(Rejection::InvalidField {
            field,
            reason: format!("must be 1 to {MAX_ID_CHARS} characters without control characters"),
        });
    }
    Ok(Some(s))
}

fn text_field(obj: &Map<String, Value>, field: &'static str) -> Result<Option<String>, Rejection> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.chars().count() <= MAX_ID_CHARS => Ok(Some(s.clone())),
        Some(Value::String(_)) => Err(Rejection::InvalidField {
            field,
            reason: format!("longer than {MAX_ID_CHARS} characters"),
        }),
        Some(other) => Err(Rejection::wrong_type(field, "a string", other)),
    }
}

/// Decodes events against the event types' schemas.
#[derive(Debug, Clone, Copy)]
pub struct EventDecoder {
    pub types: &'static EventTypes,
    pub max_bytes: usize,
}

impl Default for EventDecoder {
    fn default() -> Self {
        EventDecoder {
            types: EventTypes::built_in(),
            max_bytes: MAX_EVENT_BYTES,
        }
    }
}

/// What `/collect` adds to an event at most (`app_id`, `app_name`, `server_time` and the seal):
/// a stamped event of the largest size a client may send is still read from the stream.
pub const STAMP_BYTES: usize = 1024;

impl EventDecoder {
    /// A record of `EventsStream` as the pipelines see it: within the size limit, its origin as
    /// the seal says (`seal.rs`), then checked like `/collect` checks it. Also the event's JSON
    /// as trusted, which the archive keeps.
    pub fn decode_record(
        &self, record: &StreamRecord, seal: &IngestSeal,
    ) -> Result<(Event, Map<String, Value>), Rejection> {
        let obj = json_object(&record.data, self.max_bytes.saturating_add(STAMP_BYTES))?;
        let obj = seal.trusted(obj, record.arrival);
        let event = self.decode_object(&obj, record.arrival)?;
        Ok((event, obj))
    }

    /// An event's bytes that arrived at `arrival`, taken as they claim (tests, tools).
    pub fn decode_bytes(&self, data: &[u8], arrival: DateTime<Utc>) -> Result<Event, Rejection> {
        let obj = json_object(data, self.max_bytes)?;
        self.decode_object(&obj, arrival)
    }

    /// The checks in the order a client would fix them: the envelope, the type, the time (from
    /// 1970 to a day after `arrival`), the attributes.
    pub fn decode_object(
        &self, obj: &Map<String, Value>, arrival: DateTime<Utc>,
    ) -> Result<Event, Rejection> {
        let event = decode_envelope(obj, |t| self.types.get(t).is_some())?;
        TimeBounds::EVENT.check("client_time", event.client_time, arrival)?;
        let schema = self.types.get(&event.event_type).expect("a known type");
        schema.validate(&Value::Object(event.attributes.clone()))?;
        Ok(event)
    }
}

/// The envelope of an event whose type `known` knows, its attributes not checked against their
/// schema (the lake reads events the router has checked, and links no validator).
pub fn decode_envelope(
    obj: &Map<String, Value>, known: impl Fn(&str) -> bool,
) -> Result<Event, Rejection> {
    let event_id = id_field(obj, "event_id", true)?.unwrap_or_default();
    let event_type = match obj.get("event_type") {
        None | Some(Value::Null) => return Err(Rejection::MissingField("event_type")),
        Some(Value::String(s)) => s.clone(),
        Some(other) => return Err(Rejection::wrong_type("event_type", "a string", other)),
    };
    let device = match obj.get("device") {
        None | Some(Value::Null) => return Err(Rejection::MissingField("device.id")),
        Some(Value::Object(d)) => d,
        Some(other) => return Err(Rejection::wrong_type("device", "an object", other)),
    };
    let device_id = id_field(device, "id", true)
        .map_err(|e| match e {
            Rejection::MissingField(_) => Rejection::MissingField("device.id"),
            Rejection::WrongType { expected, got, .. } => Rejection::WrongType {
                field: "device.id",
                expected,
                got,
            },
            Rejection::InvalidField { reason, .. } => Rejection::InvalidField {
                field: "device.id",
                reason,
            },
            other => other,
        })?
        .unwrap_or_default();
    if !known(&event_type) {
        return Err(Rejection::UnknownType(event_type));
    }
    let platform = match device.get("platform") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => {
            Some(Platform::parse(s).ok_or_else(|| Rejection::InvalidField {
                field: "device.platform",
                reason: format!("{s:?} is not one of ios, android, web"),
            })?)
        }
        Some(other) => {
            return Err(Rejection::wrong_type(
                "device.platform",
                "one of ios, android, web",
                other,
            ))
        }
    };
    let client_time = match obj.get("client_time") {
        None | Some(Value::Null) => return Err(Rejection::MissingField("client_time")),
        Some(v) => parse_time("client_time", v)?,
    };
    let attributes = match obj.get("attributes") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(a)) => a.clone(),
        Some(other) => return Err(Rejection::wrong_type("attributes", "an object", other)),
    };
    let server_time = match obj.get("server_time") {
        None | Some(Value::Null) => None,
        Some(v) => Some(parse_time("server_time", v)?),
    };
    Ok(Event {
        event_id,
        event_type,
        client_time,
        device: Device {
            id: device_id,
            platform,
            os_version: text_field(device, "os_version")?,
            model: text_field(device, "model")?,
            app_version: text_field(device, "app_version")?,
        },
        user_id: id_field(obj, "user_id", false)?,
        session_id: id_field(obj, "session_id", false)?,
        attributes,
        app_id: id_field(obj, "app_id", false)?,
        app_name: text_field(obj, "app_name")?,
        server_time,
    })
}
