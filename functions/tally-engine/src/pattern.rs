//! How a pipeline keeps its state, as the engine sees it. The engine has one batch loop per
//! pattern and one `BatchHandler`; docs/state-patterns.md says which pattern fits which pipeline.
//!
//! - [`Consumer`]: one state item per key (a cid, a rule's key, a dashboard panel), written once
//!   per shard's run of that key with the shard's watermark: registers, counters, windows.
//! - [`FirstSightings`]: one item per id a retry repeats (an RSVP version, an app event), then
//!   aggregates counted from first sightings only (`sightings.rs`).

use std::future::Future;
use std::ops::{Deref, DerefMut};

use chrono::{DateTime, Utc};

use crate::consumer::Consumer;
use crate::engine::Engine;
use crate::ports::{DeadLetterSink, RecordPublisher, StateStore};
use crate::record::StreamRecord;
use crate::report::BatchReport;

/// A way of applying a shard's batch to state through the engine's ports.
pub trait StatePattern: Send + Sync + Sized {
    /// Names the consumer in state keys, dead letters and metrics.
    fn name(&self) -> &str;

    /// The leading part of its state keys (its IAM `LeadingKeys`), which the engine's own items
    /// (completion marks) also take.
    fn state_owner(&self) -> &str {
        self.name()
    }

    /// Applies one batch; the report says what to retry.
    fn apply_batch<S: StateStore, P: RecordPublisher, D: DeadLetterSink>(
        engine: &Engine<Self, S, P, D>, records: &[StreamRecord], now: DateTime<Utc>,
    ) -> impl Future<Output = BatchReport> + Send;
}

impl<C: Consumer> StatePattern for C {
    fn name(&self) -> &str {
        Consumer::name(self)
    }

    fn apply_batch<S: StateStore, P: RecordPublisher, D: DeadLetterSink>(
        engine: &Engine<Self, S, P, D>, records: &[StreamRecord], now: DateTime<Utc>,
    ) -> impl Future<Output = BatchReport> + Send {
        // Boxed, as the first-sightings batch is: its steps' futures over the SDK's nest past the
        // compiler's type layout limit (128) in a function's `main`; one allocation per batch.
        Box::pin(engine.run_per_key(records, now))
    }
}

/// A [`Sightings`](crate::sightings::Sightings) pipeline as the engine's consumer.
#[derive(Debug, Clone)]
pub struct FirstSightings<X>(pub X);

impl<X> Deref for FirstSightings<X> {
    type Target = X;

    fn deref(&self) -> &X {
        &self.0
    }
}

impl<X> DerefMut for FirstSightings<X> {
    fn deref_mut(&mut self) -> &mut X {
        &mut self.0
    }
}
