//! Event times as records carry them, parsed and bounded in one place. Every time a record claims
//! (a visit's `ts`, an interaction's `date`, an RSVP's `mtime`, an app event's `client_time`) is
//! accepted from the epoch up to a little after the record's arrival; anything else is rejected
//! with `time_out_of_range`. A bounded time keeps every window, TTL and bucket computed from it far
//! from chrono's limits, and keeps a forged far-future time from pinning a live view.

use chrono::format::ParseErrorKind;
use chrono::{DateTime, Duration, NaiveDateTime, TimeZone, Utc};
use serde_json::Value;

use crate::record::Rejection;

/// How far after its record's arrival an event time may lie.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeBounds {
    pub ahead: Duration,
}

impl TimeBounds {
    /// A day: clocks of phones and services drift, and a client may queue events offline with a
    /// clock set ahead.
    pub const EVENT: TimeBounds = TimeBounds {
        ahead: Duration::days(1),
    };
    /// Five minutes: an RSVP's `mtime` is the Meetup server's own clock.
    pub const SERVER_CLOCK: TimeBounds = TimeBounds {
        ahead: Duration::minutes(5),
    };

    /// The latest time accepted for a record that arrived at `arrival`.
    pub fn latest(&self, arrival: DateTime<Utc>) -> DateTime<Utc> {
        arrival
            .checked_add_signed(self.ahead)
            .unwrap_or(DateTime::<Utc>::MAX_UTC)
    }

    /// `t` if it lies between the epoch and [`TimeBounds::latest`], else `time_out_of_range`.
    pub fn check(
        &self, field: &'static str, t: DateTime<Utc>, arrival: DateTime<Utc>,
    ) -> Result<DateTime<Utc>, Rejection> {
        if t < DateTime::<Utc>::UNIX_EPOCH {
            return Err(out_of_range(field, format!("{t} is before 1970-01-01")));
        }
        let latest = self.latest(arrival);
        if t > latest {
            return Err(out_of_range(
                field,
                format!(
                    "{} is after {} (the record arrived at {})",
                    t.to_rfc3339(),
                    latest.to_rfc3339(),
                    arrival.to_rfc3339()
                ),
            ));
        }
        Ok(t)
    }
}

pub fn out_of_range(field: &'static str, reason: String) -> Rejection {
    Rejection::TimeOutOfRange { field, reason }
}

/// Epoch milliseconds as a time: out of range below the epoch or beyond what a time can hold.
pub fn from_epoch_ms(field: &'static str, ms: i64) -> Result<DateTime<Utc>, Rejection> {
    if ms < 0 {
        return Err(out_of_range(
            field,
            format!("epoch milliseconds {ms} are before 1970-01-01"),
        ));
    }
    DateTime::from_timestamp_millis(ms)
        .ok_or_else(|| out_of_range(field, format!("epoch milliseconds {ms} are out of range")))
}

/// A JSON number of epoch milliseconds: an integer, or a float with no fraction (what some
/// encoders make of large integers).
pub fn epoch_ms_number(
    field: &'static str, n: &serde_json::Number,
) -> Result<DateTime<Utc>, Rejection> {
    if let Some(ms) = n.as_i64() {
        return from_epoch_ms(field, ms);
    }
    if n.as_u64().is_some() {
        return Err(out_of_range(
            field,
            format!("epoch milliseconds {n} are out of range"),
        ));
    }
    match n.as_f64() {
        Some(f) if f.is_finite() && f.fract() == 0.0 => {
            if f < 0.0 {
                Err(out_of_range(
                    field,
                    format!("epoch milliseconds {n} are before 1970-01-01"),
                ))
            } else if f >= 9.2e18 {
                Err(out_of_range(
                    field,
                    format!("epoch milliseconds {n} are out of range"),
                ))
            } else {
                from_epoch_ms(field, f as i64)
            }
        }
        _ => Err(Rejection::InvalidField {
            field,
            reason: format!("{n} is not an integer number of epoch milliseconds"),
        }),
    }
}

/// Why chrono refused a string: a well-formed time that cannot exist (February 30, hour 25) is
/// out of range; anything else is not a time.
fn parse_refusal(field: &'static str, s: &str, kind: ParseErrorKind, expected: &str) -> Rejection {
    match kind {
        ParseErrorKind::OutOfRange | ParseErrorKind::Impossible => {
            out_of_range(field, format!("{s:?} is not a valid date and time"))
        }
        _ => Rejection::InvalidField {
            field,
            reason: format!("{s:?} is not {expected}"),
        },
    }
}

