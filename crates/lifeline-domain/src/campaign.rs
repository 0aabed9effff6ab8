//! Campaigns, a process manager: one `campaign.started` becomes one order per household of
//! its scope (the free melon for every household of Tianlun).
//!
//! It keeps its own copy of what it needs from the registry (households by community, the
//! catalogue) and which partners have stock, and decides each order with the same
//! `command::place_order` the API uses, so a campaign order obeys every order rule (each
//! household's priority floor included). Each order's id is derived from the campaign
//! event and the household: re-processing after a crash publishes the same ids, which
//! JetStream drops as duplicates, so a campaign over 3,314 households yields 3,314 orders
//! however often it is interrupted. A household that cannot take the order (its lines
//! break a rule) parks the whole campaign, with nothing published.

use lifeline_events::{
    Actor, CampaignScope, CampaignStarted, Envelope, Event, HouseholdRegistered,
    deterministic_event_id,
};
use serde::{Deserialize, Serialize};

use crate::command::{self, ReadError, ReadState, Views};
use crate::{Applied, Handler, Reason, Rejection, StateTx, StateTxExt, inventory, registry};

pub const NAME: &str = "campaigns";
/// `<community>/<household>` -> empty: the households of each community, in order.
pub const BY_COMMUNITY: &str = "by_community";
pub const CAMPAIGNS: &str = "campaigns";

/// A campaign as this process manager recorded it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CampaignRecord {
    pub community: String,
    pub name: String,
    pub orders: u32,
}

/// Whether a household is in a campaign's scope.
pub fn in_scope(scope: &CampaignScope, household: &HouseholdRegistered) -> bool {
    let building = scope.buildings.is_empty() || scope.buildings.contains(&household.building);
    let vulnerable = scope.vulnerabilities.is_empty()
        || household
            .vulnerabilities
            .iter()
            .any(|v| scope.vulnerabilities.contains(v));
    building && vulnerable
}

/// The order id of `household`'s order in the campaign started by `cause`.
pub fn order_id(cause: &Envelope, campaign: &str, household: &str) -> String {
    deterministic_event_id(cause.unix_millis(), NAME, &[campaign, household]).to_string()
}

/// This handler's own tables, read the way the command side reads the projections (its
/// `households`, `items` and `stock` tables use the registry's and inventory's names and
/// keys).
struct Own<'a>(&'a dyn StateTx);

impl ReadState for Own<'_> {
    fn read(&self, table: &'static str, key: &str) -> Result<Option<Vec<u8>>, ReadError> {
        Ok(self.0.get(table, key))
    }

    fn any_with_prefix(&self, table: &'static str, prefix: &str) -> Result<bool, ReadError> {
        Ok(!self.0.scan_prefix(table, prefix).is_empty())
    }

    fn scan(
        &self,
        table: &'static str,
        prefix: &str,
        limit: usize,
    ) -> Result<Vec<(String, Vec<u8>)>, ReadError> {
        Ok(self.0.scan_prefix_from(table, prefix, prefix, limit))
    }
}

#[derive(Debug, Default)]
pub struct Campaigns;

fn start(
    state: &mut dyn StateTx,
    envelope: &Envelope,
    started: &CampaignStarted,
    emit: &mut Vec<Envelope>,
) -> Result<Applied, Rejection> {
    if state.get(CAMPAIGNS, &started.campaign).is_some() {
        return Err(Rejection::new(
            Reason::DuplicateCampaign,
            started.campaign.clone(),
        ));
    }
    if started.signup_until.is_some() {
        // A group buy: households sign up themselves; nothing to fan out.
        let record = CampaignRecord {
            community: started.community.clone(),
            name: started.name.clone(),
            orders: 0,
        };
        state.put_json(CAMPAIGNS, &started.campaign, &record);
        return Ok(Applied::Changed);
    }
    let prefix = format!("{}/", started.community);
    let households: Vec<String> = state
        .scan_prefix(BY_COMMUNITY, &prefix)
        .into_iter()
        .filter_map(|(key, _)| key.strip_prefix(&prefix).map(str::to_owned))
        .collect();
    let mut orders = Vec::new();
    {
        let own = Own(state);
        let views = Views {
            registry: &own,
            inventory: &own,
            delivery: &own,
        };
        for id in households {
            let household = views
                .household(&id)
                .map_err(|error| Rejection::new(Reason::CorruptState, error.to_string()))?;
            let Some(household) = household.filter(|h| in_scope(&started.scope, h)) else {
                continue;
            };
            let order = command::place_order(
                &views,
                command::PlaceOrder {
                    order: order_id(envelope, &started.campaign, &household.household),
                    household: household.household.clone(),
                    partner: started.partner.clone(),
                    lines: started.lines.clone(),
                    priority: started.priority,
                    on_behalf_by: Some(envelope.actor.id.clone()),
                },
            )
            .map_err(|error| {
                Rejection::new(
                    Reason::InvalidCampaign,
                    format!("household {}: {error}", household.household),
                )
            })?;
            orders.push(order);
        }
    }
    let record = CampaignRecord {
        community: started.community.clone(),
        name: started.name.clone(),
        orders: u32::try_from(orders.len()).unwrap_or(u32::MAX),
    };
    state.put_json(CAMPAIGNS, &started.campaign, &record);
    for mut placed in orders {
        placed.campaign = Some(started.campaign.clone());
        let id = placed.order.parse().map_err(|_| {
            Rejection::new(Reason::CorruptState, format!("order id {}", placed.order))
        })?;
        let meta = envelope.follow_up("lifeline-campaigns", Actor::system(NAME), envelope.time);
        emit.push(Envelope::with_id(id, Event::OrderPlaced(placed), meta));
    }
    Ok(Applied::Changed)
}

impl Handler for Campaigns {
    fn name(&self) -> &'static str {
        NAME
    }

    fn tables(&self) -> &'static [&'static str] {
        &[
            registry::HOUSEHOLDS,
            registry::ITEMS,
            registry::PARTNERS,
            inventory::STOCK,
            BY_COMMUNITY,
            CAMPAIGNS,
        ]
    }

    fn apply(
        &self,
        state: &mut dyn StateTx,
        envelope: &Envelope,
        emit: &mut Vec<Envelope>,
    ) -> Result<Applied, Rejection> {
        match &envelope.event {
            Event::HouseholdRegistered(household) => {
                state.put_json(registry::HOUSEHOLDS, &household.household, household);
                state.put(
                    BY_COMMUNITY,
                    &format!("{}/{}", household.community, household.household),
                    Vec::new(),
                );
                Ok(Applied::Changed)
            }
            Event::ItemRegistered(item) => {
                state.put_json(registry::ITEMS, &item.item, item);
                Ok(Applied::Changed)
            }
            Event::PartnerRegistered(partner) => {
                state.put_json(registry::PARTNERS, &partner.partner, partner);
                Ok(Applied::Changed)
            }
            // Only which partners exist matters here (the command's "unknown partner").
            Event::StockReceived(received) => {
                let key = inventory::stock_key(&received.partner, &received.item);
                if state.get(inventory::STOCK, &key).is_some() {
                    return Ok(Applied::Ignored);
                }
                state.put(inventory::STOCK, &key, b"{}".to_vec());
                Ok(Applied::Changed)
            }
            Event::CampaignStarted(started) => start(state, envelope, started, emit),
            _ => Ok(Applied::Ignored),
        }
    }
}

#[cfg(test)]
mod tests;
