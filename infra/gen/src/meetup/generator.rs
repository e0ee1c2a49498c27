//! Meetup RSVPs in the exact shape `stream.meetup.com/2/rsvps` sent (`shared/data/`), made up but
//! shaped like the real stream: groups in cities with topic lists drawn from one vocabulary (each
//! group leaning to one theme), events of skewed popularity, members who RSVP to several events,
//! venues sometimes missing (and Meetup's own "Online event" venue), a few automated members who
//! RSVP far more than people do, and later versions of an RSVP (newer `mtime`, changed response).
//!
//! The same seed gives the same RSVPs on every machine. `mtime` advances by `rate` RSVPs a second
//! on average from `start`, or follows the wall clock (`Clock::Live`, for `tally serve-rsvps`).

use std::collections::HashMap;

use chrono::{DateTime, TimeZone, Utc};
use tally_engine::sampling::{SeededRng, ZipfKeys};

use super::vocabulary::{ACTIVITIES, CITIES, FIRST, LAST, THEMES, VENUE_NAMES};

/// Meetup's venue for online events, as in the real records.
const ONLINE: Venue = Venue {
    id: 26906060,
    name: "Online event",
    lat: -8.521147,
    lon: 179.1962,
};

#[derive(Debug, Clone, Copy)]
struct Venue {
    id: u64,
    name: &'static str,
    lat: f64,
    lon: f64,
}

#[derive(Debug, Clone)]
struct Group {
    id: u64,
    name: String,
    urlname: String,
    city: usize,
    topics: Vec<(&'static str, &'static str)>,
}

#[derive(Debug, Clone)]
struct Event {
    id: String,
    name: String,
    group: usize,
    time_ms: i64,
    venue: Option<Venue>,
}

#[derive(Debug, Clone)]
struct Member {
    id: u64,
    name: String,
    photo: Option<String>,
}

/// How `mtime` advances.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Clock {
    /// From `start`, `rate` RSVPs a second on average (compressed or stretched time).
    Simulated { start: DateTime<Utc>, rate: f64 },
    /// The wall clock when each RSVP is made.
    Live,
}

/// The first real record's `mtime` (2020-10-13T22:55:55.622Z): generated data starts there.
pub fn default_start() -> DateTime<Utc> {
    Utc.timestamp_millis_opt(1_602_629_755_622)
        .single()
        .expect("valid")
}

/// Sizes of the made-up Meetup.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    pub groups: usize,
    pub events_per_group: usize,
    pub members: usize,
    /// Automated members, and the share of all RSVPs they make.
    pub bots: usize,
    pub bot_share: f64,
    /// The share of RSVPs that are a later version of an earlier one.
    pub changes: f64,
}

impl Default for Shape {
    fn default() -> Self {
        Shape {
            groups: 120,
            events_per_group: 4,
            members: 3000,
            bots: 3,
            bot_share: 0.06,
            changes: 0.07,
        }
    }
}

/// One RSVP a member made, to make later versions of.
#[derive(Debug, Clone, Copy)]
struct Made {
    rsvp_id: u64,
    member: usize,
    event: usize,
    yes: bool,
    guests: u32,
}

pub struct RsvpGenerator {
    rng: SeededRng,
    clock: Clock,
    last_ms: i64,
    groups: Vec<Group>,
    events: Vec<Event>,
    members: Vec<Member>,
    bots: Vec<usize>,
    shape: Shape,
    event_rank: ZipfKeys,
    member_rank: ZipfKeys,
    next_id: u64,
    made: Vec<Made>,
    by_pair: HashMap<(usize, usize), usize>,
}

fn urlname(name: &str) -> String {
    name.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join("-")
}

