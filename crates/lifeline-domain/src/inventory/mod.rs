//! Inventory rules: per partner and item, stock on hand, reserved and available.
//!
//! Orders reserve what is available; what they could not reserve waits in a shortfall
//! queue per partner and item ([`shortfall`]), which stock coming free fills in priority
//! order (urgent, then priority, then by placing time). Picks take goods off the shelf and
//! release the reservation; cancels release; restocks add.
//! `available = on_hand - reserved` never goes below zero: an event that would make it so
//! is rejected and parked.

use lifeline_events::{Envelope, Event, OrderPicked, OrderPlaced, PickOutcome};
use serde::{Deserialize, Serialize};

use crate::{Applied, Handler, Reason, Rejection, StateTx, StateTxExt};

pub mod shortfall;

pub use shortfall::{SHORTFALL_HEADS, SHORTFALL_PLACES, SHORTFALLS, Waiting, line_prefix};

pub const NAME: &str = "inventory";
pub const STOCK: &str = "stock";
pub const RESERVATIONS: &str = "reservations";
/// Errands, keyed by order with empty values: orders that hold no stock, so a cancel of
/// one releases nothing and is not an unknown order. (Parcels cannot be cancelled.)
pub const ERRANDS: &str = "errands";

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StockLevel {
    pub on_hand: u64,
    pub reserved: u64,
}

