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
//! Each waiting order has a row of its own, keyed so that an item's rows read in fill
//! order, and a second row saying where the first is; waiting, leaving and filling read
//! and write only the rows of the orders they move, however long the line. A third row
//! per line says where its first waiting row may be (no live row sorts before it): a fill
//! reads from there, not from the start of the line, which after a day of picks and fills
//! is a long run of deleted rows (RocksDB reads through every tombstone until compaction
//! drops it: a fill's cost grew with how many orders had left the line before).

use lifeline_events::Priority;
use serde::{Deserialize, Serialize};

use super::{RESERVATIONS, Reservation, ReservationState, put_stock, stock, stock_key};
use crate::{Reason, Rejection, StateTx, StateTxExt};

/// One row per order and item waiting: `partner/item/` then its place in line.
pub const SHORTFALLS: &str = "shortfalls";
/// Where each waiting order's row is: `order/item` to its [`SHORTFALLS`] key.
pub const SHORTFALL_PLACES: &str = "shortfall_places";

/// Per line (`partner/item/`): a key no waiting row of the line sorts before.
pub const SHORTFALL_HEADS: &str = "shortfall_heads";

/// How many waiting rows a fill reads at a time.
const WINDOW: usize = 64;

/// An order waiting for `short` more of an item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Waiting {
    pub order: String,
    pub priority: Priority,
    /// Unix milliseconds of the `order.placed` event.
    pub placed_ms: u64,
    pub short: u32,
}

/// The prefix of every row waiting for `item` at `partner`.
pub fn line_prefix(partner: &str, item: &str) -> String {
    let mut prefix = stock_key(partner, item);
    prefix.push('/');
    prefix
}

/// A waiting row's key: the line's prefix, then urgency, placing time and order id, so the
/// rows sort in fill order.
fn place_key(partner: &str, item: &str, waiting: &Waiting) -> String {
    use std::fmt::Write;
    let mut key = line_prefix(partner, item);
    key.push(waiting.priority.queue_char());
    let _ = write!(key, "{:020}/{}", waiting.placed_ms, waiting.order);
    key
}

fn place_of(order: &str, item: &str) -> String {
    let mut key = String::with_capacity(order.len() + item.len() + 1);
    key.push_str(order);
    key.push('/');
    key.push_str(item);
    key
}

fn decode(key: &str, row: &[u8]) -> Result<Waiting, Rejection> {
    serde_json::from_slice(row).map_err(|error| {
        Rejection::new(Reason::CorruptState, format!("{SHORTFALLS}/{key}: {error}"))
    })
}

/// Puts an order's shortfall of `item` in line.
pub(super) fn wait(
    state: &mut dyn StateTx,
    partner: &str,
    item: &str,
    waiting: Waiting,
) -> Result<(), Rejection> {
    let place = place_of(&waiting.order, item);
    if let Some(key) = state.get(SHORTFALL_PLACES, &place) {
        // The same item on another line of the same order: one row waits for both.
        let key = String::from_utf8_lossy(&key).into_owned();
        if let Some(row) = state.get(SHORTFALLS, &key) {
            let mut already = decode(&key, &row)?;
            already.short = already.short.saturating_add(waiting.short);
            state.put_json(SHORTFALLS, &key, &already);
            return Ok(());
        }
    }
    let key = place_key(partner, item, &waiting);
    state.put(SHORTFALL_PLACES, &place, key.clone().into_bytes());
    state.put_json(SHORTFALLS, &key, &waiting);
    lower_head(state, &line_prefix(partner, item), &key);
    Ok(())
}

/// Where a fill of the line `prefix` starts reading: its head, or the line's start.
fn head(state: &dyn StateTx, prefix: &str) -> String {
    state
        .get(SHORTFALL_HEADS, prefix)
        .map(|head| String::from_utf8_lossy(&head).into_owned())
        .filter(|head| head.starts_with(prefix))
        .unwrap_or_else(|| prefix.to_owned())
}

/// A row now waits at `key`: the head moves back to it if it was past it. A line with no
/// head is read from its start (a line written by an earlier release has rows and no
/// head), so it gets none here: only a fill, having read the line, places one.
fn lower_head(state: &mut dyn StateTx, prefix: &str, key: &str) {
    if state
        .get(SHORTFALL_HEADS, prefix)
        .is_some_and(|head| key.as_bytes() < head.as_slice())
    {
        state.put(SHORTFALL_HEADS, prefix, key.as_bytes().to_vec());
    }
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
        let place = place_of(order, &line.item);
        if let Some(key) = state.get(SHORTFALL_PLACES, &place) {
            state.delete(SHORTFALLS, &String::from_utf8_lossy(&key));
            state.delete(SHORTFALL_PLACES, &place);
        }
    }
    Ok(())
}

