//! The registry consumer: communities, buildings, households (with vulnerabilities), the
//! catalogue, tricycles, volunteers and seals. Rules in `lifeline_domain::registry`; the
//! gateway reads this projection to validate commands.

use lifeline_domain::registry::{HOUSEHOLDS, ITEMS, TRICYCLES, VOLUNTEERS};
use lifeline_events::{
    HouseholdRegistered, ItemRegistered, TricycleRegistered, VolunteerRegistered,
};
use lifeline_store::{ProjectionStore, StoreError, decode_row};

pub use lifeline_domain::registry::NAME;

pub fn household(
    store: &ProjectionStore,
    household: &str,
) -> Result<Option<HouseholdRegistered>, StoreError> {
    store.get_json(HOUSEHOLDS, household)
}

pub fn item(store: &ProjectionStore, item: &str) -> Result<Option<ItemRegistered>, StoreError> {
    store.get_json(ITEMS, item)
}

pub fn tricycle(
    store: &ProjectionStore,
    tricycle: &str,
) -> Result<Option<TricycleRegistered>, StoreError> {
    store.get_json(TRICYCLES, tricycle)
}

pub fn volunteer(
    store: &ProjectionStore,
    volunteer: &str,
) -> Result<Option<VolunteerRegistered>, StoreError> {
    store.get_json(VOLUNTEERS, volunteer)
}

/// Every household of a community (the operators' "not one missed" list reads this).
pub fn households_of(
    store: &ProjectionStore,
    community: &str,
) -> Result<Vec<HouseholdRegistered>, StoreError> {
    let mut households = Vec::new();
    for (key, bytes) in store.scan_prefix(HOUSEHOLDS, &format!("{community}-"))? {
        let household: HouseholdRegistered = decode_row(HOUSEHOLDS, &key, &bytes)?;
        if household.community == community {
            households.push(household);
        }
    }
    Ok(households)
}