impl StockLevel {
    pub fn available(&self) -> u64 {
        self.on_hand.saturating_sub(self.reserved)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReservedLine {
    pub item: String,
    pub requested: u32,
    pub reserved: u32,
}

impl ReservedLine {
    pub fn shortfall(&self) -> u32 {
        self.requested - self.reserved
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReservationState {
    Held,
    Picked,
    Released,
}

/// What one order holds of a partner's stock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reservation {
    pub partner: String,
    pub lines: Vec<ReservedLine>,
    pub state: ReservationState,
}

impl Reservation {
    /// True when some line could not be reserved in full when the order was placed.
    pub fn is_short(&self) -> bool {
        self.lines.iter().any(|line| line.shortfall() > 0)
    }
}

/// The stock row of a partner's item: `<partner>/<item>`. Built and parsed only here.
pub fn stock_key(partner: &str, item: &str) -> String {
    format!("{partner}/{item}")
}

/// The partner and item of a stock row's key.
pub fn parse_stock_key(key: &str) -> Option<(&str, &str)> {
    key.split_once('/')
}

/// The prefix of every stock row of `partner`.
pub fn stock_prefix(partner: &str) -> String {
    stock_key(partner, "")
}

#[derive(Debug, Default)]
pub struct Inventory;

pub(crate) fn stock(
    state: &dyn StateTx,
    partner: &str,
    item: &str,
) -> Result<StockLevel, Rejection> {
    Ok(state
        .get_json::<StockLevel>(STOCK, &stock_key(partner, item))?
        .unwrap_or_default())
}

pub(crate) fn put_stock(state: &mut dyn StateTx, partner: &str, item: &str, level: StockLevel) {
    state.put_json(STOCK, &stock_key(partner, item), &level);
}

impl Handler for Inventory {
    fn name(&self) -> &'static str {
        NAME
    }

    fn tables(&self) -> &'static [&'static str] {
        &[
            STOCK,
            RESERVATIONS,
            SHORTFALLS,
            SHORTFALL_PLACES,
            SHORTFALL_HEADS,
            ERRANDS,
        ]
    }

    fn apply(
        &self,
        state: &mut dyn StateTx,
        envelope: &Envelope,
        _emit: &mut Vec<Envelope>,
    ) -> Result<Applied, Rejection> {
        match &envelope.event {
            Event::StockReceived(received) => {
                let mut level = stock(state, &received.partner, &received.item)?;
                level.on_hand += u64::from(received.quantity);
                put_stock(state, &received.partner, &received.item, level);
                shortfall::fill(state, &received.partner, &received.item)?;
                Ok(Applied::Changed)
            }
            Event::StockAdjusted(adjusted) => {
                let mut level = stock(state, &adjusted.partner, &adjusted.item)?;
                let on_hand = i128::from(level.on_hand) + i128::from(adjusted.delta);
                if on_hand < i128::from(level.reserved) {
                    return Err(Rejection::new(
                        Reason::StockBelowReserved,
                        format!(
                            "adjusting {} by {} leaves {on_hand} on hand for {} reserved",
                            stock_key(&adjusted.partner, &adjusted.item),
                            adjusted.delta,
                            level.reserved
                        ),
                    ));
                }
                level.on_hand = u64::try_from(on_hand).unwrap_or(0);
                put_stock(state, &adjusted.partner, &adjusted.item, level);
                shortfall::fill(state, &adjusted.partner, &adjusted.item)?;
                Ok(Applied::Changed)
            }
            Event::OrderPlaced(placed) => reserve(state, placed, envelope.unix_millis()),
            Event::ErrandRequested(errand) => {
                state.put(ERRANDS, &errand.order, Vec::new());
                Ok(Applied::Changed)
            }
            Event::OrderReprioritized(raised) => {
                let Some(reservation) =
                    state.get_json::<Reservation>(RESERVATIONS, &raised.order)?
                else {
                    // Parcels and errands reserve nothing.
                    return Ok(Applied::Ignored);
                };
                if reservation.state != ReservationState::Held {
                    return Ok(Applied::Ignored);
                }
                shortfall::raise(state, &raised.order, &reservation, raised.priority)?;
                Ok(Applied::Changed)
            }
            Event::OrderCancelled(cancelled) if state.get(ERRANDS, &cancelled.order).is_some() => {
                Ok(Applied::Ignored)
            }
            Event::OrderCancelled(cancelled) => {
                let Some(mut reservation) =
                    state.get_json::<Reservation>(RESERVATIONS, &cancelled.order)?
                else {
                    return Err(Rejection::new(
                        Reason::UnknownOrder,
                        cancelled.order.clone(),
                    ));
                };
                if reservation.state != ReservationState::Held {
                    return Err(Rejection::new(
                        Reason::ImpossibleTransition,
                        format!(
                            "cancel of order {} whose stock is {:?}",
                            cancelled.order, reservation.state
                        ),
                    ));
                }
                for line in &reservation.lines {
                    let mut level = stock(state, &reservation.partner, &line.item)?;
                    level.reserved -= u64::from(line.reserved);
                    put_stock(state, &reservation.partner, &line.item, level);
                }
                reservation.state = ReservationState::Released;
                state.put_json(RESERVATIONS, &cancelled.order, &reservation);
                shortfall::leave(state, &cancelled.order, &reservation)?;
                for line in &reservation.lines {
                    shortfall::fill(state, &reservation.partner, &line.item)?;
                }
                Ok(Applied::Changed)
            }
            Event::OrderPicked(picked) => pick(state, picked),
            _ => Ok(Applied::Ignored),
        }
    }
}

fn reserve(
    state: &mut dyn StateTx,
    placed: &OrderPlaced,
    placed_ms: u64,
) -> Result<Applied, Rejection> {
    if state.get(RESERVATIONS, &placed.order).is_some() {
        return Err(Rejection::new(Reason::DuplicateOrder, placed.order.clone()));
    }
    let mut lines = Vec::with_capacity(placed.lines.len());
    for line in &placed.lines {
        let mut level = stock(state, &placed.partner, &line.item)?;
        let reserved = level.available().min(u64::from(line.quantity));
        level.reserved += reserved;
        put_stock(state, &placed.partner, &line.item, level);
        let reserved = u32::try_from(reserved).unwrap_or(line.quantity);
        if reserved < line.quantity {
            shortfall::wait(
                state,
                &placed.partner,
                &line.item,
                Waiting {
                    order: placed.order.clone(),
                    priority: placed.priority,
                    placed_ms,
                    short: line.quantity - reserved,
                },
            )?;
        }
        lines.push(ReservedLine {
            item: line.item.clone(),
            requested: line.quantity,
            reserved,
        });
    }
    let reservation = Reservation {
        partner: placed.partner.clone(),
        lines,
        state: ReservationState::Held,
    };
    state.put_json(RESERVATIONS, &placed.order, &reservation);
    Ok(Applied::Changed)
}

fn pick(state: &mut dyn StateTx, picked: &OrderPicked) -> Result<Applied, Rejection> {
    let Some(mut reservation) = state.get_json::<Reservation>(RESERVATIONS, &picked.order)? else {
        return Err(Rejection::new(Reason::UnknownOrder, picked.order.clone()));
    };
    if reservation.state != ReservationState::Held {
        return Err(Rejection::new(
            Reason::ImpossibleTransition,
            format!(
                "pick of order {} whose stock is {:?}",
                picked.order, reservation.state
            ),
        ));
    }
    if reservation.partner != picked.partner {
        return Err(Rejection::new(
            Reason::WrongPartner,
            format!(
                "order {} belongs to partner {}",
                picked.order, reservation.partner
            ),
        ));
    }
    // The pick command's line rules, against the lines the order reserved for.
    let ordered: Vec<lifeline_events::OrderLine> = reservation
        .lines
        .iter()
        .map(|line| lifeline_events::OrderLine {
            item: line.item.clone(),
            quantity: line.requested,
        })
        .collect();
    crate::command::check_pick_lines(&ordered, &picked.lines)
        .map_err(|error| Rejection::new(Reason::InvalidPick, error.to_string()))?;
    // Release every reservation of the order first, then take what was picked.
    for line in &reservation.lines {
        let mut level = stock(state, &reservation.partner, &line.item)?;
        level.reserved -= u64::from(line.reserved);
        put_stock(state, &reservation.partner, &line.item, level);
    }
    for line in &picked.lines {
        take(state, &picked.partner, &line.item, line.picked)?;
        if line.outcome == PickOutcome::Substituted
            && let Some(substitute) = &line.substitute
        {
            take(
                state,
                &picked.partner,
                &substitute.item,
                substitute.quantity,
            )?;
        }
    }
    reservation.state = ReservationState::Picked;
    state.put_json(RESERVATIONS, &picked.order, &reservation);
    // What it still waited for is no longer wanted; what the pick left on the shelf of its
    // reservation goes to the next in line.
    shortfall::leave(state, &picked.order, &reservation)?;
    for line in &reservation.lines {
        shortfall::fill(state, &reservation.partner, &line.item)?;
    }
    Ok(Applied::Changed)
}

fn take(
    state: &mut dyn StateTx,
    partner: &str,
    item: &str,
    quantity: u32,
) -> Result<(), Rejection> {
    let mut level = stock(state, partner, item)?;
    if level.available() < u64::from(quantity) {
        return Err(Rejection::new(
            Reason::InsufficientStock,
            format!(
                "picking {quantity} of {} with {} available",
                stock_key(partner, item),
                level.available()
            ),
        ));
    }
    level.on_hand -= u64::from(quantity);
    put_stock(state, partner, item, level);
    Ok(())
}

#[cfg(test)]
mod tests;
