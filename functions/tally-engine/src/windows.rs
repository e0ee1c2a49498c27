//! Event-time windows and how long their state must live, in one place: UTC calendar days
//! (MODEL3), tumbling windows (possible_broker) and spans of one-minute buckets (live stats per
//! minute). Every TTL a pipeline sets comes from here.

use chrono::{DateTime, Days, Duration, NaiveDate, TimeZone, Utc};

/// `t + d`, held at chrono's limits instead of panicking: a window or TTL computed from a time
/// near them (which the decoders refuse, `event_time.rs`) must still never stop a batch.
pub fn plus(t: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    t.checked_add_signed(d).unwrap_or(if d < Duration::zero() {
        DateTime::<Utc>::MIN_UTC
    } else {
        DateTime::<Utc>::MAX_UTC
    })
}

/// The last `days` UTC calendar days, today included, as of the moment asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UtcDays {
    pub days: u32,
}

impl UtcDays {
    /// The first day of the window as of `now`.
    pub fn first_day(&self, now: DateTime<Utc>) -> NaiveDate {
        now.date_naive()
            .checked_sub_days(Days::new(self.days.saturating_sub(1) as u64))
            .unwrap_or(NaiveDate::MIN)
    }

    /// Whether `day` is in the window as of `now` (future days are not, yet).
    pub fn contains(&self, day: NaiveDate, now: DateTime<Utc>) -> bool {
        day >= self.first_day(now) && day <= now.date_naive()
    }

    /// Whether a count on `day` can be in the window now or later: false once it has left it.
    pub fn can_count(&self, day: NaiveDate, now: DateTime<Utc>) -> bool {
        day >= self.first_day(now)
    }

    /// When state whose newest day is `newest` stops mattering (DynamoDB TTL): the moment that
    /// day leaves the window.
    pub fn expires_at(&self, newest: NaiveDate) -> Option<DateTime<Utc>> {
        newest
            .checked_add_days(Days::new(self.days as u64))
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .map(|t| t.and_utc())
    }
}

/// Tumbling event-time windows of `seconds`, aligned to the epoch (60: UTC minutes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tumbling {
    pub seconds: i64,
}

impl Tumbling {
    pub fn new(seconds: i64) -> Self {
        Tumbling {
            seconds: seconds.max(1),
        }
    }

    /// The start of the window `t` falls in.
    pub fn start_of(&self, t: DateTime<Utc>) -> DateTime<Utc> {
        let secs = t.timestamp();
        let start = secs.saturating_sub(secs.rem_euclid(self.seconds));
        Utc.timestamp_opt(start, 0).single().unwrap_or(t)
    }

    pub fn end_of(&self, start: DateTime<Utc>) -> DateTime<Utc> {
        plus(start, Duration::seconds(self.seconds))
    }

    /// When a window's state may go (DynamoDB TTL): `state_seconds` after the later of the
    /// window's end and `now` (its latest write), so late and replayed events still count while
    /// it lives.
    pub fn expires_at(
        &self, start: DateTime<Utc>, now: DateTime<Utc>, state_seconds: i64,
    ) -> DateTime<Utc> {
        plus(
            self.end_of(start).max(now),
            Duration::try_seconds(state_seconds).unwrap_or(Duration::MAX),
        )
    }
}

/// `2021-11-30T00:00:00.000Z`: a window's start as the seeds print it, in UTC.
pub fn window_label(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// One-minute buckets, and the span of the last `minutes` of them ending with the newest minute
/// seen (a live window of "the last five minutes" or "the last hour" by event time).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MinuteBuckets {
    pub minutes: u32,
}

impl MinuteBuckets {
    const MINUTE: Tumbling = Tumbling { seconds: 60 };

    /// The minute `t` falls in.
    pub fn bucket_of(t: DateTime<Utc>) -> DateTime<Utc> {
        Self::MINUTE.start_of(t)
    }