impl RsvpGenerator {
    pub fn new(seed: u64, clock: Clock, shape: Shape) -> Self {
        let mut rng = SeededRng::new(seed);
        let start_ms = match clock {
            Clock::Simulated { start, .. } => start.timestamp_millis(),
            Clock::Live => Utc::now().timestamp_millis(),
        };
        let ids = |rng: &mut SeededRng, low: u64, span: u64| low + rng.below(span);
        let theme_rank = ZipfKeys::new(THEMES.len(), 0.8);
        let mut groups = Vec::new();
        for g in 0..shape.groups.max(1) {
            let theme = theme_rank.rank(&mut rng) as usize - 1;
            let city = rng.below(CITIES.len() as u64) as usize;
            let (theme_name, vocabulary) = THEMES[theme];
            let mut topics: Vec<(&str, &str)> = Vec::new();
            let wanted = 3 + rng.below(6) as usize;
            for _ in 0..wanted * 3 {
                if topics.len() == wanted {
                    break;
                }
                // Mostly the group's theme, now and then a topic of another.
                let (_, from) = if rng.below(5) == 0 {
                    THEMES[rng.below(THEMES.len() as u64) as usize]
                } else {
                    THEMES[theme]
                };
                let t = from[rng.below(from.len() as u64) as usize];
                if !topics.contains(&t) {
                    topics.push(t);
                }
            }
            let flavour = vocabulary[rng.below(vocabulary.len() as u64) as usize].1;
            let name = match rng.below(3) {
                0 => format!("{} {flavour} Meetup", CITIES[city].0),
                1 => format!("{flavour} & {theme_name} {}", CITIES[city].0),
                _ => format!("{} {theme_name} Group #{}", CITIES[city].0, g + 1),
            };
            groups.push(Group {
                id: ids(&mut rng, 1_000_000, 34_000_000),
                urlname: urlname(&name),
                name,
                city,
                topics,
            });
        }
        let mut venues: Vec<Vec<Venue>> = Vec::new();
        for &(_, _, _, lat, lon) in CITIES {
            venues.push(
                (0..5)
                    .map(|_| Venue {
                        id: ids(&mut rng, 20_000_000, 7_000_000),
                        name: VENUE_NAMES[rng.below(VENUE_NAMES.len() as u64) as usize],
                        lat: ((lat + (rng.unit() - 0.5) * 0.1) * 1e6).round() / 1e6,
                        lon: ((lon + (rng.unit() - 0.5) * 0.1) * 1e6).round() / 1e6,
                    })
                    .collect(),
            );
        }
        let mut events = Vec::new();
        for (gi, g) in groups.iter().enumerate() {
            let theme = THEMES
                .iter()
                .position(|(_, v)| v.contains(&g.topics[0]))
                .unwrap_or(0);
            for _ in 0..1 + rng.below(shape.events_per_group.max(1) as u64 * 2 - 1) {
                let activities = ACTIVITIES[theme];
                let days = 1 + rng.below(30) as i64;
                let hour = 9 + rng.below(12) as i64;
                let day_start = start_ms - start_ms.rem_euclid(86_400_000);
                let venue = match rng.below(10) {
                    0..=1 => None,
                    2..=3 => Some(ONLINE),
                    _ => Some(venues[g.city][rng.below(5) as usize]),
                };
                events.push(Event {
                    id: ids(&mut rng, 200_000_000, 99_999_999).to_string(),
                    name: activities[rng.below(activities.len() as u64) as usize].to_string(),
                    group: gi,
                    time_ms: day_start + days * 86_400_000 + hour * 3_600_000,
                    venue,
                });
            }
        }
        // Shuffle so that popularity does not follow the order groups were made in.
        for i in (1..events.len()).rev() {
            events.swap(i, rng.below(i as u64 + 1) as usize);
        }
        let members: Vec<Member> = (0..shape.members.max(1) + shape.bots)
            .map(|_| {
                let name = format!(
                    "{} {}",
                    FIRST[rng.below(FIRST.len() as u64) as usize],
                    LAST[rng.below(LAST.len() as u64) as usize]
                );
                let photo = (rng.below(5) > 0).then(|| {
                    let hex = |r: &mut SeededRng| format!("{:x}", r.below(16));
                    format!(
                        "https://secure.meetupstatic.com/photos/member/{}/{}/{}/{}/thumb_{}.jpeg",
                        hex(&mut rng),
                        hex(&mut rng),
                        hex(&mut rng),
                        hex(&mut rng),
                        ids(&mut rng, 250_000_000, 99_000_000)
                    )
                });
                Member {
                    id: ids(&mut rng, 10_000_000, 290_000_000),
                    name,
                    photo,
                }
            })
            .collect();
        let bots = (shape.members.max(1)..members.len()).collect();
        RsvpGenerator {
            event_rank: ZipfKeys::new(events.len(), 1.1),
            member_rank: ZipfKeys::new(shape.members.max(1), 0.3),
            rng,
            clock,
            last_ms: start_ms,
            groups,
            events,
            members,
            bots,
            shape,
            next_id: 1_852_970_778,
            made: Vec::new(),
            by_pair: HashMap::new(),
        }
    }

    /// The member ids of the automated members (for tests of the EDA that finds them).
    pub fn bot_ids(&self) -> Vec<u64> {
        self.bots.iter().map(|&b| self.members[b].id).collect()
    }

    fn next_mtime(&mut self) -> i64 {
        let ms = match self.clock {
            Clock::Simulated { rate, .. } => {
                // Exponential gaps: a Poisson stream of `rate` a second.
                let gap = -(1.0 - self.rng.unit()).ln() * 1000.0 / rate.max(1e-6);
                self.last_ms + gap.round() as i64
            }
            Clock::Live => Utc::now().timestamp_millis(),
        };
        // Versions of one RSVP must differ in mtime: never go back, and move at least 1 ms.
        self.last_ms = ms.max(self.last_ms + 1);
        self.last_ms
    }