/// Moves an order's waiting rows to the part of each line its raised priority waits in
/// (same placing time): it then fills before the lower priorities, as if placed so.
pub(super) fn raise(
    state: &mut dyn StateTx,
    order: &str,
    reservation: &Reservation,
    priority: Priority,
) -> Result<(), Rejection> {
    for line in &reservation.lines {
        let place = place_of(order, &line.item);
        let Some(key) = state.get(SHORTFALL_PLACES, &place) else {
            continue;
        };
        let key = String::from_utf8_lossy(&key).into_owned();
        let Some(row) = state.get(SHORTFALLS, &key) else {
            continue;
        };
        let mut waiting = decode(&key, &row)?;
        if waiting.priority >= priority {
            continue;
        }
        waiting.priority = priority;
        let moved = place_key(&reservation.partner, &line.item, &waiting);
        state.delete(SHORTFALLS, &key);
        state.put(SHORTFALL_PLACES, &place, moved.clone().into_bytes());
        state.put_json(SHORTFALLS, &moved, &waiting);
        lower_head(
            state,
            &line_prefix(&reservation.partner, &line.item),
            &moved,
        );
    }
    Ok(())
}

/// Gives what is available of `item` to the orders waiting for it, first in line first,
/// reserving it for them.
pub(super) fn fill(state: &mut dyn StateTx, partner: &str, item: &str) -> Result<(), Rejection> {
    let mut level = stock(state, partner, item)?;
    if level.available() == 0 {
        // Either nothing waits or nothing is available: the line is not read at all.
        return Ok(());
    }
    let prefix = line_prefix(partner, item);
    let mut from = head(state, &prefix);
    // The first row still waiting once this fill is done: the line's new head.
    let mut first_left: Option<String> = None;
    'windows: while level.available() > 0 {
        let rows = state.scan_prefix_from(SHORTFALLS, &prefix, &from, WINDOW);
        let Some((last, _)) = rows.last() else {
            break;
        };
        from = format!("{last}\0");
        let full = rows.len() == WINDOW;
        for (key, row) in rows {
            if level.available() == 0 {
                first_left = Some(key);
                break 'windows;
            }
            let mut first = decode(&key, &row)?;
            let place = place_of(&first.order, item);
            let reservation = state
                .get_json::<Reservation>(RESERVATIONS, &first.order)?
                .filter(|reservation| reservation.state == ReservationState::Held);
            let Some(mut reservation) = reservation else {
                // Not waiting any more (a state this module never leaves, kept safe).
                state.delete(SHORTFALLS, &key);
                state.delete(SHORTFALL_PLACES, &place);
                continue;
            };
            // An order may list the item on more than one line: one row waits for them all.
            for line in reservation
                .lines
                .iter_mut()
                .filter(|line| line.item == item)
            {
                let grant = u32::try_from(level.available())
                    .unwrap_or(u32::MAX)
                    .min(first.short)
                    .min(line.shortfall());
                line.reserved += grant;
                level.reserved += u64::from(grant);
                first.short -= grant;
            }
            let still_short = reservation
                .lines
                .iter()
                .any(|line| line.item == item && line.shortfall() > 0);
            let filled = first.short == 0 || !still_short;
            state.put_json(RESERVATIONS, &first.order, &reservation);
            if filled {
                state.delete(SHORTFALLS, &key);
                state.delete(SHORTFALL_PLACES, &place);
            } else {
                state.put_json(SHORTFALLS, &key, &first);
                first_left = Some(key);
                break 'windows;
            }
        }
        if !full {
            break;
        }
    }
    // The first row left waiting; or, having read to the line's end or stopped at a
    // window's end with the stock used up, past every row read (a row waiting later
    // lowers it).
    let head = first_left.unwrap_or(from);
    state.put(SHORTFALL_HEADS, &prefix, head.into_bytes());
    put_stock(state, partner, item, level);
    Ok(())
}

/// Everything waiting for one item at a partner, in the order it will be filled.
pub fn waiting(state: &dyn StateTx, partner: &str, item: &str) -> Result<Vec<Waiting>, Rejection> {
    state
        .scan_prefix(SHORTFALLS, &line_prefix(partner, item))
        .iter()
        .map(|(key, row)| decode(key, row))
        .collect()
}
