//! The command rules, given/when/then: one line a rule, tables where rules are alike.
//! Shared fixtures here; the rules of orders and picks in `orders`, of the checkpoint and
//! runs in `runs`.

mod errands;
mod escalations;
mod group_buys;
mod orders;
mod registry;
mod runs;

use lifeline_events::{
    Event, HouseholdRegistered, ItemKind, ItemRegistered, OrderLine, OrderPlaced, PickLine,
    PickOutcome, Priority, RunDeparted, RunPlanned, StockReceived, Stop, VolunteerRegistered,
    Vulnerability,
};

use super::*;
use crate::testing::{Given, given};

pub(super) const HOUSEHOLD: &str = "tianlun-b07-u8-0301";

pub(super) fn household(id: &str, vulnerabilities: Vec<Vulnerability>) -> Event {
    Event::HouseholdRegistered(HouseholdRegistered {
        community: "tianlun".into(),
        building: "tianlun-b07".into(),
        unit: "tianlun-b07-u8".into(),
        household: id.into(),
        door: "301".into(),
        head_count: 3,
        vulnerabilities,
    })
}

pub(super) fn item(id: &str, kind: ItemKind, weight_g: u32) -> Event {
    Event::ItemRegistered(ItemRegistered {
        item: id.into(),
        name: id.into(),
        kind,
        weight_g,
        name_zh: None,
    })
}

pub(super) fn stock(partner: &str, item: &str, quantity: u32) -> Event {
    Event::StockReceived(StockReceived {
        partner: partner.into(),
        item: item.into(),
        quantity,
    })
}

pub(super) fn volunteer(id: &str, community: &str) -> Event {
    Event::VolunteerRegistered(VolunteerRegistered {
        community: community.into(),
        volunteer: id.into(),
        name: id.into(),
        group: "rapid_delivery".into(),
    })
}

/// A registry with one household, three items and stock at yonghui.
pub(super) fn registry() -> Vec<Event> {
    vec![
        household(HOUSEHOLD, vec![]),
        household("tianlun-b07-u8-0302", vec![Vulnerability::Dialysis]),
        item("veg-pack", ItemKind::Package, 4_000),
        item("watermelon", ItemKind::Item, 5_000),
        item("med-insulin", ItemKind::Medicine, 100),
        stock("yonghui", "veg-pack", 5),
        stock("yonghui", "med-insulin", 2),
        volunteer("vol-007", "tianlun"),
        volunteer("vol-hg-001", "huangtugang"),
    ]
}

pub(super) fn lines(lines: &[(&str, u32)]) -> Vec<OrderLine> {
    lines
        .iter()
        .map(|(item, quantity)| OrderLine {
            item: (*item).into(),
            quantity: *quantity,
        })
        .collect()
}

pub(super) fn place(household: &str, partner: &str, order_lines: &[(&str, u32)]) -> PlaceOrder {
    PlaceOrder {
        order: "o1".into(),
        household: household.into(),
        partner: partner.into(),
        lines: lines(order_lines),
        priority: None,
        on_behalf_by: None,
    }
}

pub(super) fn placed(order: &str, order_lines: &[(&str, u32)]) -> Event {
    Event::OrderPlaced(OrderPlaced {
        order: order.into(),
        community: "tianlun".into(),
        building: "tianlun-b07".into(),
        unit: "tianlun-b07-u8".into(),
        household: HOUSEHOLD.into(),
        partner: "yonghui".into(),
        lines: lines(order_lines),
        priority: Priority::Routine,
        weight_g: 4_000,
        on_behalf_by: None,
        campaign: None,
    })
}

pub(super) fn picked_in_full(item: &str, quantity: u32) -> PickLine {
    PickLine {
        item: item.into(),
        ordered: quantity,
        outcome: PickOutcome::Picked,
        picked: quantity,
        substitute: None,
    }
}

pub(super) fn pick(order: &str, lines: Vec<PickLine>) -> PostPick {
    PostPick {
        order: order.into(),
        partner: "yonghui".into(),
        lines,
        batch: None,
    }
}

pub(super) fn picked_event(order: &str, lines: Vec<PickLine>) -> Event {
    Event::OrderPicked(lifeline_events::OrderPicked {
        order: order.into(),
        community: "tianlun".into(),
        partner: "yonghui".into(),
        lines,
        batch: None,
    })
}

pub(super) fn arrived(orders: &[&str]) -> Event {
    Event::ArrivedAtCheckpoint(lifeline_events::ArrivedAtCheckpoint {
        arrival: "a1".into(),
        community: "tianlun".into(),
        partner: "yonghui".into(),
        orders: orders.iter().map(|o| (*o).into()).collect(),
        vehicle: None,
        driver: None,
        batches: Vec::new(),
    })
}

pub(super) fn run_planned(run: &str, orders: &[&str]) -> Event {
    Event::RunPlanned(RunPlanned {
        run: run.into(),
        community: "tianlun".into(),
        tricycle: "tri-01".into(),
        stops: vec![Stop {
            building: "tianlun-b07".into(),
            unit: "tianlun-b07-u8".into(),
            household: HOUSEHOLD.into(),
            orders: orders.iter().map(|o| (*o).into()).collect(),
        }],
        load_g: 4_000,
        distance_m: None,
    })
}

pub(super) fn departed(run: &str) -> Event {
    Event::RunDeparted(RunDeparted {
        run: run.into(),
        community: "tianlun".into(),
        tricycle: "tri-01".into(),
        courier: "vol-007".into(),
    })
}

/// o1 (veg-pack x1) picked, at the checkpoint, on run r1.
pub(super) fn on_run() -> Vec<Event> {
    let mut events = registry();
    events.extend([
        placed("o1", &[("veg-pack", 1)]),
        picked_event("o1", vec![picked_in_full("veg-pack", 1)]),
        arrived(&["o1"]),
        run_planned("r1", &["o1"]),
    ]);
    events
}

pub(super) fn with(mut events: Vec<Event>, more: impl IntoIterator<Item = Event>) -> Given {
    events.extend(more);
    given(&events)
}
