//! Inventory by example and by property: shortages recorded and filled, stock never
//! negative, replay equal.
use super::*;
use crate::{MemoryState, apply_atomically};
use lifeline_events::{
    Actor, EventMeta, OrderCancelled, OrderLine, PickLine, Priority, StockAdjusted, StockReceived,
    Substitute,
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
        campaign: None,
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
                    batch: None,
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

/// Nothing is available of an item anyone waits for, each queue is in fill order, and
/// the queues hold exactly the held reservations' shortfalls.
fn shortfalls_agree(state: &MemoryState) -> Result<(), TestCaseError> {
    let mut waiting_by_order: std::collections::BTreeMap<(String, String), u32> =
        Default::default();
    // Each item's waiting rows, in key order, which must be fill order.
    let mut lines: std::collections::BTreeMap<String, Vec<Waiting>> = Default::default();
    for ((table, key), value) in &state.rows {
        if table != SHORTFALLS {
            continue;
        }
        let waiting: Waiting = serde_json::from_slice(value).expect("waiting row");
        let (partner, rest) = key.split_once('/').expect("partner/item/place");
        let (item, _) = rest.split_once('/').expect("item/place");
        let place: String = state
            .get(SHORTFALL_PLACES, &format!("{}/{item}", waiting.order))
            .map(|bytes| String::from_utf8(bytes).expect("utf-8"))
            .unwrap_or_default();
        prop_assert_eq!(&place, key, "the place row points at the waiting row");
        lines
            .entry(format!("{partner}/{item}"))
            .or_default()
            .push(waiting);
    }
    let places = state
        .rows
        .keys()
        .filter(|(table, _)| table == SHORTFALL_PLACES)
        .count();
    prop_assert_eq!(
        places,
        lines.values().map(Vec::len).sum::<usize>(),
        "no stray place rows"
    );
    // No waiting row sorts before its line's head (a fill reads from the head on).
    for (table, key) in state.rows.keys() {
        if table != SHORTFALLS {
            continue;
        }
        let (partner, rest) = key.split_once('/').expect("partner/item/place");
        let (item, _) = rest.split_once('/').expect("item/place");
        let prefix = format!("{partner}/{item}/");
        if let Some(head) = state.get(SHORTFALL_HEADS, &prefix) {
            prop_assert!(
                head.as_slice() <= key.as_bytes(),
                "{} waits before its line's head {}",
                key,
                String::from_utf8_lossy(&head)
            );
        }
    }
    for (key, queue) in lines {
        let level: StockLevel = state
            .get_json(STOCK, &key)
            .expect("row")
            .unwrap_or_default();
        prop_assert_eq!(level.available(), 0, "{} available while orders wait", key);
        let ranks: Vec<_> = queue
            .iter()
            .map(|w| (std::cmp::Reverse(w.priority), w.placed_ms, w.order.clone()))
            .collect();
        prop_assert!(
            ranks.windows(2).all(|pair| pair[0] <= pair[1]),
            "{key} out of order"
        );
        let item = key
            .split_once('/')
            .map(|(_, item)| item)
            .unwrap_or_default();
        for waiting in queue {
            *waiting_by_order
                .entry((waiting.order, item.to_owned()))
                .or_default() += waiting.short;
        }
    }
    let mut short_by_order = std::collections::BTreeMap::new();
    for ((table, order), value) in &state.rows {
        if table != RESERVATIONS {
            continue;
        }
        let reservation: Reservation = serde_json::from_slice(value).expect("reservation");
        if reservation.state != ReservationState::Held {
            continue;
        }
        for line in reservation.lines {
            if line.shortfall() > 0 {
                *short_by_order
                    .entry((order.clone(), line.item.clone()))
                    .or_insert(0) += line.shortfall();
            }
        }
    }
    prop_assert_eq!(waiting_by_order, short_by_order);
    Ok(())
}

fn urgent(order: usize, item: usize, quantity: u32, priority: Priority) -> Event {
    match placed(order, &[(item, quantity)]) {
        Event::OrderPlaced(placed) => Event::OrderPlaced(OrderPlaced { priority, ..placed }),
        other => other,
    }
}

fn reserved_of(state: &MemoryState, order: usize) -> u32 {
    let reservation: Reservation = state
        .get_json(RESERVATIONS, &format!("o{order}"))
        .expect("row")
        .expect("recorded");
    reservation.lines[0].reserved
}

/// The story: 14 orders for insulin with 12 in stock leave two short; a restock of two
/// fills exactly those two, urgent before routine, and the next unit the routine one.
#[test]
fn a_restock_fills_the_waiting_shortfalls_urgent_first() {
    let insulin = 2;
    let mut events = vec![Event::StockReceived(StockReceived {
        partner: "p".into(),
        item: ITEMS[insulin].into(),
        quantity: 12,
    })];
    for order in 1..=12 {
        events.push(urgent(order, insulin, 1, Priority::Urgent));
    }
    // Placed in this order: a routine order short first, then two urgent ones.
    events.push(urgent(13, insulin, 1, Priority::Routine));
    events.push(urgent(14, insulin, 1, Priority::Urgent));
    events.push(urgent(15, insulin, 1, Priority::Urgent));
    let mut state = MemoryState::default();
    for event in events {
        apply_atomically(&Inventory, &mut state, &envelope(event), &mut Vec::new())
            .expect("applies");
    }
    let short: Vec<usize> = (1..=15).filter(|o| reserved_of(&state, *o) == 0).collect();
    assert_eq!(short, [13, 14, 15]);
    let waiting = shortfall::waiting(&state, "p", ITEMS[insulin]).expect("reads");
    let order: Vec<&str> = waiting.iter().map(|w| w.order.as_str()).collect();
    assert_eq!(
        order,
        ["o14", "o15", "o13"],
        "urgent first, then by placing"
    );
    let restock = |quantity| {
        Event::StockReceived(StockReceived {
            partner: "p".into(),
            item: ITEMS[insulin].into(),
            quantity,
        })
    };
    apply_atomically(
        &Inventory,
        &mut state,
        &envelope(restock(2)),
        &mut Vec::new(),
    )
    .expect("applies");
    assert_eq!(
        (
            reserved_of(&state, 14),
            reserved_of(&state, 15),
            reserved_of(&state, 13)
        ),
        (1, 1, 0)
    );
    apply_atomically(
        &Inventory,
        &mut state,
        &envelope(restock(1)),
        &mut Vec::new(),
    )
    .expect("applies");
    assert_eq!(reserved_of(&state, 13), 1);
    assert!(
        shortfall::waiting(&state, "p", ITEMS[insulin])
            .expect("reads")
            .is_empty()
    );
    shortfalls_agree(&state).expect("queues agree");
}

/// A cancel frees its reservation for the next in line, and takes a waiting order out.
#[test]
fn a_cancel_passes_its_stock_to_the_next_in_line() {
    let mut state = MemoryState::default();
    for event in [
        Event::StockReceived(StockReceived {
            partner: "p".into(),
            item: "eggs".into(),
            quantity: 1,
        }),
        urgent(1, 1, 1, Priority::Routine),
        urgent(2, 1, 1, Priority::Urgent),
        urgent(3, 1, 1, Priority::Routine),
        Event::OrderCancelled(OrderCancelled {
            order: "o1".into(),
            community: "c".into(),
            reason: "x".into(),
        }),
        Event::OrderCancelled(OrderCancelled {
            order: "o3".into(),
            community: "c".into(),
            reason: "x".into(),
        }),
    ] {
        apply_atomically(&Inventory, &mut state, &envelope(event), &mut Vec::new())
            .expect("applies");
    }
    assert_eq!(
        reserved_of(&state, 2),
        1,
        "the urgent order got the freed egg"
    );
    assert!(
        shortfall::waiting(&state, "p", "eggs")
            .expect("reads")
            .is_empty()
    );
}

proptest! {
    /// Whatever arrives, in whatever order: reserved never exceeds on hand (available
    /// never below zero), the stock rows' reserved equals what held reservations
    /// hold, nothing is available of an item an order waits for, a rejected event
    /// changes nothing, and replaying the same events from scratch gives the same state.
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
        shortfalls_agree(&state)?;
    }
    let mut replayed = MemoryState::default();
    for envelope in &envelopes {
        let _ = apply_atomically(&Inventory, &mut replayed, envelope, &mut emit);
    }
    prop_assert_eq!(replayed, state);
    prop_assert!(emit.is_empty(), "inventory emits nothing");
    Ok(())
}

