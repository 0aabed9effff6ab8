//! The delivery handler by example, given/when/then: one rule a test.

use lifeline_events::{
    ArrivedAtCheckpoint, DropDelivered, DropFailed, DropFailure, Event, OrderLine, OrderPicked,
    OrderPlaced, PickLine, PickOutcome, Priority, RunDeparted, RunPlanned, RunReturned, Stop,
};

use super::{OrderRecord, RunRecord, RunState};
use crate::order::{MAX_DROP_ATTEMPTS, Stage};
use crate::testing::{Given, given_to};

fn given(events: &[Event]) -> Given {
    given_to(super::NAME, events)
}
use crate::{Applied, Reason, StateTxExt};

fn placed(order: &str) -> Event {
    Event::OrderPlaced(OrderPlaced {
        order: order.into(),
        community: "tianlun".into(),
        building: "tianlun-b07".into(),
        unit: "tianlun-b07-u8".into(),
        household: "tianlun-b07-u8-0301".into(),
        partner: "yonghui".into(),
        lines: vec![OrderLine {
            item: "veg-pack".into(),
            quantity: 2,
        }],
        priority: Priority::Routine,
        weight_g: 8_000,
        on_behalf_by: None,
        campaign: None,
    })
}

fn picked(order: &str, picked: u32) -> Event {
    Event::OrderPicked(OrderPicked {
        order: order.into(),
        community: "tianlun".into(),
        partner: "yonghui".into(),
        lines: vec![PickLine {
            item: "veg-pack".into(),
            ordered: 2,
            outcome: if picked == 2 {
                PickOutcome::Picked
            } else {
                PickOutcome::Short
            },
            picked,
            substitute: None,
        }],
        batch: None,
    })
}

fn arrived(order: &str) -> Event {
    Event::ArrivedAtCheckpoint(ArrivedAtCheckpoint {
        arrival: "a1".into(),
        community: "tianlun".into(),
        partner: "yonghui".into(),
        orders: vec![order.into()],
        vehicle: None,
        driver: None,
        batches: Vec::new(),
    })
}

fn planned(run: &str, order: &str) -> Event {
    Event::RunPlanned(RunPlanned {
        run: run.into(),
        community: "tianlun".into(),
        tricycle: "tri-01".into(),
        stops: vec![Stop {
            building: "tianlun-b07".into(),
            unit: "tianlun-b07-u8".into(),
            household: "tianlun-b07-u8-0301".into(),
            orders: vec![order.into()],
        }],
        load_g: 8_000,
        distance_m: None,
    })
}

fn departed(run: &str) -> Event {
    Event::RunDeparted(RunDeparted {
        run: run.into(),
        community: "tianlun".into(),
        tricycle: "tri-01".into(),
        courier: "vol-007".into(),
    })
}

fn returned(run: &str) -> Event {
    Event::RunReturned(RunReturned {
        run: run.into(),
        community: "tianlun".into(),
        tricycle: "tri-01".into(),
    })
}

fn delivered(run: &str, order: &str) -> Event {
    Event::DropDelivered(DropDelivered {
        order: order.into(),
        run: run.into(),
        community: "tianlun".into(),
        household: "tianlun-b07-u8-0301".into(),
        proof: Default::default(),
    })
}

fn failed(run: &str, order: &str) -> Event {
    Event::DropFailed(DropFailed {
        order: order.into(),
        run: run.into(),
        community: "tianlun".into(),
        household: "tianlun-b07-u8-0301".into(),
        reason: DropFailure::NoAnswer,
        note: None,
    })
}

fn order_of(given: &Given, order: &str) -> OrderRecord {
    given
        .delivery
        .get_json(super::ORDERS, order)
        .expect("row decodes")
        .expect("order recorded")
}

/// o1 out on run r1.
fn out() -> Vec<Event> {
    vec![
        placed("o1"),
        picked("o1", 2),
        arrived("o1"),
        planned("r1", "o1"),
        departed("r1"),
    ]
}

