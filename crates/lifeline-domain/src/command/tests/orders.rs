//! Placing, cancelling and picking orders, and restocking.

use lifeline_events::{ItemKind, PickLine, PickOutcome, Priority, Substitute};

use super::*;
use crate::Reason;
use crate::command::*;
use crate::testing::given;

// ---- place ----------------------------------------------------------------------------

#[test]
fn place_order_rejections() {
    let many: Vec<(String, u32)> = (0..=MAX_LINES).map(|n| (format!("i{n}"), 1)).collect();
    let many: Vec<(&str, u32)> = many.iter().map(|(i, q)| (i.as_str(), *q)).collect();
    let cases: &[(PlaceOrder, ErrorCode)] = &[
        (place(HOUSEHOLD, "yonghui", &[]), ErrorCode::EmptyOrder),
        (place(HOUSEHOLD, "yonghui", &many), ErrorCode::TooManyLines),
        (
            place(HOUSEHOLD, "yonghui", &[("veg-pack", 0)]),
            ErrorCode::QuantityOutOfRange,
        ),
        (
            place(HOUSEHOLD, "yonghui", &[("veg-pack", 101)]),
            ErrorCode::QuantityOutOfRange,
        ),
        (
            place(HOUSEHOLD, "yonghui", &[("veg-pack", 1), ("veg-pack", 2)]),
            ErrorCode::DuplicateLine,
        ),
        (
            place("nobody", "yonghui", &[("veg-pack", 1)]),
            ErrorCode::UnknownHousehold,
        ),
        (
            place(HOUSEHOLD, "carrefour", &[("veg-pack", 1)]),
            ErrorCode::UnknownPartner,
        ),
        (
            place(HOUSEHOLD, "yonghui", &[("caviar", 1)]),
            ErrorCode::UnknownItem,
        ),
    ];
    let given = given(&registry());
    for (command, code) in cases {
        given
            .when(|views| place_order(views, command.clone()))
            .then_refused(*code);
    }
}

#[test]
fn a_placed_order_takes_the_household_address_and_weighs_its_lines() {
    let placed = given(&registry())
        .when(|views| place_order(views, place(HOUSEHOLD, "yonghui", &[("veg-pack", 2)])))
        .then_ok();
    assert_eq!(placed.building, "tianlun-b07");
    assert_eq!(placed.unit, "tianlun-b07-u8");
    assert_eq!(placed.community, "tianlun");
    assert_eq!(placed.weight_g, 8_000);
    assert_eq!(placed.priority, Priority::Routine);
}

/// A household, its lines, the priority asked for, and the priority the order gets.
type PriorityCase = (
    &'static str,
    &'static [(&'static str, u32)],
    Option<Priority>,
    Priority,
);

#[test]
fn priority_floor_table() {
    let cases: &[PriorityCase] = &[
        (HOUSEHOLD, &[("veg-pack", 1)], None, Priority::Routine),
        (
            HOUSEHOLD,
            &[("veg-pack", 1)],
            Some(Priority::Urgent),
            Priority::Urgent,
        ),
        (
            HOUSEHOLD,
            &[("med-insulin", 1)],
            Some(Priority::Routine),
            Priority::Urgent,
        ),
        (
            "tianlun-b07-u8-0302",
            &[("veg-pack", 1)],
            None,
            Priority::Priority,
        ),
        (
            "tianlun-b07-u8-0302",
            &[("veg-pack", 1)],
            Some(Priority::Routine),
            Priority::Priority,
        ),
        (
            "tianlun-b07-u8-0302",
            &[("med-insulin", 1)],
            None,
            Priority::Urgent,
        ),
    ];
    let given = given(&registry());
    for (household, order_lines, asked, expected) in cases {
        let mut command = place(household, "yonghui", order_lines);
        command.priority = *asked;
        let placed = given.when(|views| place_order(views, command)).then_ok();
        assert_eq!(
            placed.priority, *expected,
            "{household} {order_lines:?} asked {asked:?}"
        );
    }
}

#[test]
fn order_weight_saturates_instead_of_overflowing() {
    let mut events = registry();
    events.push(item("anvil", ItemKind::Package, u32::MAX / 2));
    events.push(stock("yonghui", "anvil", 1));
    let placed = given(&events)
        .when(|views| place_order(views, place(HOUSEHOLD, "yonghui", &[("anvil", 100)])))
        .then_ok();
    assert_eq!(placed.weight_g, u32::MAX);
}

// ---- cancel ---------------------------------------------------------------------------

fn cancel(order: &str) -> CancelOrder {
    CancelOrder {
        order: order.into(),
        reason: None,
    }
}

#[test]
fn an_order_waiting_for_its_pick_can_be_cancelled() {
    let cancelled = with(registry(), [placed("o1", &[("veg-pack", 1)])])
        .when(|views| cancel_order(views, cancel("o1")))
        .then_ok();
    assert_eq!(cancelled.community, "tianlun");
}

#[test]
fn cancel_rejections() {
    given(&registry())
        .when(|views| cancel_order(views, cancel("o1")))
        .then_refused(ErrorCode::UnknownOrder);
    with(
        registry(),
        [
            placed("o1", &[("veg-pack", 1)]),
            picked_event("o1", vec![picked_in_full("veg-pack", 1)]),
        ],
    )
    .when(|views| cancel_order(views, cancel("o1")))
    .then_refused(ErrorCode::NotCancellable);
}

