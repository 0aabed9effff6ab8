//! What commands read: the registry, inventory and delivery projections, through a small
//! read-only interface that RocksDB (in the gateway and the demo) and [`MemoryState`] (in
//! tests) both implement. The table layouts stay the projections' own: every lookup here
//! goes through the same keys the handlers write.

use lifeline_events::{
    BuildingRegistered, CommunityRegistered, HouseholdRegistered, ItemRegistered, UnitRegistered,
    VehicleRegistered, VolunteerRegistered,
};
use serde::de::DeserializeOwned;

use crate::MemoryState;
use crate::delivery::{self, OrderRecord, RunRecord};
use crate::inventory::{self, Reservation, StockLevel};
use crate::registry;

use super::CommandError;

/// A projection's tables could not be read (the disk, not the data): retry later.
#[derive(Debug, thiserror::Error)]
#[error("cannot read table {table}")]
pub struct ReadError {
    pub table: &'static str,
    #[source]
    pub source: Box<dyn std::error::Error + Send + Sync>,
}

/// Read-only access to one projection's tables.
pub trait ReadState {
    fn read(&self, table: &'static str, key: &str) -> Result<Option<Vec<u8>>, ReadError>;
    /// True when some key of `table` starts with `prefix`.
    fn any_with_prefix(&self, table: &'static str, prefix: &str) -> Result<bool, ReadError>;
    /// At most `limit` rows of `table` whose key starts with `prefix`, in key order.
    fn scan(
        &self,
        table: &'static str,
        prefix: &str,
        limit: usize,
    ) -> Result<Vec<(String, Vec<u8>)>, ReadError>;
}

impl ReadState for MemoryState {
    fn read(&self, table: &'static str, key: &str) -> Result<Option<Vec<u8>>, ReadError> {
        Ok(self.rows.get(&(table.to_owned(), key.to_owned())).cloned())
    }

    fn any_with_prefix(&self, table: &'static str, prefix: &str) -> Result<bool, ReadError> {
        Ok(self
            .rows
            .range((table.to_owned(), prefix.to_owned())..)
            .next()
            .is_some_and(|((t, key), _)| t == table && key.starts_with(prefix)))
    }

    fn scan(
        &self,
        table: &'static str,
        prefix: &str,
        limit: usize,
    ) -> Result<Vec<(String, Vec<u8>)>, ReadError> {
        let mut rows = crate::StateTx::scan_prefix(self, table, prefix);
        rows.truncate(limit);
        Ok(rows)
    }
}

/// The three projections a command may consult.
#[derive(Clone, Copy)]
pub struct Views<'a> {
    pub registry: &'a dyn ReadState,
    pub inventory: &'a dyn ReadState,
    pub delivery: &'a dyn ReadState,
}

impl std::fmt::Debug for Views<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Views").finish_non_exhaustive()
    }
}

fn json<T: DeserializeOwned>(
    state: &dyn ReadState,
    table: &'static str,
    key: &str,
) -> Result<Option<T>, CommandError> {
    match state.read(table, key)? {
        None => Ok(None),
        Some(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|error| {
            CommandError::Unreadable(ReadError {
                table,
                source: Box::new(error),
            })
        }),
    }
}

