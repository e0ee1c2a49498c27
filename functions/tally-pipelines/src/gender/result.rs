//! Gender results: what the models publish to `GenderResultsStream`, the results table stores and
//! the API answers from.

use std::future::Future;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tally_engine::{PortError, StoredState};

use super::model::{counts_in_window, Bucket, Counting, GenderModel};
use super::model::{GenderCounts, ModelState};
use super::visit::{Cid, Gender};

/// One model's decision for one cid.
///
/// `state` carries what the decision was made from, so that a reader can make it again as of a
/// later moment (MODEL3's window moves with time even when no visit comes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GenderResult {
    #[serde(rename = "_id")]
    pub id: String,
    pub model: String,
    pub cid: Cid,
    pub gndr: Option<Gender>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub male: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub female: Option<u64>,
    /// The state's revision: a newer result always has a higher one.
    pub rev: u64,
    pub as_of: DateTime<Utc>,
    /// When the result stops mattering (windowed models): the results table's TTL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
    pub state: ModelState,
}

/// `C124_MODEL2`, the seed's `_id`.
pub fn result_id(cid: &Cid, model: &str) -> String {
    format!("{cid}_{model}")
}

impl GenderResult {
    pub fn from_state(
        model: &dyn GenderModel, cid: &Cid, stored: &StoredState, now: DateTime<Utc>,
    ) -> Self {
        let state = model.state_spec().view(&ModelState::from_stored(stored));
        Self::build(model, cid, stored.rev, state, now)
    }

    fn build(
        model: &dyn GenderModel, cid: &Cid, rev: u64, state: ModelState, now: DateTime<Utc>,
    ) -> Self {
        let shown = displayed_counts(model, &state, now);
        let latest_day = state.counts.keys().filter_map(|b| match b {
            Bucket::Day(d) => Some(*d),
            Bucket::AllTime => None,
        });
        let expires_at = latest_day
            .max()
            .and_then(|d| model.state_spec().expires_at(d));
        GenderResult {
            id: result_id(cid, model.name()),
            model: model.name().to_string(),
            cid: cid.clone(),
            gndr: model.identify(&state, now),
            male: shown.map(|c| c.male),
            female: shown.map(|c| c.female),
            rev,
            as_of: now,
            expires_at,
            state,
        }
    }

    /// The same decision made again as of `now` (the API does this at every lookup).
    pub fn as_of(&self, model: &dyn GenderModel, now: DateTime<Utc>) -> Self {
        Self::build(model, &self.cid, self.rev, self.state.clone(), now)
    }
}

fn displayed_counts(
    model: &dyn GenderModel, state: &ModelState, now: DateTime<Utc>,
) -> Option<GenderCounts> {
    match model.state_spec().counting {
        Counting::None => None,
        Counting::AllTime => Some(
            state
                .counts
                .get(&Bucket::AllTime)
                .copied()
                .unwrap_or_default(),
        ),
        Counting::UtcDays { days } => Some(counts_in_window(state, now, days)),
    }
}

/// Upserting results into the results table, one item per cid holding each model's newest
/// result (the results writer's port).
pub trait ResultsUpsert: Send + Sync {
    /// Stores `results` (one cid's, at most one per model) in one write, each only where the
    /// table holds an older revision of that model's result. Returns how many were stored.
    fn upsert_newer(
        &self, cid: &Cid, results: &[GenderResult],
    ) -> impl Future<Output = Result<usize, PortError>> + Send;
}

/// Looking a cid's result of one model up (the API's port).
pub trait ResultLookup: Send + Sync {
    fn get(
        &self, cid: &Cid, model: &str,
    ) -> impl Future<Output = Result<Option<GenderResult>, PortError>> + Send;
}
