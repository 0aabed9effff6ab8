//! Campaigns, a process manager: one `campaign.started` becomes one order per household of
//! its scope (the free melon for every household of Tianlun).
//!
//! It keeps its own copy of what it needs from the registry (households by community, the
//! catalogue) and which partners have stock, and decides each order with the same
//! `command::place_order` the API uses, so a campaign order obeys every order rule (each
//! household's priority floor included). Each order's id is derived from the campaign
//! event and the household: re-processing after a crash publishes the same ids, which
//! JetStream drops as duplicates, so a campaign over 3,314 households yields 3,314 orders
//! however often it is interrupted. A campaign whose lines break a rule (the rules are the
//! same for every household: lines, items, partner) parks, with nothing published.
//!
//! A campaign is placed a slice of households at a time (the start's `slice`, set by the
//! replica that accepted it; else [`Campaigns::with_slice`]'s): each slice ends with a
//! `campaign.continued` on the campaign's subject, and reading it back places the next.
//! So no batch holds a whole community's orders (132,560 at the 40x bench), the cost of a
//! slice does not grow with the community, and a crash resumes from the last slice. The
//! households a campaign reaches are those registered when it started: each household
//! keeps the ordinal of its first registration, and the campaign records the count at its
//! start.

use lifeline_events::{
    Actor, CampaignContinued, CampaignScope, CampaignStarted, Envelope, Event, HouseholdRegistered,
    deterministic_event_id,
};
use serde::{Deserialize, Serialize};

use crate::command::{self, ReadError, ReadState, Views};
use crate::{Applied, Handler, Reason, Rejection, StateTx, StateTxExt, inventory, registry};

pub const NAME: &str = "campaigns";
/// `<community>/<household>` -> the household's registration ordinal (8 bytes, big
/// endian; empty for households registered before ordinals were kept): the households of
/// each community, in order.
pub const BY_COMMUNITY: &str = "by_community";
pub const CAMPAIGNS: &str = "campaigns";
/// The row of [`BY_COMMUNITY`] holding how many households have registered (no `/`, so no
/// community's prefix reaches it).
const REGISTERED: &str = "#registered";
/// Households gone through per slice.
pub const DEFAULT_SLICE: usize = 1_000;

/// A campaign as this process manager recorded it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CampaignRecord {
    pub community: String,
    pub name: String,
    /// Orders placed so far.
    pub orders: u32,
    /// The rest of a broadcast still to place; `None` once every household is done (and
    /// always for a group buy).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fan_out: Option<FanOut>,
}

/// Where a broadcast's placing stands between two slices.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FanOut {
    pub started: CampaignStarted,
    /// The `campaign.started` event's time in Unix milliseconds: every order id of the
    /// campaign derives from it.
    pub unix_millis: u64,
    /// The staff member who started it (each order's `on_behalf_by`).
    pub started_by: String,
    /// Households with a registration ordinal below this are in the campaign.
    pub registered_before: u64,
    /// The last household gone through; the next slice starts after it.
    pub after: Option<String>,
    /// Households per slice, as configured when the campaign started: a later change of
    /// the setting does not move a campaign already under way.
    pub slice: usize,
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
    campaign_order_id(cause.unix_millis(), campaign, household)
}