#[test]
fn an_order_placed_twice_is_parked() {
    let rejection = given(&[placed("o1")])
        .when_event("delivery", placed("o1"))
        .expect_err("duplicate");
    assert_eq!(rejection.reason, Reason::DuplicateOrder);
}

#[test]
fn a_pick_with_nothing_in_it_ends_the_order_at_once() {
    let given = given(&[placed("o1"), picked("o1", 0)]);
    let order = order_of(&given, "o1");
    assert_eq!(order.status.stage, Stage::NothingPicked);
    assert_eq!(order.status.failed_drops, 0);
    assert!(order.is_final);
    assert_eq!(
        order.history.last().and_then(|t| t.detail.as_deref()),
        Some("nothing could be picked")
    );
}

#[test]
fn a_short_pick_hands_over_what_was_picked() {
    let given = given(&[placed("o1"), picked("o1", 1)]);
    let order = order_of(&given, "o1");
    assert_eq!(order.status.stage, Stage::Picked);
    assert_eq!(
        order.items,
        vec![OrderLine {
            item: "veg-pack".into(),
            quantity: 1
        }]
    );
}

#[test]
fn a_drop_for_another_run_is_parked() {
    let mut events = out();
    events.extend([
        placed("o2"),
        picked("o2", 2),
        arrived("o2"),
        planned("r2", "o2"),
    ]);
    let rejection = given(&events)
        .when_event("delivery", delivered("r1", "o2"))
        .expect_err("o2 rides r2");
    assert_eq!(rejection.reason, Reason::ImpossibleTransition);
}

#[test]
fn a_delivered_drop_finishes_the_order() {
    let given = given(&[out(), vec![delivered("r1", "o1")]].concat());
    let order = order_of(&given, "o1");
    assert_eq!(order.status.stage, Stage::Delivered);
    assert!(order.is_final);
}

#[test]
fn a_run_back_with_an_undropped_order_puts_it_at_the_checkpoint() {
    let given = given(&[out(), vec![returned("r1")]].concat());
    assert_eq!(order_of(&given, "o1").status.stage, Stage::AtCheckpoint);
    let run: RunRecord = given
        .delivery
        .get_json(super::RUNS, "r1")
        .expect("row")
        .expect("run");
    assert_eq!(run.state, RunState::Returned);
}

#[test]
fn the_third_failed_drop_is_final() {
    let mut events = out();
    for attempt in 1..MAX_DROP_ATTEMPTS {
        let run = format!("r{attempt}");
        let next = format!("r{}", attempt + 1);
        events.extend([
            failed(&run, "o1"),
            returned(&run),
            planned(&next, "o1"),
            departed(&next),
        ]);
    }
    let mut given = given(&events);
    let last = format!("r{MAX_DROP_ATTEMPTS}");
    assert_eq!(
        given.when_event("delivery", failed(&last, "o1")),
        Ok(Applied::Changed)
    );
    let order = order_of(&given, "o1");
    assert_eq!(
        (
            order.status.stage,
            order.status.failed_drops,
            order.is_final
        ),
        (Stage::Failed, MAX_DROP_ATTEMPTS, true)
    );
}

#[test]
fn a_run_cannot_depart_twice() {
    let rejection = given(&out())
        .when_event("delivery", departed("r1"))
        .expect_err("already out");
    assert_eq!(rejection.reason, Reason::ImpossibleTransition);
}

fn parcel(order: &str) -> Event {
    Event::ParcelReceived(lifeline_events::ParcelReceived {
        order: order.into(),
        community: "tianlun".into(),
        building: "tianlun-b07".into(),
        unit: "tianlun-b07-u8".into(),
        household: "tianlun-b07-u8-0301".into(),
        carrier: "SF Express".into(),
        tracking: "SF1".into(),
        weight_g: 1_000,
        priority: Priority::Priority,
    })
}