/// A time field: an RFC 3339 string, or epoch milliseconds (a JSON integer, or a string of
/// digits). Not yet bounded: see [`TimeBounds::check`].
pub fn parse_time(field: &'static str, v: &Value) -> Result<DateTime<Utc>, Rejection> {
    match v {
        Value::String(s) => {
            let digits = s.strip_prefix('-').unwrap_or(s);
            if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
                return match s.parse::<i64>() {
                    Ok(ms) => from_epoch_ms(field, ms),
                    Err(_) => Err(out_of_range(
                        field,
                        format!("epoch milliseconds {s} are out of range"),
                    )),
                };
            }
            DateTime::parse_from_rfc3339(s)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|e| {
                    parse_refusal(
                        field,
                        s,
                        e.kind(),
                        "an RFC 3339 time nor epoch milliseconds",
                    )
                })
        }
        Value::Number(n) => epoch_ms_number(field, n),
        other => Err(Rejection::wrong_type(
            field,
            "an RFC 3339 string or epoch milliseconds",
            other,
        )),
    }
}

/// `YYYY-MM-DD HH:MM:SS[.fff]` in UTC (the interactions' format), or RFC 3339.
pub fn parse_utc_datetime(field: &'static str, s: &str) -> Result<DateTime<Utc>, Rejection> {
    let mut refusal = ParseErrorKind::Invalid;
    for format in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%d %H:%M:%S"] {
        match NaiveDateTime::parse_from_str(s, format) {
            Ok(t) => return Ok(Utc.from_utc_datetime(&t)),
            Err(e)
                if matches!(
                    e.kind(),
                    ParseErrorKind::OutOfRange | ParseErrorKind::Impossible
                ) =>
            {
                refusal = e.kind()
            }
            Err(_) => {}
        }
    }
    match DateTime::parse_from_rfc3339(s) {
        Ok(t) => Ok(t.with_timezone(&Utc)),
        Err(e) => {
            let kind = match e.kind() {
                k @ (ParseErrorKind::OutOfRange | ParseErrorKind::Impossible) => k,
                _ => refusal,
            };
            Err(parse_refusal(
                field,
                s,
                kind,
                "\"YYYY-MM-DD HH:MM:SS\" (UTC) nor RFC 3339",
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn arrival() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 0).unwrap()
    }

    fn code(r: Result<DateTime<Utc>, Rejection>) -> &'static str {
        match r {
            Ok(_) => "ok",
            Err(e) => e.code(),
        }
    }

    fn bounded(v: Value) -> &'static str {
        code(parse_time("ts", &v).and_then(|t| TimeBounds::EVENT.check("ts", t, arrival())))
    }

    #[test]
    fn times_from_the_epoch_to_a_day_after_arrival_are_accepted() {
        assert_eq!(bounded(json!(0)), "ok");
        assert_eq!(bounded(json!("1970-01-01T00:00:00Z")), "ok");
        assert_eq!(bounded(json!("2026-11-23T10:00:00Z")), "ok");
        assert_eq!(bounded(json!("1795341600000")), "ok");
    }

    #[test]
    fn extreme_times_are_out_of_range_never_a_panic() {
        for v in [
            json!(8210266876799999i64),
            json!(i64::MAX),
            json!(u64::MAX),
            json!(-1),
            json!(i64::MIN),
            json!(1e300),
            json!(-1e300),
            json!("9999-12-31T23:59:59Z"),
            json!("2026-11-23T10:00:00.001Z"),
            json!("1969-12-31T23:59:59Z"),
            json!("2026-02-30T00:00:00Z"),
            json!("2026-11-22T25:00:00Z"),
            json!("99999999999999999999999"),
            json!("-5"),
        ] {
            assert_eq!(bounded(v.clone()), "time_out_of_range", "{v}");
        }
        assert_eq!(bounded(json!("yesterday")), "invalid_field");
        assert_eq!(bounded(json!(1.5)), "invalid_field");
        assert_eq!(bounded(json!(true)), "wrong_type");
    }

    #[test]
    fn an_rsvp_clock_may_run_five_minutes_ahead() {
        let t = |m: i64| arrival() + Duration::minutes(m);
        assert!(TimeBounds::SERVER_CLOCK
            .check("mtime", t(5), arrival())
            .is_ok());
        assert_eq!(
            code(TimeBounds::SERVER_CLOCK.check("mtime", t(6), arrival())),
            "time_out_of_range"
        );
        // An arrival at chrono's limit cannot overflow the bound.
        assert!(TimeBounds::EVENT
            .check("ts", t(0), DateTime::<Utc>::MAX_UTC)
            .is_ok());
    }

    #[test]
    fn utc_datetimes_that_cannot_exist_are_out_of_range() {
        let ok = parse_utc_datetime("date", "2021-11-30 00:00:00").unwrap();
        assert_eq!(ok, Utc.with_ymd_and_hms(2021, 11, 30, 0, 0, 0).unwrap());
        assert_eq!(
            code(parse_utc_datetime("date", "2021-02-30 00:00:00")),
            "time_out_of_range"
        );
        assert_eq!(
            code(parse_utc_datetime("date", "2021-13-01 00:00:00")),
            "time_out_of_range"
        );
        assert_eq!(code(parse_utc_datetime("date", "soon")), "invalid_field");
    }
}