fn campaign_order_id(unix_millis: u64, campaign: &str, household: &str) -> String {
    deterministic_event_id(unix_millis, NAME, &[campaign, household]).to_string()
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
        Ok(!self.0.scan_prefix_from(table, prefix, prefix, 1).is_empty())
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

/// The campaigns process manager; `slice` households are gone through per event for a
/// campaign whose start does not say (each campaign records its own).
#[derive(Debug)]
pub struct Campaigns {
    slice: usize,
}

impl Default for Campaigns {
    fn default() -> Self {
        Self::with_slice(DEFAULT_SLICE)
    }
}

impl Campaigns {
    /// Goes through `slice` households (at least one) per event.
    pub fn with_slice(slice: usize) -> Self {
        Self {
            slice: slice.max(1),
        }
    }

    fn start(
        &self,
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
        let mut record = CampaignRecord {
            community: started.community.clone(),
            name: started.name.clone(),
            orders: 0,
            fan_out: None,
        };
        if started.signup_until.is_some() {
            // A group buy: households sign up themselves; nothing to fan out.
            state.put_json(CAMPAIGNS, &started.campaign, &record);
            return Ok(Applied::Changed);
        }
        let views = Views {
            registry: &Own(state),
            inventory: &Own(state),
            delivery: &Own(state),
        };
        // The rules that do not depend on the household, checked once, so a campaign
        // that breaks them parks whole even when no household is in scope yet.
        command::check_line_shapes(&started.lines)
            .and_then(|()| command::weigh_lines(&views, &started.lines).map(|_| ()))
            .and_then(|()| match views.partner_known(&started.partner)? {
                true => Ok(()),
                false => Err(command::CommandError::UnknownPartner {
                    partner: started.partner.clone(),
                }),
            })
            .map_err(|error| Rejection::new(Reason::InvalidCampaign, error.to_string()))?;
        record.fan_out = Some(FanOut {
            started: started.clone(),
            unix_millis: envelope.unix_millis(),
            started_by: envelope.actor.id.clone(),
            // Every household so far, and every row from before ordinals (0).
            registered_before: registered(state)? + 1,
            // The start's own, so a replay or another replica configured otherwise
            // steps through the same households and meets the same continuations.
            slice: started
                .slice
                .map_or(self.slice, |slice| {
                    usize::try_from(slice).unwrap_or(usize::MAX)
                })
                .max(1),
            after: None,
        });
        self.place_slice(state, envelope, &started.campaign, record, emit)
    }

    fn resume(
        &self,
        state: &mut dyn StateTx,
        envelope: &Envelope,
        continued: &CampaignContinued,
        emit: &mut Vec<Envelope>,
    ) -> Result<Applied, Rejection> {
        let Some(record) = state.get_json::<CampaignRecord>(CAMPAIGNS, &continued.campaign)? else {
            return Ok(Applied::Ignored);
        };
        // Only the campaign's next step moves it; an older or a foreign continuation
        // changes nothing.
        let next = record
            .fan_out
            .as_ref()
            .is_some_and(|fan_out| fan_out.after.as_deref() == Some(continued.after.as_str()));
        if !next {
            return Ok(Applied::Ignored);
        }
        self.place_slice(state, envelope, &continued.campaign, record, emit)
    }

    /// Places the orders of the next `slice` households and records where it stopped;
    /// emits a `campaign.continued` when households may remain.
    fn place_slice(
        &self,
        state: &mut dyn StateTx,
        cause: &Envelope,
        campaign: &str,
        mut record: CampaignRecord,
        emit: &mut Vec<Envelope>,
    ) -> Result<Applied, Rejection> {
        let Some(mut fan_out) = record.fan_out.take() else {
            return Ok(Applied::Ignored);
        };
        let prefix = format!("{}/", fan_out.started.community);
        // The key just past the last household gone through.
        let from = match &fan_out.after {
            Some(after) => format!("{prefix}{after}\0"),
            None => prefix.clone(),
        };
        let slice = fan_out.slice.max(1);
        let window = state.scan_prefix_from(BY_COMMUNITY, &prefix, &from, slice);
        let more = window.len() == slice;
        let mut placed = Vec::new();
        {
            let own = Own(state);
            let views = Views {
                registry: &own,
                inventory: &own,
                delivery: &own,
            };
            for (key, ordinal) in &window {
                if ordinal_of(ordinal) >= fan_out.registered_before {
                    continue;
                }
                let id = &key[prefix.len()..];
                let household = views
                    .household(id)
                    .map_err(|error| Rejection::new(Reason::CorruptState, error.to_string()))?;
                let Some(household) = household.filter(|h| in_scope(&fan_out.started.scope, h))
                else {
                    continue;
                };
                let order = command::place_order(
                    &views,
                    command::PlaceOrder {
                        order: campaign_order_id(fan_out.unix_millis, campaign, id),
                        household: household.household.clone(),
                        partner: fan_out.started.partner.clone(),
                        lines: fan_out.started.lines.clone(),
                        priority: fan_out.started.priority,
                        on_behalf_by: Some(fan_out.started_by.clone()),
                    },
                )
                .map_err(|error| {
                    Rejection::new(
                        Reason::InvalidCampaign,
                        format!("household {}: {error}", household.household),
                    )
                })?;
                placed.push(order);
            }
        }
        let meta = || cause.follow_up("lifeline-campaigns", Actor::system(NAME), cause.time);
        for mut order in placed {
            order.campaign = Some(campaign.to_owned());
            let id = order.order.parse().map_err(|_| {
                Rejection::new(Reason::CorruptState, format!("order id {}", order.order))
            })?;
            emit.push(Envelope::with_id(id, Event::OrderPlaced(order), meta()));
            record.orders = record.orders.saturating_add(1);
        }
        if let (true, Some((last, _))) = (more, window.last()) {
            let after = last[prefix.len()..].to_owned();
            let id =
                deterministic_event_id(fan_out.unix_millis, NAME, &[campaign, "continued", &after]);
            let continued = CampaignContinued {
                campaign: campaign.to_owned(),
                community: fan_out.started.community.clone(),
                after: after.clone(),
                placed: record.orders,
            };
            emit.push(Envelope::with_id(
                id,
                Event::CampaignContinued(continued),
                meta(),
            ));
            fan_out.after = Some(after);
            record.fan_out = Some(fan_out);
        }
        state.put_json(CAMPAIGNS, campaign, &record);
        Ok(Applied::Changed)
    }
}

/// How many households have registered since ordinals were kept (the last ordinal given).
fn registered(state: &dyn StateTx) -> Result<u64, Rejection> {
    match state.get(BY_COMMUNITY, REGISTERED) {
        None => Ok(0),
        Some(bytes) => <[u8; 8]>::try_from(bytes.as_slice())
            .map(u64::from_be_bytes)
            .map_err(|_| {
                Rejection::new(Reason::CorruptState, format!("{BY_COMMUNITY}/{REGISTERED}"))
            }),
    }
}

/// A household row's ordinal (from 1); a row from before ordinals were kept is 0, before
/// any campaign started since.
fn ordinal_of(value: &[u8]) -> u64 {
    <[u8; 8]>::try_from(value).map_or(0, u64::from_be_bytes)
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
                let key = format!("{}/{}", household.community, household.household);
                // A household registered again keeps its first ordinal. Ordinals start at
                // 1: 0 is a row from before ordinals were kept.
                if state.get(BY_COMMUNITY, &key).is_none() {
                    let ordinal = registered(state)? + 1;
                    state.put(BY_COMMUNITY, &key, ordinal.to_be_bytes().to_vec());
                    state.put(BY_COMMUNITY, REGISTERED, ordinal.to_be_bytes().to_vec());
                }
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
            Event::CampaignStarted(started) => self.start(state, envelope, started, emit),
            Event::CampaignContinued(continued) => self.resume(state, envelope, continued, emit),
            _ => Ok(Applied::Ignored),
        }
    }
}

#[cfg(test)]
mod tests;
