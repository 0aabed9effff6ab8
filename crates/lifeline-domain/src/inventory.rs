//! Inventory rules: per partner and item, stock on hand, reserved and available.
//!
//! Orders reserve what is available (and record what they could not reserve); picks take
//! goods off the shelf and release the reservation; cancels release; restocks add.
//! `available = on_hand - reserved` never goes below zero: an event that would make it so
//! is rejected and parked.

use lifeline_events::{Envelope, Event, OrderPicked, OrderPlaced, PickOutcome};
use serde::{Deserialize, Serialize};

use crate::{Applied, Handler, Reason, Rejection, StateTx, StateTxExt};

pub const NAME: &str = "inventory";
pub const STOCK: &str = "stock";
pub const RESERVATIONS: &str = "reservations";

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

fn stock(state: &dyn StateTx, partner: &str, item: &str) -> Result<StockLevel, Rejection> {
    Ok(state
        .get_json::<StockLevel>(STOCK, &stock_key(partner, item))?
        .unwrap_or_default())
}

fn put_stock(state: &mut dyn StateTx, partner: &str, item: &str, level: StockLevel) {
    state.put_json(STOCK, &stock_key(partner, item), &level);
}

impl Handler for Inventory {
    fn name(&self) -> &'static str {
        NAME
    }

    fn tables(&self) -> &'static [&'static str] {
        &[STOCK, RESERVATIONS]
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
                Ok(Applied::Changed)
            }
            Event::OrderPlaced(placed) => reserve(state, placed),
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
                Ok(Applied::Changed)
            }
            Event::OrderPicked(picked) => pick(state, picked),
            _ => Ok(Applied::Ignored),
        }
    }
}

