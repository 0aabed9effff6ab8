//! Parcels and medicine errands: orders that reach the checkpoint without a pick.

use lifeline_events::{ErrandRoute, Event, Proof};

use super::*;
use crate::order::Stage;

fn parcel(household: &str, carrier: &str, tracking: &str, weight_g: u32) -> ReceiveParcel {
    ReceiveParcel {
        order: "p1".into(),
        household: household.into(),
        carrier: carrier.into(),
        tracking: tracking.into(),
        weight_g,
    }
}

fn errand(household: &str, place: &str, medicine: &str) -> RequestErrand {
    RequestErrand {
        order: "e1".into(),
        household: household.into(),
        place: place.into(),
        medicine: medicine.into(),
        on_behalf_by: None,
    }
}

fn accept(volunteer: &str) -> AcceptErrand {
    AcceptErrand {
        order: "e1".into(),
        volunteer: volunteer.into(),
    }
}

fn collect(volunteer: &str, route: ErrandRoute, weight_g: u32) -> CollectErrand {
    CollectErrand {
        order: "e1".into(),
        volunteer: volunteer.into(),
        route,
        weight_g,
    }
}

/// The registry, then errand e1 requested (and accepted by vol-007, and collected).
fn errand_events(accepted: bool, collected: Option<ErrandRoute>) -> Vec<Event> {
    let mut events = registry();
    let requested = given(&events)
        .when(|views| request_errand(views, errand(HOUSEHOLD, "Tongji Hospital", "insulin")))
        .then_ok();
    events.push(Event::ErrandRequested(requested));
    if accepted {
        let event = given(&events)
            .when(|views| accept_errand(views, accept("vol-007")))
            .then_ok();
        events.push(Event::ErrandAccepted(event));
    }
    if let Some(route) = collected {
        let event = given(&events)
            .when(|views| collect_errand(views, collect("vol-007", route, 300)))
            .then_ok();
        events.push(Event::ErrandCollected(event));
    }
    events
}

#[test]
fn a_parcel_starts_at_the_checkpoint_due_the_same_day() {
    let received = given(&registry())
        .when(|views| receive_parcel(views, parcel(HOUSEHOLD, " SF Express ", "SF1234", 1_200)))
        .then_ok();
    assert_eq!(received.priority, Priority::Priority);
    assert_eq!(received.carrier, "SF Express");
    assert_eq!(received.building, "tianlun-b07");
    let after = with(registry(), [Event::ParcelReceived(received)]);
    let record = after.views().order("p1").expect("reads").expect("known");
    assert_eq!(record.status.stage, Stage::AtCheckpoint);
    assert_eq!(record.kind, crate::delivery::OrderKind::Parcel);
    after
        .when(|views| {
            cancel_order(
                views,
                CancelOrder {
                    order: "p1".into(),
                    reason: None,
                },
            )
        })
        .then_refused(ErrorCode::NotCancellable);
}

#[test]
fn parcel_rejections() {
    let long = "x".repeat(MAX_TEXT_CHARS + 1);
    let cases = [
        (
            parcel("nobody", "SF", "SF1", 100),
            ErrorCode::UnknownHousehold,
        ),
        (parcel(HOUSEHOLD, " ", "SF1", 100), ErrorCode::InvalidText),
        (parcel(HOUSEHOLD, "SF", &long, 100), ErrorCode::InvalidText),
        (
            parcel(HOUSEHOLD, "SF", "SF1", 0),
            ErrorCode::WeightOutOfRange,
        ),
        (
            parcel(HOUSEHOLD, "SF", "SF1", MAX_PARCEL_G + 1),
            ErrorCode::WeightOutOfRange,
        ),
    ];
    for (command, code) in cases {
        given(&registry())
            .when(|views| receive_parcel(views, command.clone()))
            .then_refused(code);
    }
}

#[test]
fn an_errand_is_urgent_and_one_volunteer_takes_it() {
    let events = errand_events(false, None);
    let Some(Event::ErrandRequested(requested)) = events.last() else {
        panic!("requested");
    };
    assert_eq!(requested.priority, Priority::Urgent);
    given(&events)
        .when(|views| accept_errand(views, accept("vol-hg-001")))
        .then_refused(ErrorCode::UnknownCourier);
    given(&events)
        .when(|views| collect_errand(views, collect("vol-007", ErrandRoute::Door, 300)))
        .then_refused(ErrorCode::ErrandNotOpen);
    let accepted = errand_events(true, None);
    given(&accepted)
        .when(|views| accept_errand(views, accept("vol-007")))
        .then_refused(ErrorCode::ErrandNotOpen);
    let mut other = registry();
    other.push(volunteer("vol-008", "tianlun"));
    other.extend(accepted.iter().skip(registry().len()).cloned());
    given(&other)
        .when(|views| collect_errand(views, collect("vol-008", ErrandRoute::Door, 300)))
        .then_refused(ErrorCode::NotYourErrand);
    given(&accepted)
        .when(|views| collect_errand(views, collect("vol-007", ErrandRoute::Door, 0)))
        .then_refused(ErrorCode::WeightOutOfRange);
    // Cancellable until collected.
    let cancel = |views: &Views<'_>| {
        cancel_order(
            views,
            CancelOrder {
                order: "e1".into(),
                reason: None,
            },
        )
    };
    given(&accepted).when(cancel).then_ok();
    given(&errand_events(true, Some(ErrandRoute::Checkpoint)))
        .when(cancel)
        .then_refused(ErrorCode::NotCancellable);
}

#[test]
fn errand_rejections() {
    let long = "x".repeat(MAX_TEXT_CHARS + 1);
    let cases = [
        (
            errand("nobody", "Tongji", "insulin"),
            ErrorCode::UnknownHousehold,
        ),
        (errand(HOUSEHOLD, "", "insulin"), ErrorCode::InvalidText),
        (errand(HOUSEHOLD, "Tongji", &long), ErrorCode::InvalidText),
    ];
    for (command, code) in cases {
        given(&registry())
            .when(|views| request_errand(views, command.clone()))
            .then_refused(code);
    }
    // A goods order is not an errand.
    with(registry(), [placed("o1", &[("veg-pack", 1)])])
        .when(|views| {
            accept_errand(
                views,
                AcceptErrand {
                    order: "o1".into(),
                    volunteer: "vol-007".into(),
                },
            )
        })
        .then_refused(ErrorCode::NotAnErrand);
}

#[test]
fn an_errand_taken_to_the_door_is_its_own_run() {
    let events = errand_events(true, Some(ErrandRoute::Door));
    let out = given(&events);
    let record = out.views().order("e1").expect("reads").expect("known");
    assert_eq!(record.status.stage, Stage::OnRun);
    assert_eq!(record.run.as_deref(), Some("e1"));
    let drop = |run: &str| RecordDrop {
        run: run.into(),
        order: "e1".into(),
        outcome: DropOutcome::Delivered {
            proof: Proof::default(),
        },
    };
    let delivered = out.when(|views| record_drop(views, drop("e1"))).then_ok();
    assert!(matches!(delivered, Event::DropDelivered(ref d) if d.run == "e1"));
    out.when(|views| record_drop(views, drop("r1")))
        .then_refused(ErrorCode::UnknownRun);
    // Collected to the checkpoint, it waits for a tricycle: no drop of its own.
    given(&errand_events(true, Some(ErrandRoute::Checkpoint)))
        .when(|views| record_drop(views, drop("e1")))
        .then_refused(ErrorCode::NotOnRun);
}
