//! A Meetup RSVP as the stream sent it (`stream.meetup.com/2/rsvps`, v2), decoded and validated:
//! what identifies it (`rsvp_id`, and `mtime` for the version), its response, and the member,
//! event, group (with its topics) and venue it names.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use tally_engine::event_time::epoch_ms_number;
use tally_engine::{json_object, Rejection, StreamRecord, TimeBounds};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Response {
    Yes,
    No,
}

impl Response {
    pub fn as_str(self) -> &'static str {
        match self {
            Response::Yes => "yes",
            Response::No => "no",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "yes" => Some(Response::Yes),
            "no" => Some(Response::No),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Member {
    pub id: u64,
    pub name: String,
    pub photo: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub id: String,
    pub name: String,
    pub url: Option<String>,
    pub time: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Topic {
    pub urlkey: String,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    pub id: u64,
    pub name: String,
    pub urlname: Option<String>,
    pub city: Option<String>,
    pub state: Option<String>,
    pub country: Option<String>,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
    pub topics: Vec<Topic>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Venue {
    pub id: u64,
    pub name: Option<String>,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
}

/// One version of an RSVP: `rsvp_id` names the RSVP, `mtime` (epoch ms, UTC) the version and its
/// event time.
#[derive(Debug, Clone, PartialEq)]
pub struct Rsvp {
    pub rsvp_id: u64,
    pub mtime: DateTime<Utc>,
    pub response: Response,
    pub guests: i64,
    pub visibility: Option<String>,
    pub member: Member,
    pub event: Event,
    pub group: Group,
    pub venue: Option<Venue>,
}

impl Rsvp {
    pub fn mtime_ms(&self) -> i64 {
        self.mtime.timestamp_millis()
    }
}

/// Decodes `RsvpStream` records, or says why it cannot.
#[derive(Debug, Clone, Copy)]
pub struct RsvpDecoder {
    pub max_bytes: usize,
}

impl Default for RsvpDecoder {
    fn default() -> Self {
        // A real RSVP is 1 to 3 KB (a group can list dozens of topics).
        Self {
            max_bytes: 16 * 1024,
        }
    }
}

type Obj = Map<String, Value>;

fn object<'a>(obj: &'a Obj, field: &'static str) -> Result<&'a Obj, Rejection> {
    match obj.get(field) {
        Some(Value::Object(o)) => Ok(o),
        None | Some(Value::Null) => Err(Rejection::MissingField(field)),
        Some(other) => Err(Rejection::wrong_type(field, "an object", other)),
    }
}

fn id(obj: &Obj, field: &'static str) -> Result<u64, Rejection> {
    match obj.get(field) {
        Some(Value::Number(n)) => n.as_u64().ok_or_else(|| Rejection::InvalidField {
            field,
            reason: format!("{n} is not a non-negative integer"),
        }),
        None | Some(Value::Null) => Err(Rejection::MissingField(field)),
        Some(other) => Err(Rejection::wrong_type(field, "an integer", other)),
    }
}

fn text(obj: &Obj, field: &'static str) -> Result<String, Rejection> {
    match obj.get(field) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
        Some(Value::String(_)) => Err(Rejection::InvalidField {
            field,
            reason: "is empty".into(),
        }),
        None | Some(Value::Null) => Err(Rejection::MissingField(field)),
        Some(other) => Err(Rejection::wrong_type(field, "a string", other)),
    }
}

fn optional_text(obj: &Obj, field: &'static str) -> Result<Option<String>, Rejection> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(Rejection::wrong_type(field, "a string", other)),
    }
}

fn optional_number(obj: &Obj, field: &'static str) -> Result<Option<f64>, Rejection> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => Ok(n.as_f64()),
        Some(other) => Err(Rejection::wrong_type(field, "a number", other)),
    }
}

fn epoch_ms(field: &'static str, v: &Value) -> Result<DateTime<Utc>, Rejection> {
    match v {
        Value::Number(n) => epoch_ms_number(field, n),
        other => Err(Rejection::wrong_type(field, "epoch milliseconds", other)),
    }
}

impl RsvpDecoder {
    pub fn decode(&self, record: &StreamRecord) -> Result<Rsvp, Rejection> {
        self.decode_bytes(&record.data, record.arrival)
    }