fn reserve(state: &mut dyn StateTx, placed: &OrderPlaced) -> Result<Applied, Rejection> {
    if state.get(RESERVATIONS, &placed.order).is_some() {
        return Err(Rejection::new(Reason::DuplicateOrder, placed.order.clone()));
    }
    let mut lines = Vec::with_capacity(placed.lines.len());
    for line in &placed.lines {
        let mut level = stock(state, &placed.partner, &line.item)?;
        let reserved = level.available().min(u64::from(line.quantity));
        level.reserved += reserved;
        put_stock(state, &placed.partner, &line.item, level);
        lines.push(ReservedLine {
            item: line.item.clone(),
            requested: line.quantity,
            reserved: u32::try_from(reserved).unwrap_or(line.quantity),
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
mod tests {
    use super::*;
    use crate::{MemoryState, apply_atomically};
    use lifeline_events::{
        Actor, EventMeta, OrderCancelled, OrderLine, PickLine, Priority, StockAdjusted,
        StockReceived, Substitute,
    };
    use proptest::prelude::*;

    const ITEMS: [&str; 3] = ["veg-pack", "eggs", "med-insulin"];

    fn envelope(event: Event) -> Envelope {
        let meta = EventMeta {
            time: time::OffsetDateTime::UNIX_EPOCH,
            source: "test".into(),
            actor: Actor::system("test"),
            correlation_id: uuid::Uuid::nil(),
            causation_id: None,
        };
        Envelope::new(event, meta)
    }

    fn placed(order: usize, lines: &[(usize, u32)]) -> Event {
        Event::OrderPlaced(OrderPlaced {
            order: format!("o{order}"),
            community: "c".into(),
            building: "b".into(),
            unit: "u".into(),
            household: format!("h{order}"),
            partner: "p".into(),
            lines: lines
                .iter()
                .map(|(item, quantity)| OrderLine {
                    item: ITEMS[*item].into(),
                    quantity: *quantity,
                })
                .collect(),
            priority: Priority::Routine,
            weight_g: 1,
            on_behalf_by: None,
        })
    }

    /// A random event of any inventory kind; picks are made consistent with what the
    /// order asked for most of the time, and sometimes deliberately not.
    fn any_event() -> impl Strategy<Value = Event> {
        prop_oneof![
            (0usize..3, 0u32..6).prop_map(|(item, quantity)| Event::StockReceived(StockReceived {
                partner: "p".into(),
                item: ITEMS[item].into(),
                quantity
            })),
            (0usize..3, -4i64..4).prop_map(|(item, delta)| Event::StockAdjusted(StockAdjusted {
                partner: "p".into(),
                item: ITEMS[item].into(),
                delta,
                reason: "count".into()
            })),
            (
                0usize..12,
                prop::collection::vec((0usize..3, 1u32..4), 1..3)
            )
                .prop_map(|(order, lines)| placed(order, &lines)),
            (0usize..12).prop_map(|order| Event::OrderCancelled(OrderCancelled {
                order: format!("o{order}"),
                community: "c".into(),
                reason: "x".into()
            })),
            (
                0usize..12,
                0usize..3,
                1u32..4,
                0u32..4,
                prop::option::of((0usize..3, 1u32..3))
            )
                .prop_map(|(order, item, ordered, picked, substitute)| {
                    let picked = picked.min(ordered);
                    let (outcome, substitute) = match substitute {
                        Some((sub, quantity)) if ITEMS[sub] != ITEMS[item] => (
                            PickOutcome::Substituted,
                            Some(Substitute {
                                item: ITEMS[sub].into(),
                                quantity,
                            }),
                        ),
                        _ if picked == ordered => (PickOutcome::Picked, None),
                        _ => (PickOutcome::Short, None),
                    };
                    Event::OrderPicked(OrderPicked {
                        order: format!("o{order}"),
                        community: "c".into(),
                        partner: "p".into(),
                        lines: vec![PickLine {
                            item: ITEMS[item].into(),
                            ordered,
                            outcome,
                            picked: if outcome == PickOutcome::Substituted {
                                0
                            } else {
                                picked
                            },
                            substitute,
                        }],
                    })
                }),
        ]
    }

    fn stock_rows(state: &MemoryState) -> Vec<StockLevel> {
        state
            .rows
            .iter()
            .filter(|((table, _), _)| table == STOCK)
            .map(|(_, value)| serde_json::from_slice(value).expect("stock row"))
            .collect()
    }

    fn held_reserved(state: &MemoryState) -> u64 {
        state
            .rows
            .iter()
            .filter(|((table, _), _)| table == RESERVATIONS)
            .map(|(_, value)| serde_json::from_slice::<Reservation>(value).expect("reservation"))
            .filter(|reservation| reservation.state == ReservationState::Held)
            .flat_map(|reservation| reservation.lines)
            .map(|line| u64::from(line.reserved))
            .sum()
    }

    #[test]
    fn shortage_is_recorded_not_hidden() {
        let mut state = MemoryState::default();
        let mut emit = Vec::new();
        for event in [
            Event::StockReceived(StockReceived {
                partner: "p".into(),
                item: "eggs".into(),
                quantity: 2,
            }),
            placed(1, &[(1, 3)]),
        ] {
            apply_atomically(&Inventory, &mut state, &envelope(event), &mut emit).expect("applies");
        }
        let reservation: Reservation = state
            .get_json(RESERVATIONS, "o1")
            .expect("row")
            .expect("recorded");
        assert_eq!(reservation.lines[0].reserved, 2);
        assert_eq!(reservation.lines[0].shortfall(), 1);
        let level: StockLevel = state
            .get_json(STOCK, "p/eggs")
            .expect("row")
            .expect("exists");
        assert_eq!(
            (level.on_hand, level.reserved, level.available()),
            (2, 2, 0)
        );
    }

    proptest! {
        /// Whatever arrives, in whatever order: reserved never exceeds on hand (available
        /// never below zero), the stock rows' reserved equals what held reservations
        /// hold, a rejected event changes nothing, and replaying the same events from
        /// scratch gives the same state.
        #[test]
        fn stock_never_goes_negative_and_replay_is_equal(events in prop::collection::vec(any_event(), 0..80)) {
            stock_never_goes_negative_and_replay_is_equal_holds(events)?;
        }
    }

    /// The property's body, outside the macro so rustfmt formats it.
    fn stock_never_goes_negative_and_replay_is_equal_holds(
        events: Vec<Event>,
    ) -> Result<(), TestCaseError> {
        let envelopes: Vec<Envelope> = events.into_iter().map(envelope).collect();
        let mut state = MemoryState::default();
        let mut emit = Vec::new();
        for envelope in &envelopes {
            let before = state.clone();
            if apply_atomically(&Inventory, &mut state, envelope, &mut emit).is_err() {
                prop_assert_eq!(&state, &before, "rejected event left a trace");
            }
            let rows = stock_rows(&state);
            for row in &rows {
                prop_assert!(row.reserved <= row.on_hand, "{row:?}");
            }
            prop_assert_eq!(
                rows.iter().map(|row| row.reserved).sum::<u64>(),
                held_reserved(&state)
            );
        }
        let mut replayed = MemoryState::default();
        for envelope in &envelopes {
            let _ = apply_atomically(&Inventory, &mut replayed, envelope, &mut emit);
        }
        prop_assert_eq!(replayed, state);
        prop_assert!(emit.is_empty(), "inventory emits nothing");
        Ok(())
    }
}