/// A routine order waiting for stock, raised to priority (its household found vulnerable),
/// moves ahead of the routine orders placed before it, and the next unit is its.
#[test]
fn a_raised_order_moves_ahead_in_the_shortfall_line() {
    let eggs = 1;
    let mut state = MemoryState::default();
    for event in [
        urgent(1, eggs, 1, Priority::Routine),
        urgent(2, eggs, 1, Priority::Routine),
        Event::OrderReprioritized(lifeline_events::OrderReprioritized {
            order: "o2".into(),
            community: "c".into(),
            household: "h2".into(),
            priority: Priority::Priority,
            reason: "household registered as disabled".into(),
        }),
    ] {
        apply_atomically(&Inventory, &mut state, &envelope(event), &mut Vec::new())
            .expect("applies");
    }
    let waiting = shortfall::waiting(&state, "p", ITEMS[eggs]).expect("reads");
    let line: Vec<(&str, Priority)> = waiting
        .iter()
        .map(|w| (w.order.as_str(), w.priority))
        .collect();
    assert_eq!(
        line,
        [("o2", Priority::Priority), ("o1", Priority::Routine)]
    );
    let restock = Event::StockReceived(StockReceived {
        partner: "p".into(),
        item: ITEMS[eggs].into(),
        quantity: 1,
    });
    apply_atomically(&Inventory, &mut state, &envelope(restock), &mut Vec::new()).expect("applies");
    assert_eq!((reserved_of(&state, 2), reserved_of(&state, 1)), (1, 0));
}

