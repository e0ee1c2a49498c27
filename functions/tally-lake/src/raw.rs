//! What lands in the archive bucket, as the lake reads it: Firehose objects of archived streams
//! (`raw/<stream>/dt=<day>/<file>.gz`, one record a line) and dead letters
//! (`dead-letter/<source>/<shard>/<sequence number>.json`).

use std::io::Read;

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};

use crate::LakeError;

/// An object of the archive bucket, by its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    Raw(RawObject),
    DeadLetter,
    /// Not an input of the lake (its own files, Athena results, Firehose errors).
    Other,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawObject {
    pub key: String,
    /// The folder under `raw/`: `visits`.
    pub stream: String,
    /// The UTC day Firehose filed it under.
    pub dt: NaiveDate,
    /// The file name without `.gz`: the lake's files made from it are named after it.
    pub stem: String,
    /// When Firehose delivered it (from the file name), else the start of its day: the arrival
    /// time the lake gives its records, which carry none of their own.
    pub delivered: DateTime<Utc>,
}

impl Input {
    pub fn of(key: &str) -> Input {
        if key.starts_with("dead-letter/") && key.ends_with(".json") {
            return Input::DeadLetter;
        }
        let Some(rest) = key.strip_prefix("raw/") else {
            return Input::Other;
        };
        // `raw/<stream>/dt=<day>/<file>`; a stream partitioned further has more folders
        // (`raw/events/event_type=click/dt=<day>/<file>`), all part of its name.
        let parts: Vec<&str> = rest.split('/').collect();
        let [stream @ .., day, file] = parts.as_slice() else {
            return Input::Other;
        };
        if stream.is_empty() || stream.iter().any(|s| s.is_empty()) {
            return Input::Other;
        }
        let stream = stream.join("/");
        let Some(dt) = day
            .strip_prefix("dt=")
            .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
        else {
            return Input::Other;
        };
        if file.is_empty() {
            return Input::Other;
        }
        let stem = file.strip_suffix(".gz").unwrap_or(file).to_string();
        let delivered = firehose_time(&stem)
            .unwrap_or_else(|| dt.and_hms_opt(0, 0, 0).expect("midnight").and_utc());
        Input::Raw(RawObject {
            key: key.to_string(),
            stream,
            dt,
            stem,
            delivered,
        })
    }
}

/// Firehose names objects `<stream>-<version>-YYYY-MM-DD-HH-MM-SS-<uuid>`: the time is the six
/// groups before the UUID's five.
fn firehose_time(stem: &str) -> Option<DateTime<Utc>> {
    let groups: Vec<&str> = stem.rsplitn(12, '-').collect();
    if groups.len() < 12 {
        return None;
    }
    // rsplitn gives the groups from the end: five of the UUID, then seconds back to the year.
    let t = format!(
        "{}-{}-{} {}:{}:{}",
        groups[10], groups[9], groups[8], groups[7], groups[6], groups[5]
    );
    NaiveDateTime::parse_from_str(&t, "%Y-%m-%d %H:%M:%S")
        .ok()
        .map(|t| t.and_utc())
}

/// A line of a raw object: the record as archived, and where it came from when the archive kept
/// that (`tally_engine::archive`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawLine {
    pub data: Vec<u8>,
    pub origin: Option<tally_engine::archive::Origin>,
}

/// The lines of a raw object (gunzipped when its key ends in `.gz`), without the last empty one.
pub fn lines(key: &str, data: &[u8]) -> Result<Vec<RawLine>, LakeError> {
    let text = if key.ends_with(".gz") {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(data)
            .read_to_end(&mut out)
            .map_err(|e| LakeError::Input(format!("{key} is not gzip: {e}")))?;
        out
    } else {
        data.to_vec()
    };
    let mut lines: Vec<&[u8]> = text.split(|b| *b == b'\n').collect();
    if lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop();
    }
    Ok(lines
        .into_iter()
        .map(|line| {
            let (origin, data) = tally_engine::archive::unstamp(line);
            RawLine {
                data: data.into_owned(),
                origin,
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn keys_say_what_an_object_is() {
        let key = "raw/visits/dt=2026-11-22/tally-VisitsArchiveDeliveryStream-1-2026-11-22-08-31-27-90e1035e-397c-4140-b289-c6a9d2136883.gz";
        let Input::Raw(raw) = Input::of(key) else {
            panic!("a raw object")
        };
        assert_eq!(raw.stream, "visits");
        assert_eq!(raw.dt, NaiveDate::from_ymd_opt(2026, 11, 22).unwrap());
        assert!(raw.stem.starts_with("tally-VisitsArchive") && !raw.stem.ends_with(".gz"));
        assert_eq!(
            raw.delivered,
            Utc.with_ymd_and_hms(2026, 11, 22, 8, 31, 27).unwrap()
        );
        let Input::Raw(other_name) = Input::of("raw/visits/dt=2026-11-22/part-0001") else {
            panic!("a raw object")
        };
        assert_eq!(
            other_name.delivered,
            Utc.with_ymd_and_hms(2026, 11, 22, 0, 0, 0).unwrap(),
            "no Firehose time: the start of its day"
        );
        assert_eq!(
            Input::of("dead-letter/MODEL1/shardId-000000000000/4959.json"),
            Input::DeadLetter
        );
        let Input::Raw(event) = Input::of("raw/events/event_type=clip_play/dt=2026-11-22/f.gz")
        else {
            panic!("a raw object")
        };
        assert_eq!(event.stream, "events/event_type=clip_play");
        for other in [
            "raw/dt=2026-11-22/x.gz",
            "raw//dt=2026-11-22/x.gz",
            "lake/visits/dt=2026-11-22/x.parquet",
            "errors/visits/processing-failed/dt=2026-11-22/x",
            "raw/visits/2026/x.gz",
            "athena-results/x.csv",
        ] {
            assert_eq!(Input::of(other), Input::Other, "{other}");
        }
    }

    #[test]
    fn lines_come_out_of_gzip_without_the_last_empty_one() {
        use std::io::Write;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(b"{\"a\":1}\n\nnot json\n").unwrap();
        let data = gz.finish().unwrap();
        let got: Vec<Vec<u8>> = lines("raw/x/dt=2026-11-22/f.gz", &data)
            .unwrap()
            .into_iter()
            .map(|l| l.data)
            .collect();
        assert_eq!(
            got,
            vec![b"{\"a\":1}".to_vec(), vec![], b"not json".to_vec()]
        );
        assert!(lines("raw/x/dt=2026-11-22/f.gz", b"plain").is_err());
    }
}
