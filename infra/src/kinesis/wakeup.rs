//! Idle shard readers wait for a write instead of polling: the edge sees every `PutRecord(s)`
//! and wakes them, so a record is read as soon as it is acknowledged, and an idle local cloud
//! makes about one `GetRecords` per shard a second (Lambda's base polling rate) instead of ten.

use std::time::Duration;

use tokio::sync::watch;

/// How long an idle reader waits when no write comes: Lambda polls an idle shard once a second.
pub const IDLE_READ_INTERVAL: Duration = Duration::from_secs(1);

/// Kinesis writes acknowledged at the edge (a count: readers only need to know it moved).
#[derive(Debug, Clone)]
pub struct KinesisWrites(watch::Sender<u64>);

impl Default for KinesisWrites {
    fn default() -> Self {
        KinesisWrites(watch::channel(0).0)
    }
}

impl KinesisWrites {
    /// A write was acknowledged; also a way to wake every idle reader (a flush).
    pub fn written(&self) {
        self.0.send_modify(|n| *n = n.wrapping_add(1));
    }

    pub fn watch(&self) -> WriteWatch {
        WriteWatch(self.0.subscribe())
    }
}

/// One reader's view of [`KinesisWrites`].
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
    async fn a_write_wakes_an_idle_reader_and_none_is_missed() {
        let writes = KinesisWrites::default();
        let (_stop, mut shutdown) = watch::channel(false);
        let mut w = writes.watch();
        w.before_read();
        // A write between the read and the wait is not lost: the wait returns at once.
        writes.written();
        let t = Instant::now();
        w.idle(&mut shutdown).await;
        assert!(
            t.elapsed() < Duration::from_millis(200),
            "{:?}",
            t.elapsed()
        );

        w.before_read();
        let waker = writes.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            waker.written();
        });
        let t = Instant::now();
        w.idle(&mut shutdown).await;
        assert!(
            t.elapsed() < Duration::from_millis(500),
            "{:?}",
            t.elapsed()
        );
    }
}