    /// An RSVP that arrived at `arrival`: its `mtime` may be at most five minutes later (the
    /// Meetup server's clock, `TimeBounds::SERVER_CLOCK`).
    pub fn decode_bytes(&self, data: &[u8], arrival: DateTime<Utc>) -> Result<Rsvp, Rejection> {
        let obj = json_object(data, self.max_bytes)?;
        let mtime = match obj.get("mtime") {
            None | Some(Value::Null) => return Err(Rejection::MissingField("mtime")),
            Some(v) => TimeBounds::SERVER_CLOCK.check("mtime", epoch_ms("mtime", v)?, arrival)?,
        };
        let response = match obj.get("response") {
            Some(Value::String(s)) => {
                Response::parse(s).ok_or_else(|| Rejection::InvalidField {
                    field: "response",
                    reason: format!("{s:?} is neither \"yes\" nor \"no\""),
                })?
            }
            None | Some(Value::Null) => return Err(Rejection::MissingField("response")),
            Some(other) => return Err(Rejection::wrong_type("response", "a string", other)),
        };
        let guests = match obj.get("guests") {
            None | Some(Value::Null) => 0,
            Some(Value::Number(n)) => n.as_i64().ok_or_else(|| Rejection::InvalidField {
                field: "guests",
                reason: format!("{n} is not an integer"),
            })?,
            Some(other) => return Err(Rejection::wrong_type("guests", "an integer", other)),
        };
        let m = object(&obj, "member")?;
        let member = Member {
            id: id(m, "member_id")?,
            name: optional_text(m, "member_name")?.unwrap_or_default(),
            photo: optional_text(m, "photo")?,
        };
        let e = object(&obj, "event")?;
        let event = Event {
            id: text(e, "event_id")?,
            name: optional_text(e, "event_name")?.unwrap_or_default(),
            url: optional_text(e, "event_url")?,
            time: match e.get("time") {
                None | Some(Value::Null) => None,
                Some(v) => Some(epoch_ms("time", v)?),
            },
        };
        let g = object(&obj, "group")?;
        let mut topics = Vec::new();
        match g.get("group_topics") {
            None | Some(Value::Null) => {}
            Some(Value::Array(items)) => {
                for t in items {
                    let Value::Object(t) = t else {
                        return Err(Rejection::wrong_type("group_topics", "objects", t));
                    };
                    topics.push(Topic {
                        urlkey: text(t, "urlkey")?,
                        name: optional_text(t, "topic_name")?.unwrap_or_default(),
                    });
                }
            }
            Some(other) => return Err(Rejection::wrong_type("group_topics", "an array", other)),
        }
        let group = Group {
            id: id(g, "group_id")?,
            name: optional_text(g, "group_name")?.unwrap_or_default(),
            urlname: optional_text(g, "group_urlname")?,
            city: optional_text(g, "group_city")?,
            state: optional_text(g, "group_state")?,
            country: optional_text(g, "group_country")?,
            lat: optional_number(g, "group_lat")?,
            lon: optional_number(g, "group_lon")?,
            topics,
        };
        let venue = match obj.get("venue") {
            None | Some(Value::Null) => None,
            Some(Value::Object(v)) => Some(Venue {
                id: id(v, "venue_id")?,
                name: optional_text(v, "venue_name")?,
                lat: optional_number(v, "lat")?,
                lon: optional_number(v, "lon")?,
            }),
            Some(other) => return Err(Rejection::wrong_type("venue", "an object", other)),
        };
        Ok(Rsvp {
            rsvp_id: id(&obj, "rsvp_id")?,
            mtime,
            response,
            guests,
            visibility: optional_text(&obj, "visibility")?,
            member,
            event,
            group,
            venue,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The first of the five real records in shared/data (Apache Pinot's Meetup sample).
    pub const REAL: &str = r#"{"venue":{"venue_name":"Online event","lon":179.1962,"lat":-8.521147,"venue_id":26906060},"visibility":"public","response":"yes","guests":0,"member":{"member_id":295697492,"photo":"https://secure.meetupstatic.com/photos/member/c/c/8/d/thumb_294292365.jpeg","member_name":"Scott A Johnson"},"rsvp_id":1852970778,"mtime":1602629755622,"event":{"event_name":"Storytelling for Leadership: Hero's Journey","event_id":"273773984","time":1603234800000,"event_url":"https://www.meetup.com/HumanCenteredDesignSLC/events/273773984/"},"group":{"group_topics":[{"urlkey":"innovation","topic_name":"Innovation"},{"urlkey":"design-thinking","topic_name":"Design Thinking"}],"group_city":"Salt Lake City","group_country":"us","group_id":22720469,"group_name":"SLC Human-centered Design","group_lon":-111.9,"group_urlname":"HumanCenteredDesignSLC","group_state":"UT","group_lat":40.76}}"#;

    #[test]
    fn decodes_a_real_record() {
        let r = RsvpDecoder::default()
            .decode_bytes(REAL.as_bytes(), Utc::now())
            .unwrap();
        assert_eq!(
            (r.rsvp_id, r.mtime_ms(), r.response),
            (1852970778, 1602629755622, Response::Yes)
        );
        assert_eq!(r.event.id, "273773984");
        assert_eq!(r.group.topics.len(), 2);
        assert_eq!(r.group.topics[1].urlkey, "design-thinking");
        assert_eq!(r.venue.as_ref().unwrap().id, 26906060);
        assert_eq!(
            r.member.photo.as_deref().map(|p| p.ends_with(".jpeg")),
            Some(true)
        );
    }

    #[test]
    fn bad_rsvps_have_reasons() {
        let d = RsvpDecoder::default();
        let with = |from: &str, to: &str| {
            d.decode_bytes(REAL.replace(from, to).as_bytes(), Utc::now())
                .unwrap_err()
                .to_string()
        };
        assert!(with(r#""response":"yes""#, r#""response":"maybe""#)
            .contains("neither \"yes\" nor \"no\""));
        assert!(with(r#""rsvp_id":1852970778,"#, "").contains("missing field rsvp_id"));
        assert!(with(r#""event_id":"273773984""#, r#""event_id":273773984"#)
            .contains("event_id must be a string"));
        assert!(with(r#""mtime":1602629755622"#, r#""mtime":-1"#).contains("before 1970-01-01"));
        let arrival = DateTime::from_timestamp_millis(1602629755622).unwrap();
        let ahead = |ms: i64| {
            d.decode_bytes(
                REAL.replace("1602629755622", &(1602629755622 + ms).to_string())
                    .as_bytes(),
                arrival,
            )
            .map_err(|e| e.code())
            .map(|r| r.mtime_ms())
        };
        assert_eq!(
            ahead(300_000),
            Ok(1602629755622 + 300_000),
            "five minutes ahead is fine"
        );
        assert_eq!(ahead(300_001), Err("time_out_of_range"));
        assert_eq!(
            ahead(8210266876799999 - 1602629755622),
            Err("time_out_of_range")
        );
        let no_venue = d
            .decode_bytes(REAL.replace(r#""venue":{"venue_name":"Online event","lon":179.1962,"lat":-8.521147,"venue_id":26906060},"#, "").as_bytes(), Utc::now())
            .unwrap();
        assert_eq!(no_venue.venue, None, "venues are sometimes missing");
    }
}
