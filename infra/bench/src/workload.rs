//! The benchmark's inputs: skewed (Zipf s=1.1 over 10,000 keys) and uniform key choices, visits
//! and interactions built from them, and what the rules must alert on, computed independently.

use std::collections::HashMap;

use chrono::{DateTime, Duration, TimeZone, Utc};
use tally_engine::sampling::{SeededRng, ZipfKeys};

pub const KEYS: usize = 10_000;
pub const ZIPF_S: f64 = 1.1;

/// The template's default thresholds and window (the bench runs with the default parameters).
pub const PAID_USER_AT: u64 = 9;
pub const PROPERTY_STATUS_ABOVE: u64 = 5;
pub const POSSIBLE_BROKER_ABOVE: u64 = 10;
pub const BROKER_WINDOW_SECONDS: i64 = 60;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skew {
    Zipf,
    Uniform,
}

impl Skew {
    pub fn label(self) -> &'static str {
        match self {
            Skew::Zipf => "skewed",
            Skew::Uniform => "uniform",
        }
    }
}

/// Key ranks 1..=KEYS with the workload's skew.
pub struct KeyChooser(ZipfKeys);

impl KeyChooser {
    pub fn new(skew: Skew) -> Self {
        KeyChooser(ZipfKeys::new(
            KEYS,
            match skew {
                Skew::Zipf => ZIPF_S,
                Skew::Uniform => 0.0,
            },
        ))
    }

    pub fn rank(&self, rng: &mut SeededRng) -> u64 {
        self.0.rank(rng)
    }
}

/// One record for a stream: its partition key and data.
#[derive(Debug, Clone)]
pub struct Event {
    pub partition_key: String,
    pub data: String,
}

/// `n` visits of cids `{tag}{rank}`, event times `rate` a second from `start`. Each cid leans
/// to one gender (3 visits in 4), so answers are stable but counts keep moving.
pub fn visits(
    tag: &str, n: usize, skew: Skew, seed: u64, start: DateTime<Utc>, rate: f64,
) -> Vec<Event> {
    let keys = KeyChooser::new(skew);
    let mut rng = SeededRng::new(seed);
    (0..n)
        .map(|i| {
            let rank = keys.rank(&mut rng);
            let leans_male = rank.is_multiple_of(2);
            let male = (rng.unit() < 0.75) == leans_male;
            let ts = start + Duration::microseconds((i as f64 / rate * 1e6) as i64);
            let cid = format!("{tag}{rank}");
            Event {
                data: format!(
                    r#"{{"cid":"{cid}","gndr":"{}","ts":"{}"}}"#,
                    if male { "male" } else { "female" },
                    ts.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
                ),
                partition_key: cid,
            }
        })
        .collect()
}

/// An interaction as the bench made it, to compute the expected alerts.
#[derive(Debug, Clone, Copy)]
pub struct Interaction {
    pub user_id: u64,
    pub property_id: u64,
    pub at: DateTime<Utc>,
}

/// `n` interactions: users and properties drawn independently, ids `offset + rank`.
pub fn interactions(
    offset: u64, n: usize, skew: Skew, seed: u64, start: DateTime<Utc>, rate: f64,
) -> Vec<Interaction> {
    let keys = KeyChooser::new(skew);
    let mut rng = SeededRng::new(seed);
    (0..n)
        .map(|i| Interaction {
            user_id: offset + keys.rank(&mut rng),
            property_id: offset + keys.rank(&mut rng),
            at: start + Duration::microseconds((i as f64 / rate * 1e6) as i64),
        })
        .collect()
}

impl Interaction {
    pub fn event(&self) -> Event {
        Event {
            partition_key: self.user_id.to_string(),
            data: format!(
                r#"{{"user_id":{},"property_id":{},"date":"{}","event":"Interaction"}}"#,
                self.user_id,
                self.property_id,
                self.at.format("%Y-%m-%d %H:%M:%S%.3f")
            ),
        }
    }
}

/// How many alerts the three rules must emit for `events` (each once).
pub fn expected_alerts(events: &[Interaction]) -> usize {
    let mut users: HashMap<u64, u64> = HashMap::new();
    let mut properties: HashMap<u64, u64> = HashMap::new();
    let mut windows: HashMap<(u64, i64), u64> = HashMap::new();
    for e in events {
        *users.entry(e.user_id).or_default() += 1;
        *properties.entry(e.property_id).or_default() += 1;
        let secs = e.at.timestamp();
        let start = secs - secs.rem_euclid(BROKER_WINDOW_SECONDS);
        *windows.entry((e.user_id, start)).or_default() += 1;
    }
    users.values().filter(|n| **n >= PAID_USER_AT).count()
        + properties
            .values()
            .filter(|n| **n > PROPERTY_STATUS_ABOVE)
            .count()
        + windows
            .values()
            .filter(|n| **n > POSSIBLE_BROKER_ABOVE)
            .count()
}

/// A fixed start for event times: today at midnight UTC, so MODEL3's window holds every visit.
pub fn today() -> DateTime<Utc> {
    let now = Utc::now();
    Utc.from_utc_datetime(&now.date_naive().and_hms_opt(0, 0, 0).expect("midnight"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zipf_puts_about_15_percent_on_the_top_key_and_uniform_spreads_evenly() {
        let mut rng = SeededRng::new(7);
        let zipf = KeyChooser::new(Skew::Zipf);
        let top = (0..20_000).filter(|_| zipf.rank(&mut rng) == 1).count();
        assert!((2_700..3_400).contains(&top), "{top}");
        let uniform = KeyChooser::new(Skew::Uniform);
        let mut seen = std::collections::HashSet::new();
        for _ in 0..20_000 {
            let r = uniform.rank(&mut rng);
            assert!((1..=KEYS as u64).contains(&r));
            seen.insert(r);
        }
        assert!(seen.len() > 8_000, "{}", seen.len());
    }

    #[test]
    fn expected_alerts_follow_the_thresholds() {
        let at = Utc.with_ymd_and_hms(2026, 11, 22, 12, 0, 0).unwrap();
        let e = |user_id, property_id, s| Interaction {
            user_id,
            property_id,
            at: at + Duration::seconds(s),
        };
        // User 1: 11 events in one minute -> paid_user and possible_broker; property 5 -> 6 of them.
        let mut events: Vec<Interaction> = (0..11)
            .map(|i| e(1, if i < 6 { 5 } else { 100 + i as u64 }, i))
            .collect();
        assert_eq!(expected_alerts(&events), 3);
        events.truncate(8); // 8 < 9, 8 <= 10; property 5 still has 6
        assert_eq!(expected_alerts(&events), 1);
    }
}