    /// The first and last minute of the span that ends with the minute `newest` falls in.
    pub fn span_ending(&self, newest: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>) {
        let last = Self::bucket_of(newest);
        let first = plus(
            last,
            -Duration::minutes(i64::from(self.minutes.saturating_sub(1))),
        );
        (first, last)
    }

    /// Whether the minute `bucket` is in the span ending with `newest`.
    pub fn contains(&self, newest: DateTime<Utc>, bucket: DateTime<Utc>) -> bool {
        let (first, last) = self.span_ending(newest);
        (first..=last).contains(&Self::bucket_of(bucket))
    }

    /// When a bucket's state may go (DynamoDB TTL): once no span can hold it any more, that is
    /// the span's length after the later of its own minute and `now`, plus `grace_seconds` for
    /// late events.
    pub fn expires_at(
        &self, bucket: DateTime<Utc>, now: DateTime<Utc>, grace_seconds: i64,
    ) -> DateTime<Utc> {
        plus(
            plus(
                Self::bucket_of(bucket).max(now),
                Duration::minutes(i64::from(self.minutes)),
            ),
            Duration::try_seconds(grace_seconds).unwrap_or(Duration::MAX),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(h: u32, m: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 22, h, m, s).unwrap()
    }

    fn day(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, d).unwrap()
    }

    #[test]
    fn seven_utc_days_include_today_and_six_before() {
        let w = UtcDays { days: 7 };
        let now = at(12, 0, 0);
        assert_eq!(w.first_day(now), day(16));
        assert!(w.contains(day(16), now) && w.contains(day(22), now));
        assert!(!w.contains(day(15), now) && !w.contains(day(23), now));
        assert!(w.can_count(day(23), now), "a future day will count");
        assert!(
            !w.can_count(day(15), now),
            "a day that left never counts again"
        );
        assert_eq!(UtcDays { days: 1 }.first_day(now), day(22));
        assert_eq!(
            w.expires_at(day(22)),
            Some(Utc.with_ymd_and_hms(2026, 11, 29, 0, 0, 0).unwrap())
        );
    }

    #[test]
    fn tumbling_windows_align_to_the_epoch_and_live_past_their_end() {
        let w = Tumbling::new(60);
        assert_eq!(w.start_of(at(10, 0, 59)), at(10, 0, 0));
        assert_eq!(w.start_of(at(10, 1, 0)), at(10, 1, 0));
        assert_eq!(window_label(at(10, 1, 0)), "2026-11-22T10:01:00.000Z");
        let start = at(10, 0, 0);
        assert_eq!(w.expires_at(start, at(9, 0, 0), 3600), at(11, 1, 0));
        assert_eq!(w.expires_at(start, at(12, 0, 0), 3600), at(13, 0, 0));
        let far = DateTime::<Utc>::MAX_UTC;
        assert_eq!(w.expires_at(far, far, i64::MAX), far, "held at the limit");
        assert_eq!(
            MinuteBuckets { minutes: 60 }.expires_at(far, far, 86_400),
            far
        );
        let early = DateTime::<Utc>::MIN_UTC;
        assert!(MinuteBuckets { minutes: 5 }.span_ending(early).0 <= early);
        let before_epoch = Utc.timestamp_opt(-30, 0).unwrap();
        assert_eq!(Tumbling::new(60).start_of(before_epoch).timestamp(), -60);
    }

    #[test]
    fn minute_spans_end_with_the_newest_minute() {
        let five = MinuteBuckets { minutes: 5 };
        assert_eq!(
            five.span_ending(at(10, 7, 30)),
            (at(10, 3, 0), at(10, 7, 0))
        );
        assert!(five.contains(at(10, 7, 30), at(10, 3, 59)));
        assert!(!five.contains(at(10, 7, 30), at(10, 2, 59)));
        assert!(!five.contains(at(10, 7, 30), at(10, 8, 0)));
        assert_eq!(
            five.expires_at(at(10, 7, 30), at(9, 0, 0), 60),
            at(10, 13, 0)
        );
        assert_eq!(
            five.expires_at(at(10, 7, 30), at(11, 0, 0), 0),
            at(11, 5, 0)
        );
    }
}