impl Views<'_> {
    pub fn household(&self, id: &str) -> Result<Option<HouseholdRegistered>, CommandError> {
        json(self.registry, registry::HOUSEHOLDS, id)
    }

    /// Whether a household in `unit` of `building` is behind a seal: its unit or its whole
    /// building sealed. (A community seal is the lockdown itself: supplies stop at the
    /// checkpoint, which is how every delivery already goes.)
    pub fn behind_seal(
        &self,
        community: &str,
        building: &str,
        unit: &str,
    ) -> Result<bool, CommandError> {
        use lifeline_events::SealScope;
        for scope in [
            SealScope::Building {
                building: building.to_owned(),
            },
            SealScope::Unit {
                building: building.to_owned(),
                unit: unit.to_owned(),
            },
        ] {
            let sealed: Option<bool> = json(
                self.registry,
                registry::SEALS,
                &registry::seal_key(community, &scope),
            )?;
            if sealed == Some(true) {
                return Ok(true);
            }
        }
        Ok(false)
    }

    pub fn building(&self, id: &str) -> Result<Option<BuildingRegistered>, CommandError> {
        json(self.registry, registry::BUILDINGS, id)
    }

    pub fn community(&self, id: &str) -> Result<Option<CommunityRegistered>, CommandError> {
        json(self.registry, registry::COMMUNITIES, id)
    }

    pub fn unit(&self, id: &str) -> Result<Option<UnitRegistered>, CommandError> {
        json(self.registry, registry::UNITS, id)
    }

    pub fn tricycle(
        &self,
        id: &str,
    ) -> Result<Option<lifeline_events::TricycleRegistered>, CommandError> {
        json(self.registry, registry::TRICYCLES, id)
    }

    /// A household's contact phone (personal data), as the registry keeps it.
    pub fn contact(&self, household: &str) -> Result<Option<String>, CommandError> {
        let row: Option<lifeline_events::ContactChanged> =
            json(self.registry, registry::CONTACTS, household)?;
        Ok(row.and_then(|row| row.phone))
    }

    pub fn vehicle(&self, id: &str) -> Result<Option<VehicleRegistered>, CommandError> {
        json(self.registry, registry::VEHICLES, id)
    }

    /// Whether any of the household's orders is neither delivered nor otherwise final.
    pub fn has_open_orders(&self, household: &str) -> Result<bool, CommandError> {
        let prefix = format!("{household}/");
        for (key, _) in self
            .delivery
            .scan(delivery::BY_HOUSEHOLD, &prefix, usize::MAX)?
        {
            if self
                .order(&key[prefix.len()..])?
                .is_some_and(|order| !order.is_final)
            {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// The orders picked from a partner's pick sheet, at most `limit`.
    pub fn batch_orders(
        &self,
        partner: &str,
        batch: &str,
        limit: usize,
    ) -> Result<Vec<String>, CommandError> {
        let prefix = delivery::sheets::batch_prefix(partner, batch);
        let rows = self
            .delivery
            .scan(delivery::sheets::BY_BATCH, &prefix, limit)?;
        Ok(rows
            .into_iter()
            .map(|(key, _)| key[prefix.len()..].to_owned())
            .collect())
    }

    pub fn item(&self, id: &str) -> Result<Option<ItemRegistered>, CommandError> {
        json(self.registry, registry::ITEMS, id)
    }

    /// A campaign as staff started it (the registry keeps them).
    pub fn campaign(
        &self,
        id: &str,
    ) -> Result<Option<lifeline_events::CampaignStarted>, CommandError> {
        json(self.registry, registry::CAMPAIGNS, id)
    }

    pub fn volunteer(&self, id: &str) -> Result<Option<VolunteerRegistered>, CommandError> {
        json(self.registry, registry::VOLUNTEERS, id)
    }

    /// A partner is known once operators registered it or it holds stock of anything.
    pub fn partner_known(&self, partner: &str) -> Result<bool, CommandError> {
        if self
            .inventory
            .any_with_prefix(inventory::STOCK, &inventory::stock_prefix(partner))?
        {
            return Ok(true);
        }
        Ok(self.registry.read(registry::PARTNERS, partner)?.is_some())
    }

    pub fn stock(&self, partner: &str, item: &str) -> Result<StockLevel, CommandError> {
        Ok(json(
            self.inventory,
            inventory::STOCK,
            &inventory::stock_key(partner, item),
        )?
        .unwrap_or_default())
    }

    pub fn reservation(&self, order: &str) -> Result<Option<Reservation>, CommandError> {
        json(self.inventory, inventory::RESERVATIONS, order)
    }

    pub fn order(&self, id: &str) -> Result<Option<OrderRecord>, CommandError> {
        json(self.delivery, delivery::ORDERS, id)
    }

    pub fn run(&self, id: &str) -> Result<Option<RunRecord>, CommandError> {
        json(self.delivery, delivery::RUNS, id)
    }
}
