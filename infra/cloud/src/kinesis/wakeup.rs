//! Idle shard readers wait for a write to their stream instead of polling: the edge sees every
//! `PutRecord(s)` and wakes the readers of that stream only, so a record is read as soon as it
//! is acknowledged, and an idle local cloud makes about one `GetRecords` per shard a second
//! (Lambda's base polling rate) instead of ten.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;

/// How long an idle reader waits when no write comes: Lambda polls an idle shard once a second.
pub const IDLE_READ_INTERVAL: Duration = Duration::from_secs(1);

/// Kinesis writes acknowledged at the edge, per stream (a count: readers only need to know it
/// moved).
#[derive(Debug, Clone, Default)]
pub struct KinesisWrites(Arc<Mutex<HashMap<String, watch::Sender<u64>>>>);

impl KinesisWrites {
    fn sender(&self, stream: &str) -> watch::Sender<u64> {
        self.0
            .lock()
            .unwrap()
            .entry(stream.to_string())
            .or_insert_with(|| watch::channel(0).0)
            .clone()
    }

    /// A write to `stream` was acknowledged. (On every put: a stream no reader watches has no
    /// sender to wake, and none is made for it.)
    pub fn written(&self, stream: &str) {
        if let Some(s) = self.0.lock().unwrap().get(stream) {
            s.send_modify(|n| *n = n.wrapping_add(1));
        }
    }

    /// Wakes every idle reader (a flush wants every shard read to its end now).
    pub fn wake_all(&self) {
        for s in self.0.lock().unwrap().values() {
            s.send_modify(|n| *n = n.wrapping_add(1));
        }
    }

    pub fn watch(&self, stream: &str) -> WriteWatch {
        WriteWatch(self.sender(stream).subscribe())
    }
}

/// The stream a `PutRecord(s)` request body names (`StreamName`, or the name in `StreamARN`).
pub fn stream_of_put(body: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Target {
        #[serde(rename = "StreamName")]
        name: Option<String>,
        #[serde(rename = "StreamARN")]
        arn: Option<String>,
    }
    let t: Target = serde_json::from_slice(body).ok()?;
    t.name.or_else(|| {
        t.arn
            .as_deref()
            .and_then(|a| a.rsplit_once(":stream/"))
            .map(|(_, name)| name.to_string())
    })
}

/// One reader's view of its stream's writes.
#[derive(Debug, Clone)]
pub struct WriteWatch(watch::Receiver<u64>);

impl WriteWatch {
    /// Call before a read: a write after this wakes the next [`WriteWatch::idle`].
    pub fn before_read(&mut self) {
        self.0.borrow_and_update();
    }

    /// After a read found nothing: until a write since [`WriteWatch::before_read`], the
    /// cloud's shutdown, or [`IDLE_READ_INTERVAL`].
    pub async fn idle(&mut self, shutdown: &mut watch::Receiver<bool>) {
        // A dropped sender disables its branch (`Ok` does not match) rather than spinning.
        tokio::select! {
            Ok(()) = self.0.changed() => {}
            Ok(()) = shutdown.changed() => {}
            _ = tokio::time::sleep(IDLE_READ_INTERVAL) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[tokio::test]
    async fn a_write_wakes_its_streams_idle_readers_and_none_is_missed() {
        let writes = KinesisWrites::default();
        let (_stop, mut shutdown) = watch::channel(false);
        let mut w = writes.watch("a");
        w.before_read();
        // A write between the read and the wait is not lost: the wait returns at once.
        writes.written("a");
        let t = Instant::now();
        w.idle(&mut shutdown).await;
        assert!(
            t.elapsed() < Duration::from_millis(200),
            "{:?}",
            t.elapsed()
        );

        // Another stream's write does not wake it; its own does.
        w.before_read();
        let waker = writes.clone();
        tokio::spawn(async move {
            waker.written("b");
            tokio::time::sleep(Duration::from_millis(300)).await;
            waker.written("a");
        });
        let t = Instant::now();
        w.idle(&mut shutdown).await;
        let waited = t.elapsed();
        assert!(
            waited >= Duration::from_millis(250) && waited < Duration::from_millis(900),
            "{waited:?}"
        );
    }

    #[test]
    fn the_stream_comes_from_the_name_or_the_arn() {
        let by_name = br#"{"Records":[{"Data":"eA==","PartitionKey":"k"}],"StreamName":"tally-VisitsStream"}"#;
        assert_eq!(
            stream_of_put(by_name).as_deref(),
            Some("tally-VisitsStream")
        );
        let by_arn =
            br#"{"StreamARN":"arn:aws:kinesis:us-east-1:000000000000:stream/s1","Data":"eA=="}"#;
        assert_eq!(stream_of_put(by_arn).as_deref(), Some("s1"));
        assert_eq!(stream_of_put(b"not json"), None);
    }
}
