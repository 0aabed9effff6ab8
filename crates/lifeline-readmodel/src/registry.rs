//! The registry consumer: communities, buildings, households (with vulnerabilities), the
//! catalogue, tricycles, volunteers and seals. Rules in `lifeline_domain::registry`; the
//! gateway reads this projection to validate commands.

use lifeline_domain::registry::{
    BUILDINGS, COMMUNITIES, CONTACTS, HOUSEHOLDS, ITEMS, SEALS, TRICYCLES, UNITS, VEHICLES,
    VOLUNTEERS, parse_seal_key, seal_key,
};
use lifeline_events::{
    BuildingRegistered, CommunityRegistered, ContactChanged, HouseholdRegistered, ItemRegistered,
    SealScope, TricycleRegistered, UnitRegistered, VehicleRegistered, VolunteerRegistered,
};
use lifeline_store::{ProjectionStore, StoreError, decode_row};

pub use lifeline_domain::registry::NAME;

pub fn household(
    store: &ProjectionStore,
    household: &str,
) -> Result<Option<HouseholdRegistered>, StoreError> {
    store.get_json(HOUSEHOLDS, household)
}

pub fn community(
    store: &ProjectionStore,
    community: &str,
) -> Result<Option<CommunityRegistered>, StoreError> {
    store.get_json(COMMUNITIES, community)
}

pub fn building(
    store: &ProjectionStore,
    building: &str,
) -> Result<Option<BuildingRegistered>, StoreError> {
    store.get_json(BUILDINGS, building)
}

pub fn unit(store: &ProjectionStore, unit: &str) -> Result<Option<UnitRegistered>, StoreError> {
    store.get_json(UNITS, unit)
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

/// A community's buildings (by id) with their units, as registered.
pub fn buildings_of(
    store: &ProjectionStore,
    community: &str,
) -> Result<Vec<(BuildingRegistered, Vec<UnitRegistered>)>, StoreError> {
    let mut buildings: Vec<(BuildingRegistered, Vec<UnitRegistered>)> = Vec::new();
    for (key, bytes) in store.scan_prefix(BUILDINGS, "")? {
        let building: BuildingRegistered = decode_row(BUILDINGS, &key, &bytes)?;
        if building.community == community {
            buildings.push((building, Vec::new()));
        }
    }
    for (key, bytes) in store.scan_prefix(UNITS, "")? {
        let unit: UnitRegistered = decode_row(UNITS, &key, &bytes)?;
        if let Some((_, units)) = buildings
            .iter_mut()
            .find(|(building, _)| building.building == unit.building)
        {
            units.push(unit);
        }
    }
    Ok(buildings)
}

/// A household's contact phone. Personal data: the caller checks who may see it.
pub fn contact(store: &ProjectionStore, household: &str) -> Result<Option<String>, StoreError> {
    let row: Option<ContactChanged> = store.get_json(CONTACTS, household)?;
    Ok(row.and_then(|row| row.phone))
}

/// A community's registered vehicles.
pub fn vehicles_of(
    store: &ProjectionStore,
    community: &str,
) -> Result<Vec<VehicleRegistered>, StoreError> {
    let mut vehicles = Vec::new();
    for (key, bytes) in store.scan_prefix(VEHICLES, "")? {
        let vehicle: VehicleRegistered = decode_row(VEHICLES, &key, &bytes)?;
        if vehicle.community == community {
            vehicles.push(vehicle);
        }
    }
    Ok(vehicles)
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

/// The scopes of a community sealed now: the community itself, buildings, units.
pub fn sealed_scopes(
    store: &ProjectionStore,
    community: &str,
) -> Result<Vec<SealScope>, StoreError> {
    let mut sealed = Vec::new();
    let whole = seal_key(community, &SealScope::Community);
    if store.get_json::<bool>(SEALS, &whole)? == Some(true) {
        sealed.push(SealScope::Community);
    }
    for (key, bytes) in store.scan_prefix(SEALS, &format!("{whole}/"))? {
        let is_sealed: bool = decode_row(SEALS, &key, &bytes)?;
        if let Some(scope) = parse_seal_key(community, &key).filter(|_| is_sealed) {
            sealed.push(scope);
        }
    }
    Ok(sealed)
}

/// Each keeper's latest uploaded vulnerable-household list of a community.
pub fn ledgers_of(
    store: &ProjectionStore,
    community: &str,
) -> Result<
    std::collections::BTreeMap<lifeline_events::LedgerSource, Vec<lifeline_events::LedgerEntry>>,
    StoreError,
> {
    use lifeline_domain::registry::{LEDGERS, ledger_key};
    let mut ledgers = std::collections::BTreeMap::new();
    for source in lifeline_events::LedgerSource::ALL {
        if let Some(entries) = store.get_json(LEDGERS, &ledger_key(community, source))? {
            ledgers.insert(source, entries);
        }
    }
    Ok(ledgers)
}