// ---- pick -----------------------------------------------------------------------------

fn short(item: &str, ordered: u32, picked: u32) -> PickLine {
    PickLine {
        item: item.into(),
        ordered,
        outcome: PickOutcome::Short,
        picked,
        substitute: None,
    }
}

fn substituted(item: &str, ordered: u32, substitute: &str, quantity: u32) -> PickLine {
    PickLine {
        item: item.into(),
        ordered,
        outcome: PickOutcome::Substituted,
        picked: 0,
        substitute: Some(Substitute {
            item: substitute.into(),
            quantity,
        }),
    }
}

#[test]
fn pick_rejections() {
    let placed_o1 = with(registry(), [placed("o1", &[("veg-pack", 2)])]);
    let cases: Vec<(PostPick, ErrorCode)> = vec![
        (
            pick("nope", vec![picked_in_full("veg-pack", 2)]),
            ErrorCode::UnknownOrder,
        ),
        (
            PostPick {
                partner: "shuocheng".into(),
                ..pick("o1", vec![picked_in_full("veg-pack", 2)])
            },
            ErrorCode::WrongPartner,
        ),
        (pick("o1", vec![]), ErrorCode::InvalidPick),
        (
            pick("o1", vec![short("veg-pack", 2, 2)]),
            ErrorCode::InvalidPick,
        ),
        (
            pick("o1", vec![picked_in_full("veg-pack", 1)]),
            ErrorCode::PickLinesMismatch,
        ),
        (
            pick("o1", vec![picked_in_full("eggs", 2)]),
            ErrorCode::PickLinesMismatch,
        ),
        (
            pick(
                "o1",
                vec![picked_in_full("veg-pack", 2), picked_in_full("veg-pack", 2)],
            ),
            ErrorCode::PickLinesMismatch,
        ),
        (
            pick("o1", vec![substituted("veg-pack", 2, "caviar", 1)]),
            ErrorCode::UnknownItem,
        ),
        // No watermelon on yonghui's shelf.
        (
            pick("o1", vec![substituted("veg-pack", 2, "watermelon", 1)]),
            ErrorCode::InsufficientStock,
        ),
    ];
    for (command, code) in cases {
        placed_o1
            .when(|views| pick_order(views, command.clone()))
            .then_refused(code);
    }
}

#[test]
fn a_pick_may_take_its_own_reservation_and_what_is_left() {
    // 5 on the shelf: o1 reserved 2, the pick of 2 is fine.
    with(registry(), [placed("o1", &[("veg-pack", 2)])])
        .when(|views| pick_order(views, pick("o1", vec![picked_in_full("veg-pack", 2)])))
        .then_ok();
    // o2 reserved 3 of 5, o1 could reserve only 2 of its 4: picking 4 is more than there is.
    with(
        registry(),
        [
            placed("o2", &[("veg-pack", 3)]),
            placed("o1", &[("veg-pack", 4)]),
        ],
    )
    .when(|views| pick_order(views, pick("o1", vec![picked_in_full("veg-pack", 4)])))
    .then_refused(ErrorCode::InsufficientStock);
}

#[test]
fn a_pick_of_an_order_already_picked_is_a_conflict() {
    with(
        registry(),
        [
            placed("o1", &[("veg-pack", 1)]),
            picked_event("o1", vec![picked_in_full("veg-pack", 1)]),
        ],
    )
    .when(|views| pick_order(views, pick("o1", vec![picked_in_full("veg-pack", 1)])))
    .then_refused(ErrorCode::NotWaitingForPick);
}

#[test]
fn a_pick_before_inventory_saw_the_order_asks_to_retry() {
    // Delivery has the order, inventory does not yet.
    let mut state = with(registry(), [placed("o1", &[("veg-pack", 1)])]);
    state.inventory = given(&registry()).inventory;
    state
        .when(|views| pick_order(views, pick("o1", vec![picked_in_full("veg-pack", 1)])))
        .then_refused(ErrorCode::NotYetVisible);
}

#[test]
fn a_pick_published_straight_to_nats_meets_the_same_line_rules() {
    let mut state = with(registry(), [placed("o1", &[("veg-pack", 2)])]);
    let mismatched = picked_event("o1", vec![picked_in_full("veg-pack", 1)]);
    for projection in ["delivery", "inventory"] {
        let rejection = state
            .when_event(projection, mismatched.clone())
            .expect_err("a pick that does not answer the order is parked");
        assert_eq!(rejection.reason, Reason::InvalidPick, "{projection}");
    }
}

// ---- restock --------------------------------------------------------------------------

#[test]
fn restock_table() {
    let restock_of = |item: &str, quantity| Restock {
        partner: "yonghui".into(),
        item: item.into(),
        quantity,
    };
    let given = given(&registry());
    given
        .when(|views| restock(views, restock_of("veg-pack", 0)))
        .then_refused(ErrorCode::QuantityOutOfRange);
    given
        .when(|views| restock(views, restock_of("veg-pack", MAX_RESTOCK + 1)))
        .then_refused(ErrorCode::QuantityOutOfRange);
    given
        .when(|views| restock(views, restock_of("caviar", 1)))
        .then_refused(ErrorCode::UnknownItem);
    given
        .when(|views| restock(views, restock_of("veg-pack", MAX_RESTOCK)))
        .then_ok();
}