/// A long line filled a unit at a time, past a window's end, with orders leaving from the
/// middle: each fill starts at the line's head, a late urgent order still goes first, and
/// an emptied line keeps no head.
#[test]
fn fills_start_at_the_head_and_nothing_waiting_is_passed_over() {
    let eggs = 1;
    let mut state = MemoryState::default();
    let apply = |state: &mut MemoryState, event: Event| {
        apply_atomically(&Inventory, state, &envelope(event), &mut Vec::new()).expect("applies");
        shortfalls_agree(state).expect("queues agree");
    };
    let restock = |quantity| {
        Event::StockReceived(StockReceived {
            partner: "p".into(),
            item: ITEMS[eggs].into(),
            quantity,
        })
    };
    for order in 1..=200 {
        apply(&mut state, urgent(order, eggs, 1, Priority::Routine));
    }
    for _ in 0..70 {
        apply(&mut state, restock(1));
    }
    for order in (100..200).step_by(3) {
        apply(
            &mut state,
            Event::OrderCancelled(OrderCancelled {
                order: format!("o{order}"),
                community: "c".into(),
                reason: "x".into(),
            }),
        );
    }
    let waiting = shortfall::waiting(&state, "p", ITEMS[eggs]).expect("reads");
    apply(&mut state, urgent(201, eggs, 1, Priority::Urgent));
    apply(&mut state, restock(1));
    assert_eq!(reserved_of(&state, 201), 1, "the urgent order went first");
    let first = waiting.first().expect("a line").order.clone();
    apply(&mut state, restock(1));
    let first: usize = first.trim_start_matches('o').parse().expect("id");
    assert_eq!(reserved_of(&state, first), 1, "then the head of the line");
    apply(&mut state, restock(500));
    assert!(
        shortfall::waiting(&state, "p", ITEMS[eggs])
            .expect("reads")
            .is_empty()
    );
    // The emptied line keeps a head past every row it had; an order waiting now sorts
    // before it, lowers it, and is filled by the next egg.
    assert!(state.get(SHORTFALL_HEADS, "p/eggs/").is_some());
    apply(&mut state, urgent(300, eggs, 1000, Priority::Routine));
    let before = reserved_of(&state, 300);
    apply(&mut state, restock(1));
    assert_eq!(
        reserved_of(&state, 300),
        before + 1,
        "a later waiter is filled"
    );
}

/// A line written before heads existed (rows, no head): an order waiting after the
/// upgrade does not hide the rows before it.
#[test]
fn a_line_without_a_head_is_read_from_its_start() {
    let eggs = 1;
    let mut state = MemoryState::default();
    for event in [
        urgent(1, eggs, 1, Priority::Urgent),
        urgent(2, eggs, 1, Priority::Routine),
    ] {
        apply_atomically(&Inventory, &mut state, &envelope(event), &mut Vec::new())
            .expect("applies");
    }
    // As an earlier release left it.
    state.delete(SHORTFALL_HEADS, "p/eggs/");
    for event in [
        urgent(3, eggs, 1, Priority::Routine),
        Event::StockReceived(StockReceived {
            partner: "p".into(),
            item: ITEMS[eggs].into(),
            quantity: 1,
        }),
    ] {
        apply_atomically(&Inventory, &mut state, &envelope(event), &mut Vec::new())
            .expect("applies");
    }
    assert_eq!(
        reserved_of(&state, 1),
        1,
        "the urgent order from before went first"
    );
    shortfalls_agree(&state).expect("queues agree");
}
