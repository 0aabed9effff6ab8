//! The coverage ledger: per household, when it last ordered, was last delivered to, and
//! was last tried at the door (a failed drop is an attempt). "Not served for N hours" is
//! read against the projection's clock (the latest event's time), so a replayed day
//! reads as it did live.

use lifeline_events::Envelope;
use serde::{Deserialize, Serialize};

use super::{COVERAGE, keys};
use crate::{Rejection, StateTx, StateTxExt};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HouseholdCoverage {
    pub household: String,
    pub community: String,
    pub building: String,
    pub vulnerable: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_order_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_delivery_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_attempt_ms: Option<u64>,
}

/// The ledger row of a household: `<community>/<household>`.
pub fn coverage_key(community: &str, household: &str) -> String {
    keys::index_key(community, household)
}

/// Changes a household's row (created on first sight) with `change`.
pub(super) fn touch(
    state: &mut dyn StateTx,
    community: &str,
    household: &str,
    change: impl FnOnce(&mut HouseholdCoverage),
) -> Result<(), Rejection> {
    let key = coverage_key(community, household);
    let mut row = state
        .get_json::<HouseholdCoverage>(COVERAGE, &key)?
        .unwrap_or_else(|| HouseholdCoverage {
            household: household.to_owned(),
            community: community.to_owned(),
            ..Default::default()
        });
    change(&mut row);
    state.put_json(COVERAGE, &key, &row);
    Ok(())
}

/// Unix ms of an event, for the ledger.
pub(super) fn at(envelope: &Envelope) -> u64 {
    envelope.unix_millis()
}

impl HouseholdCoverage {
    /// Not delivered to within `hours` before `now_ms` (or never).
    pub fn unserved_for(&self, now_ms: u64, hours: u64) -> bool {
        let since = now_ms.saturating_sub(hours.saturating_mul(3_600_000));
        self.last_delivery_ms.is_none_or(|at| at < since)
    }
}
