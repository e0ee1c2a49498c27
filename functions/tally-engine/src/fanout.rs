//! One batch through several handlers that share an event source mapping but not their state: a
//! model added after the others, on its own items, beside the models that share one item per
//! key. Each handler applies the batch exactly once on its own; the batch is retried from the
//! earliest record any of them must retry, which the others then find applied.

use std::future::Future;
use std::ops::Deref;

use chrono::{DateTime, Utc};

use crate::engine::BatchHandler;
use crate::record::StreamRecord;
use crate::report::BatchReport;

/// The first handler names the function and reports the records' decoding (every handler
/// decodes the same records); the others add their writes and outputs.
pub struct Fanout<H> {
    pub first: H,
    pub rest: Vec<H>,
}

impl<H> Fanout<H> {
    pub fn of(first: H) -> Self {
        Fanout {
            first,
            rest: Vec::new(),
        }
    }

    /// The same handlers, each changed (tests wrap ports to inject faults).
    pub fn map<H2>(self, mut change: impl FnMut(H) -> H2) -> Fanout<H2> {
        Fanout {
            first: change(self.first),
            rest: self.rest.into_iter().map(change).collect(),
        }
    }

    pub fn handlers(&self) -> impl Iterator<Item = &H> {
        std::iter::once(&self.first).chain(&self.rest)
    }
}

impl<H> Deref for Fanout<H> {
    type Target = H;

    fn deref(&self) -> &H {
        &self.first
    }
}

impl<H: BatchHandler> BatchHandler for Fanout<H> {
    fn name(&self) -> &str {
        self.first.name()
    }

    #[allow(clippy::manual_async_fn)] // the trait's future must be `Send`
    fn handle(
        &self, records: &[StreamRecord], now: DateTime<Utc>,
    ) -> impl Future<Output = BatchReport> + Send {
        async move {
            // One after the other: each handler's writes already run concurrently per key.
            let mut report = self.first.handle(records, now).await;
            for handler in &self.rest {
                let other = handler.handle(records, now).await;
                report.add_work_of(other, handler.name());
            }
            report
        }
    }
}
