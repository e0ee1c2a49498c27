//! App events as a fleet of phones and browsers sends them, made up but shaped like the real
//! thing: each device has a platform, model, OS and app version, a clock that is a little off
//! (a few far off), and sessions (`app_open`, screens, clicks, searches, clips, sometimes a
//! purchase, `app_close`). An SDK buffers a device's events and sends them in batches; some
//! devices are offline for a while and send late; a lost response makes the SDK send a batch
//! again with the same `event_id`s; a small share of events is invalid in each documented way.
//!
//! The same seed gives the same events on every machine. The output is NDJSON in send order,
//! each line one event as the SDK posts it (no `app_id`: the key says the app).

use chrono::{DateTime, Duration, SecondsFormat, TimeZone, Utc};
use serde_json::{json, Value};
use tally_engine::sampling::{SeededRng, ZipfKeys};

/// What the generated fleet looks like.
#[derive(Debug, Clone)]
pub struct Fleet {
    pub devices: u64,
    pub minutes: u32,
    pub seed: u64,
    pub start: DateTime<Utc>,
    /// Share of batches an SDK sends twice (a response lost on the way back).
    pub retry_share: f64,
    /// Share of events that are invalid (each documented way in turn).
    pub invalid_share: f64,
}

impl Fleet {
    pub fn new(devices: u64, minutes: u32, seed: u64) -> Self {
        Fleet {
            devices,
            minutes,
            seed,
            start: default_start(),
            retry_share: 0.02,
            invalid_share: 0.005,
        }
    }
}

/// A fixed start, so that a seed gives the same file whenever it runs.
pub fn default_start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 0).unwrap()
}

const SCREENS: &[&str] = &[
    "home", "flyers", "flyer", "search", "clips", "cart", "settings",
];
const QUERIES: &[&str] = &[
    "milk", "eggs", "coffee", "diapers", "tv", "chicken", "bread",
];
const MODELS: &[(&str, &str, &[&str])] = &[
    ("ios", "iPhone16,1", &["18.1", "18.2", "17.6"]),
    ("ios", "iPhone15,4", &["18.1", "17.6"]),
    ("android", "Pixel 9", &["15", "14"]),
    ("android", "SM-S921B", &["14", "15"]),
    ("web", "Chrome 131", &["macOS 15", "Windows 11"]),
];
const APP_VERSIONS: &[&str] = &["4.2.0", "4.1.3", "4.0.9"];

/// One SDK batch: a device's events, sent together at `sent`.
#[derive(Debug, Clone)]
pub struct Batch {
    pub device: String,
    pub sent: DateTime<Utc>,
    pub events: Vec<Value>,
}

struct Device {
    id: String,
    platform: &'static str,
    model: &'static str,
    os: &'static str,
    app_version: &'static str,
    /// How far the device's clock is off, ms.
    skew_ms: i64,
    user: Option<String>,
}

fn uuid(rng: &mut SeededRng) -> String {
    let (a, b) = (rng.next_u64(), rng.next_u64());
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xfff,
        0x8000 | (b >> 48) & 0x3fff,
        b & 0xffff_ffff_ffff
    )
}

fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// A valid event turned invalid in the `n`-th documented way.
fn spoil(mut e: Value, n: u64) -> Value {
    match n % 5 {
        0 => {
            e["device"].as_object_mut().unwrap().remove("id");
        }
        1 => e["event_type"] = json!("app_crash"),
        2 => {
            e["event_type"] = json!("purchase");
            e["attributes"] =
                json!({"order_id": "o", "item_id": "i", "price": -1, "currency": "CAD"});
        }
        3 => {
            e.as_object_mut().unwrap().remove("event_id");
        }
        _ => {
            e["event_type"] = json!("click");
            e["attributes"] = json!({"screen_name": "home"});
        }
    }
    e
}

