//! The shortfall queue: what orders could not reserve waits, per partner and item, and
//! stock coming free fills it in priority order: urgent first, then priority (vulnerable
//! households), then routine, each by placing time (then order id).
//!
//! Stock comes free on a restock, a positive adjustment, a cancel (its reservation is
//! released) and a pick (what it reserved and did not take). Each of those fills the
//! queue of the items it touched before anything else can take the stock, so a new order
//! never jumps ahead of one that waits: architecture invariant, for every partner and
//! item, either nothing waits or nothing is available.
//!
//! An order leaves the queue when its shortfall is filled, or when it is cancelled or
//! picked (the partner picked what it had; the rest is no longer wanted from this
//! shortfall). Shortfalls wait for the order's own partner: lifeline does not move an
//! order to another partner by itself (staff cancel and re-order there, which releases
//! this shortfall).
//!
//! The queue of one item is one row, re-written when it changes: it grows with the orders
//! short of that item at once, not with the day.

use lifeline_events::Priority;
use serde::{Deserialize, Serialize};

use super::{RESERVATIONS, Reservation, ReservationState, put_stock, stock, stock_key};
use crate::{Rejection, StateTx, StateTxExt};

/// One row per partner and item with orders waiting, keyed like the stock (`partner/item`).
pub const SHORTFALLS: &str = "shortfalls";

/// An order waiting for `short` more of an item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Waiting {
    pub order: String,
    pub priority: Priority,
    /// Unix milliseconds of the `order.placed` event.
    pub placed_ms: u64,
    pub short: u32,
}

impl Waiting {
    fn rank(&self) -> (std::cmp::Reverse<Priority>, u64, &str) {
        (
            std::cmp::Reverse(self.priority),
            self.placed_ms,
            self.order.as_str(),
        )
    }
}

fn queue(state: &dyn StateTx, partner: &str, item: &str) -> Result<Vec<Waiting>, Rejection> {
    Ok(state
        .get_json::<Vec<Waiting>>(SHORTFALLS, &stock_key(partner, item))?
        .unwrap_or_default())
}

fn put_queue(state: &mut dyn StateTx, partner: &str, item: &str, queue: &[Waiting]) {
    let key = stock_key(partner, item);
    if queue.is_empty() {
        state.delete(SHORTFALLS, &key);
    } else {
        state.put_json(SHORTFALLS, &key, &queue);
    }
}

/// Puts an order's shortfall of `item` in line.
pub(super) fn wait(
    state: &mut dyn StateTx,
    partner: &str,
    item: &str,
    waiting: Waiting,
) -> Result<(), Rejection> {
    let mut queue = queue(state, partner, item)?;
    let at = queue.partition_point(|other| other.rank() <= waiting.rank());
    queue.insert(at, waiting);
    put_queue(state, partner, item, &queue);
    Ok(())
}

/// Takes an order out of every queue it waits in.
pub(super) fn leave(
    state: &mut dyn StateTx,
    order: &str,
    reservation: &Reservation,
) -> Result<(), Rejection> {
    for line in &reservation.lines {
        if line.shortfall() == 0 {
            continue;
        }
        let mut queue = queue(state, &reservation.partner, &line.item)?;
        let before = queue.len();
        queue.retain(|waiting| waiting.order != order);
        if queue.len() != before {
            put_queue(state, &reservation.partner, &line.item, &queue);
        }
    }
    Ok(())
}

/// Gives what is available of `item` to the orders waiting for it, first in line first,
/// reserving it for them.
pub(super) fn fill(state: &mut dyn StateTx, partner: &str, item: &str) -> Result<(), Rejection> {
    let mut queue = queue(state, partner, item)?;
    if queue.is_empty() {
        return Ok(());
    }
    let mut level = stock(state, partner, item)?;
    while level.available() > 0 && !queue.is_empty() {
        let first = &mut queue[0];
        let reservation = state.get_json::<Reservation>(RESERVATIONS, &first.order)?;
        let Some(mut reservation) =
            reservation.filter(|reservation| reservation.state == ReservationState::Held)
        else {
            // Not waiting any more (a state this module never leaves, kept safe).
            queue.remove(0);
            continue;
        };
        let Some(line) = reservation
            .lines
            .iter_mut()
            .find(|line| line.item == item && line.shortfall() > 0)
        else {
            queue.remove(0);
            continue;
        };
        let grant = u32::try_from(level.available())
            .unwrap_or(u32::MAX)
            .min(first.short)
            .min(line.shortfall());
        line.reserved += grant;
        level.reserved += u64::from(grant);
        first.short -= grant;
        let filled = first.short == 0 || line.shortfall() == 0;
        state.put_json(RESERVATIONS, &first.order, &reservation);
        if filled {
            queue.remove(0);
        }
    }
    put_stock(state, partner, item, level);
    put_queue(state, partner, item, &queue);
    Ok(())
}

/// Everything waiting for one item at a partner, in the order it will be filled.
pub fn waiting(state: &dyn StateTx, partner: &str, item: &str) -> Result<Vec<Waiting>, Rejection> {
    queue(state, partner, item)
}