    /// The next RSVP, one JSON line in the stream's shape.
    pub fn next_line(&mut self) -> String {
        let mtime = self.next_mtime();
        let change = !self.made.is_empty() && self.rng.unit() < self.shape.changes;
        let index = if change {
            // Someone changes their mind (or their guests).
            let i = self.rng.below(self.made.len() as u64) as usize;
            let m = &mut self.made[i];
            if self.rng.below(4) > 0 {
                m.yes = !m.yes;
            } else {
                m.guests = (m.guests + 1) % 3;
            }
            i
        } else {
            let bot = self.rng.unit() < self.shape.bot_share && !self.bots.is_empty();
            let (member, event) = if bot {
                // Automated members RSVP yes to events anywhere, whatever their popularity.
                let b = self.bots[self.rng.below(self.bots.len() as u64) as usize];
                (b, self.rng.below(self.events.len() as u64) as usize)
            } else {
                (
                    self.member_rank.rank(&mut self.rng) as usize - 1,
                    self.event_rank.rank(&mut self.rng) as usize - 1,
                )
            };
            match self.by_pair.get(&(member, event)) {
                // RSVPing again to the same event is a new version of the same RSVP.
                Some(&i) => {
                    self.made[i].yes = bot || !self.made[i].yes;
                    i
                }
                None => {
                    self.next_id += 1 + self.rng.below(40);
                    let guests = match self.rng.below(20) {
                        0 => 2,
                        1..=2 => 1,
                        _ => 0,
                    };
                    self.made.push(Made {
                        rsvp_id: self.next_id,
                        member,
                        event,
                        yes: bot || self.rng.below(10) > 0,
                        guests: if bot { 0 } else { guests },
                    });
                    self.by_pair.insert((member, event), self.made.len() - 1);
                    self.made.len() - 1
                }
            }
        };
        let visibility = if self.rng.below(20) == 0 {
            "members"
        } else {
            "public"
        };
        self.render(self.made[index], mtime, visibility)
    }

