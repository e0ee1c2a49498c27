//! Answers computed independently of the pipeline, straight from the visits, as the contract
//! (docs/contracts.md) states them.

use std::collections::BTreeMap;

use base64::Engine;
use chrono::{DateTime, Days, TimeZone, Utc};

#[derive(Debug, Clone)]
pub struct RawVisit {
    pub cid: String,
    pub gndr: &'static str,
    pub ts: DateTime<Utc>,
    /// Arrival order (position in the shard).
    pub order: usize,
}

/// The valid visits of a Kinesis event (the `Records` of an events/ file), in arrival order.
pub fn visits_of_event(event: &serde_json::Value) -> Vec<RawVisit> {
    let mut out = Vec::new();
    for (order, r) in event["Records"].as_array().unwrap().iter().enumerate() {
        let data = base64::engine::general_purpose::STANDARD
            .decode(r["kinesis"]["data"].as_str().unwrap())
            .unwrap();
        let arrival = r["kinesis"]["approximateArrivalTimestamp"]
            .as_f64()
            .unwrap();
        if let Some(v) = parse_visit(&data, (arrival * 1000.0).round() as i64, order) {
            out.push(v);
        }
    }
    out
}

pub fn parse_visit(data: &[u8], arrival_ms: i64, order: usize) -> Option<RawVisit> {
    let v: serde_json::Value = serde_json::from_slice(data).ok()?;
    let cid = v["cid"].as_str()?.to_string();
    let gndr = match v["gndr"].as_str()?.to_lowercase().as_str() {
        "male" => "male",
        "female" => "female",
        _ => return None,
    };
    let arrival = Utc.timestamp_millis_opt(arrival_ms).unwrap();
    let ts = match &v["ts"] {
        serde_json::Value::Null => arrival,
        serde_json::Value::Number(n) => Utc.timestamp_millis_opt(n.as_i64()?).single()?,
        serde_json::Value::String(s) => DateTime::parse_from_rfc3339(s).ok()?.with_timezone(&Utc),
        _ => return None,
    };
    // The contract's range: from 1970 to a day after the visit arrived.
    if ts.timestamp() < 0 || ts > arrival + chrono::Duration::days(1) {
        return None;
    }
    Some(RawVisit {
        cid,
        gndr,
        ts,
        order,
    })
}

/// cid -> answer for `model` as of `now`; cids without an answer are absent.
pub fn answers(
    visits: &[RawVisit], model: &str, now: DateTime<Utc>, window_days: u64,
) -> BTreeMap<String, String> {
    let mut by_cid: BTreeMap<&str, Vec<&RawVisit>> = BTreeMap::new();
    for v in visits {
        by_cid.entry(&v.cid).or_default().push(v);
    }
    let top = |vs: &[&RawVisit]| -> Option<String> {
        let male = vs.iter().filter(|v| v.gndr == "male").count();
        let female = vs.len() - male;
        (!vs.is_empty()).then(|| if male > female { "male" } else { "female" }.to_string())
    };
    let first_day = now
        .date_naive()
        .checked_sub_days(Days::new(window_days - 1))
        .unwrap();
    let mut out = BTreeMap::new();
    for (cid, vs) in by_cid {
        let answer = match model {
            "MODEL1" => vs
                .iter()
                .max_by_key(|v| (v.ts, v.order))
                .map(|v| v.gndr.to_string()),
            "MODEL2" => top(&vs),
            "MODEL3" => {
                let recent: Vec<&RawVisit> = vs
                    .iter()
                    .copied()
                    .filter(|v| {
                        v.ts.date_naive() >= first_day && v.ts.date_naive() <= now.date_naive()
                    })
                    .collect();
                top(&recent)
            }
            other => panic!("no oracle for {other}"),
        };
        if let Some(a) = answer {
            out.insert(cid.to_string(), a);
        }
    }
    out
}
