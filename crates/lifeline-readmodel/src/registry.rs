//! The registry consumer: communities, buildings, households (with vulnerabilities), the
//! catalogue, tricycles, volunteers and seals. Rules in `lifeline_domain::registry`; the
//! gateway reads this projection to validate commands.

use lifeline_domain::registry::{HOUSEHOLDS, ITEMS, TRICYCLES, VOLUNTEERS};
use lifeline_events::{
    HouseholdRegistered, ItemRegistered, TricycleRegistered, VolunteerRegistered,
};
use lifeline_store::{ProjectionStore, StoreError};
use serde::de::DeserializeOwned;

pub use lifeline_domain::registry::NAME;

fn row<T: DeserializeOwned>(
    store: &ProjectionStore,
    table: &str,
    key: &str,
) -> Result<Option<T>, StoreError> {
    Ok(store
        .get(table, key)?
        .and_then(|bytes| match serde_json::from_slice(&bytes) {
            Ok(value) => Some(value),
            Err(error) => {
                tracing::error!(table, key, %error, "undecodable registry row");
                None
            }
        }))
}

pub fn household(
    store: &ProjectionStore,
    household: &str,
) -> Result<Option<HouseholdRegistered>, StoreError> {
    row(store, HOUSEHOLDS, household)
}

pub fn item(store: &ProjectionStore, item: &str) -> Result<Option<ItemRegistered>, StoreError> {
    row(store, ITEMS, item)
}

pub fn tricycle(
    store: &ProjectionStore,
    tricycle: &str,
) -> Result<Option<TricycleRegistered>, StoreError> {
    row(store, TRICYCLES, tricycle)
}

pub fn volunteer(
    store: &ProjectionStore,
    volunteer: &str,
) -> Result<Option<VolunteerRegistered>, StoreError> {
    row(store, VOLUNTEERS, volunteer)
}

/// Every household of a community (the operators' "not one missed" list reads this).
pub fn households_of(
    store: &ProjectionStore,
    community: &str,
) -> Result<Vec<HouseholdRegistered>, StoreError> {
    let mut households = Vec::new();
    for (_, bytes) in store.scan_prefix(HOUSEHOLDS, &format!("{community}-"))? {
        if let Ok(household) = serde_json::from_slice::<HouseholdRegistered>(&bytes)
            && household.community == community
        {
            households.push(household);
        }
    }
    Ok(households)
}