    fn render(&self, m: Made, mtime: i64, visibility: &str) -> String {
        let q = |s: &str| serde_json::to_string(s).expect("a string");
        let member = &self.members[m.member];
        let event = &self.events[m.event];
        let group = &self.groups[event.group];
        let (city, state, country, lat, lon) = CITIES[group.city];
        let mut out = String::with_capacity(1200);
        if let Some(v) = event.venue {
            out.push_str(&format!(
                r#"{{"venue":{{"venue_name":{},"lon":{},"lat":{},"venue_id":{}}},"#,
                q(v.name),
                v.lon,
                v.lat,
                v.id
            ));
        } else {
            out.push('{');
        }
        out.push_str(&format!(
            r#""visibility":{},"response":{},"guests":{},"member":{{"member_id":{}"#,
            q(visibility),
            q(if m.yes { "yes" } else { "no" }),
            m.guests,
            member.id
        ));
        if let Some(photo) = &member.photo {
            out.push_str(&format!(r#","photo":{}"#, q(photo)));
        }
        out.push_str(&format!(
            r#","member_name":{}}},"rsvp_id":{},"mtime":{mtime},"event":{{"event_name":{},"event_id":{},"time":{},"event_url":{}}},"#,
            q(&member.name),
            m.rsvp_id,
            q(&event.name),
            q(&event.id),
            event.time_ms,
            q(&format!("https://www.meetup.com/{}/events/{}/", group.urlname, event.id))
        ));
        let topics: Vec<String> = group
            .topics
            .iter()
            .map(|(k, n)| format!(r#"{{"urlkey":{},"topic_name":{}}}"#, q(k), q(n)))
            .collect();
        out.push_str(&format!(
            r#""group":{{"group_topics":[{}],"group_city":{},"group_country":{},"group_id":{},"group_name":{},"group_lon":{lon},"group_urlname":{},"#,
            topics.join(","),
            q(city),
            q(country),
            group.id,
            q(&group.name),
            q(&group.urlname)
        ));
        if let Some(state) = state {
            out.push_str(&format!(r#""group_state":{},"#, q(state)));
        }
        out.push_str(&format!(r#""group_lat":{lat}}}}}"#));
        out
    }
}

impl Iterator for RsvpGenerator {
    type Item = String;

    fn next(&mut self) -> Option<String> {
        Some(self.next_line())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use super::*;

    fn simulated() -> Clock {
        Clock::Simulated {
            start: default_start(),
            rate: 10.0,
        }
    }

    /// The object keys of a JSON line in the order written, each once (topics repeat theirs).
    fn key_order(line: &str) -> Vec<String> {
        let (mut keys, mut chars) = (Vec::<String>::new(), line.chars().peekable());
        while let Some(c) = chars.next() {
            if c != '"' {
                continue;
            }
            let mut s = String::new();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => s.extend(chars.next()),
                    '"' => break,
                    c => s.push(c),
                }
            }
            if chars.peek() == Some(&':') && !keys.contains(&s) {
                keys.push(s);
            }
        }
        keys
    }

    #[test]
    fn rsvps_have_the_real_records_shape() {
        let sample = include_str!("../../../../tests/fixtures/meetup_rsvp_sample.jsonl");
        let lines: Vec<String> = RsvpGenerator::new(1, simulated(), Shape::default())
            .take(2000)
            .collect();
        let decoder = tally_pipelines::rsvp::RsvpDecoder::default();
        // Their shape, whenever they arrive (the sample is from 2020).
        let any_time = chrono::DateTime::<chrono::Utc>::MAX_UTC;
        for line in sample.lines().chain(lines.iter().map(String::as_str)) {
            decoder.decode_bytes(line.as_bytes(), any_time).unwrap();
        }
        // The same fields in the same order, at every level, as the real records.
        let real = key_order(sample.lines().next().unwrap());
        let complete = lines
            .iter()
            .find(|l| {
                l.contains("\"venue\"") && l.contains("\"photo\"") && l.contains("\"group_state\"")
            })
            .unwrap();
        assert_eq!(key_order(complete), real);
        assert_eq!(
            real.len(),
            31,
            "9 + venue 4 + member 3 + event 4 + group 9 + topic 2"
        );
    }

    #[test]
    fn the_same_seed_makes_the_same_rsvps_and_they_look_like_meetup() {
        let a: Vec<String> = RsvpGenerator::new(5, simulated(), Shape::default())
            .take(5000)
            .collect();
        let b: Vec<String> = RsvpGenerator::new(5, simulated(), Shape::default())
            .take(5000)
            .collect();
        assert_eq!(a, b);
        let v: Vec<serde_json::Value> =
            a.iter().map(|l| serde_json::from_str(l).unwrap()).collect();
        let mut versions: BTreeMap<u64, Vec<(i64, String)>> = BTreeMap::new();
        let mut per_member: BTreeMap<u64, BTreeSet<u64>> = BTreeMap::new();
        let mut per_event: BTreeMap<String, usize> = BTreeMap::new();
        for r in &v {
            let id = r["rsvp_id"].as_u64().unwrap();
            versions.entry(id).or_default().push((
                r["mtime"].as_i64().unwrap(),
                r["response"].as_str().unwrap().into(),
            ));
            per_member
                .entry(r["member"]["member_id"].as_u64().unwrap())
                .or_default()
                .insert(id);
            *per_event
                .entry(r["event"]["event_id"].as_str().unwrap().into())
                .or_default() += 1;
        }
        let changed = versions.values().filter(|vs| vs.len() > 1).count();
        assert!(changed > 100, "later versions: {changed}");
        assert!(
            versions
                .values()
                .filter(|vs| vs.windows(2).any(|w| w[0].1 != w[1].1))
                .count()
                > 50,
            "responses change"
        );
        assert!(
            versions
                .values()
                .all(|vs| vs.windows(2).all(|w| w[0].0 < w[1].0)),
            "mtime grows per RSVP"
        );
        let mut counts: Vec<usize> = per_member.values().map(BTreeSet::len).collect();
        counts.sort_unstable_by(|a, b| b.cmp(a));
        let bots = RsvpGenerator::new(5, simulated(), Shape::default()).bot_ids();
        for bot in &bots {
            assert!(
                per_member[bot].len() > 50,
                "an automated member RSVPs a lot: {}",
                per_member[bot].len()
            );
        }
        assert!(counts[bots.len()] < 40, "people do not: {counts:?}");
        assert!(
            per_member.values().filter(|s| s.len() > 1).count() > 300,
            "members RSVP to several events"
        );
        let mut popularity: Vec<usize> = per_event.values().copied().collect();
        popularity.sort_unstable_by(|a, b| b.cmp(a));
        assert!(
            popularity[0] > 10 * popularity[popularity.len() / 2],
            "skewed: {:?}",
            &popularity[..10]
        );
        assert!(
            v.iter().any(|r| r.get("venue").is_none()),
            "venues are sometimes missing"
        );
        assert!(v.iter().any(|r| r["venue"]["venue_name"] == "Online event"));
        let span = v.last().unwrap()["mtime"].as_i64().unwrap() - v[0]["mtime"].as_i64().unwrap();
        assert!(
            (400_000..600_000).contains(&span),
            "10 a second: {span} ms for 5000"
        );
    }
}