#[test]
fn an_undeliverable_parcel_escalates_after_its_third_failed_drop() {
    let mut events = vec![parcel("p1")];
    for attempt in 1..=MAX_DROP_ATTEMPTS {
        let run = format!("r{attempt}");
        events.extend([planned(&run, "p1"), departed(&run), failed(&run, "p1")]);
        if attempt < MAX_DROP_ATTEMPTS {
            events.push(returned(&run));
        }
    }
    let record = order_of(&given(&events), "p1");
    assert_eq!(record.kind, super::OrderKind::Parcel);
    assert!(record.is_final);
    assert_eq!(
        record.escalation.map(|e| e.reason),
        Some(super::EscalationReason::DropsFailed)
    );
    // A parcel is never picked: a pick for it is parked.
    let rejection = given(&[parcel("p1")])
        .when_event("delivery", picked("p1", 2))
        .expect_err("not a partner's order");
    assert_eq!(rejection.reason, Reason::WrongPartner);
}

#[test]
fn a_vulnerable_household_counts_as_unserved_from_registration_until_a_delivery() {
    let household = Event::HouseholdRegistered(lifeline_events::HouseholdRegistered {
        community: "tianlun".into(),
        building: "tianlun-b07".into(),
        unit: "tianlun-b07-u8".into(),
        household: "tianlun-b07-u8-0301".into(),
        door: "301".into(),
        head_count: 1,
        vulnerabilities: vec![lifeline_events::Vulnerability::Dialysis],
    });
    let row = |given: &Given| -> super::VulnerableHousehold {
        given
            .delivery
            .get_json(super::VULNERABLE, "tianlun-b07-u8-0301")
            .expect("row decodes")
            .expect("vulnerable")
    };
    let registered = row(&given(std::slice::from_ref(&household)));
    let hour = 3_600_000;
    let day = super::UNSERVED_ALERT_HOURS;
    assert!(!registered.unserved_for(registered.since_ms + 23 * hour, day));
    assert!(registered.unserved_for(registered.since_ms + 24 * hour, day));
    let mut events = vec![household.clone()];
    events.extend(out());
    events.extend([delivered("r1", "o1"), household]);
    let served = row(&given(&events));
    assert_eq!(
        served.since_ms, registered.since_ms,
        "re-registration keeps it"
    );
    let at = served.last_served_ms.expect("served");
    assert!(!served.unserved_for(at + 23 * hour, day));
    assert!(served.unserved_for(at + 24 * hour, day));
}

fn raised(order: &str) -> Event {
    Event::OrderReprioritized(lifeline_events::OrderReprioritized {
        order: order.into(),
        community: "tianlun".into(),
        household: "tianlun-b07-u8-0301".into(),
        priority: Priority::Priority,
        reason: "household registered as dialysis".into(),
    })
}

/// A raised order shows its new priority and moves to that priority's part of the
/// open-orders index; a raise of a delivered order changes nothing.
#[test]
fn a_raised_order_moves_in_the_open_index_and_a_final_one_stays() {
    let mut open_one = given(&[placed("o1")]);
    assert_eq!(
        open_one.when_event(super::NAME, raised("o1")),
        Ok(Applied::Changed)
    );
    assert_eq!(order_of(&open_one, "o1").priority, Priority::Priority);
    let open: Vec<String> = crate::StateTx::scan_prefix(&open_one.delivery, super::OPEN, "")
        .into_iter()
        .map(|(key, _)| key)
        .collect();
    assert_eq!(open.len(), 1, "{open:?}");
    assert!(open[0].starts_with(&super::OpenKey::prefix(Priority::Priority)));
    assert_eq!(
        open_one.when_event(super::NAME, raised("o1")),
        Ok(Applied::Ignored)
    );

    let mut events = out();
    events.push(delivered("r1", "o1"));
    let mut done = given(&events);
    assert_eq!(
        done.when_event(super::NAME, raised("o1")),
        Ok(Applied::Ignored)
    );
    assert_eq!(order_of(&done, "o1").priority, Priority::Routine);
}