/// Every batch the fleet sends, in send order.
pub fn batches(fleet: &Fleet) -> Vec<Batch> {
    let mut rng = SeededRng::new(fleet.seed);
    let clips = ZipfKeys::new(200, 1.1);
    // Flyers of the local cloud's core database (ids 1 to FLYERS), a few read much more.
    let flyers = ZipfKeys::new(tally_cloud::core_db::FLYERS as usize, 1.05);
    let span_ms = i64::from(fleet.minutes.max(1)) * 60_000;
    let mut out: Vec<Batch> = Vec::new();
    let mut spoiled = 0u64;
    for d in 0..fleet.devices {
        let (platform, model, oses) = MODELS[rng.below(MODELS.len() as u64) as usize];
        let device = Device {
            id: format!("dev-{:06}-{}", d, &uuid(&mut rng)[..8]),
            platform,
            model,
            os: oses[rng.below(oses.len() as u64) as usize],
            app_version: APP_VERSIONS[rng.below(APP_VERSIONS.len() as u64) as usize],
            // Most clocks within a few seconds; one in fifty hours off.
            skew_ms: if rng.below(50) == 0 {
                (rng.below(6 * 3_600_000) as i64) - 3 * 3_600_000
            } else {
                (rng.below(10_000) as i64) - 5_000
            },
            user: (rng.below(3) > 0).then(|| format!("user-{}", rng.below(fleet.devices * 2))),
        };
        // Offline devices send everything at the end of the span.
        let offline = rng.below(10) == 0;
        let mut t = rng.below(span_ms as u64 / 2) as i64;
        let mut pending: Vec<Value> = Vec::new();
        let mut last_flush = t;
        while t < span_ms {
            let session = uuid(&mut rng);
            let mut events: Vec<(&str, Value)> = vec![(
                "app_open",
                json!({"launch_source": "icon", "cold_start": rng.below(3) == 0}),
            )];
            let mut screen = "home";
            for _ in 0..(3 + rng.below(12)) {
                // On the flyers screens, some flyers are opened, and some of their items clicked.
                if (screen == "flyers" || screen == "flyer") && rng.below(2) == 0 {
                    let flyer = flyers.rank(&mut rng);
                    events.push(("flyer_open", json!({"flyer_id": flyer, "source": "list"})));
                    if rng.below(3) == 0 {
                        events.push(("flyer_item_click", json!({"flyer_id": flyer, "item_id": format!("item-{}", rng.below(500))})));
                    }
                    continue;
                }
                match rng.below(10) {
                    0..=3 => {
                        let next = SCREENS[rng.below(SCREENS.len() as u64) as usize];
                        events.push(("screen_view", json!({"screen_name": next, "previous_screen": screen})));
                        screen = next;
                    }
                    4..=5 => events.push(("click", json!({"screen_name": screen, "element_id": format!("card-{}", rng.below(20)), "item_id": format!("item-{}", rng.below(500))}))),
                    6 => events.push(("search", json!({"query": QUERIES[rng.below(QUERIES.len() as u64) as usize], "results_count": rng.below(80)}))),
                    7..=8 => {
                        let clip = format!("clip-{:03}", clips.rank(&mut rng));
                        events.push(("clip_play", json!({"clip_id": clip, "position_ms": 0, "autoplay": rng.below(4) == 0})));
                        if rng.below(10) < 6 {
                            events.push(("clip_complete", json!({"clip_id": clip, "watched_ms": 15_000 + rng.below(45_000)})));
                        }
                    }
                    _ if screen == "cart" || rng.below(3) == 0 => events.push(("purchase", json!({"order_id": uuid(&mut rng), "item_id": format!("item-{}", rng.below(500)), "quantity": 1 + rng.below(3), "price": (rng.below(5_000) as f64) / 100.0, "currency": "CAD"}))),
                    _ => {}
                }
            }
            let started = t;
            events.push(("app_close", json!({})));
            for (event_type, attributes) in events {
                t += 500 + rng.below(20_000) as i64;
                let client = fleet.start + Duration::milliseconds(t + device.skew_ms);
                let mut e = json!({
                    "event_id": uuid(&mut rng),
                    "event_type": event_type,
                    "client_time": time(client),
                    "device": {"id": device.id, "platform": device.platform, "os_version": device.os, "model": device.model, "app_version": device.app_version},
                    "session_id": session,
                    "attributes": attributes,
                });
                if event_type == "app_close" {
                    e["attributes"] = json!({"session_duration_ms": t - started});
                }
                if let Some(u) = &device.user {
                    e["user_id"] = json!(u);
                }
                if rng.unit() < fleet.invalid_share {
                    e = spoil(e, spoiled);
                    spoiled += 1;
                }
                pending.push(e);
                // The SDK flushes every 20 events or 30 s, unless the device is offline.
                if !offline && (pending.len() >= 20 || t - last_flush >= 30_000) {
                    out.push(Batch {
                        device: device.id.clone(),
                        sent: fleet.start + Duration::milliseconds(t),
                        events: std::mem::take(&mut pending),
                    });
                    last_flush = t;
                }
            }
            t += 60_000 + rng.below(20 * 60_000) as i64;
        }
        if !pending.is_empty() {
            let sent = if offline { span_ms } else { t.min(span_ms) };
            out.push(Batch {
                device: device.id.clone(),
                sent: fleet.start + Duration::milliseconds(sent),
                events: pending,
            });
        }
    }
    out.sort_by(|a, b| a.sent.cmp(&b.sent).then_with(|| a.device.cmp(&b.device)));
    // A lost response: the SDK sends the same batch again a little later.
    let mut with_retries = Vec::with_capacity(out.len());
    for b in out {
        let again = rng.unit() < fleet.retry_share;
        with_retries.push(b.clone());
        if again {
            with_retries.push(Batch {
                sent: b.sent + Duration::seconds(5),
                ..b
            });
        }
    }
    with_retries.sort_by(|a, b| a.sent.cmp(&b.sent).then_with(|| a.device.cmp(&b.device)));
    with_retries
}
