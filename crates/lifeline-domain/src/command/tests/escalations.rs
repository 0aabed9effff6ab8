//! Closing escalations: only an order escalated now may be closed, with a valid outcome.

use lifeline_events::{
    DropFailed, DropFailure, EscalationOutcome, Event, OrderPlaced, Priority, RunReturned,
};

use super::*;
use crate::delivery::{Disposition, EscalationReason, OrderRecord};
use crate::order::MAX_DROP_ATTEMPTS;

/// Unix ms of the test events' fixed time, 2020-06-14 08:00 +08:00.
fn placed_ms() -> u64 {
    let time = time::macros::datetime!(2020-06-14 08:00 +08:00);
    u64::try_from(time.unix_timestamp_nanos() / 1_000_000).expect("after 1970")
}

const HOUR_MS: u64 = 3_600_000;

fn dialysis_kit(order: &str) -> Event {
    Event::OrderPlaced(OrderPlaced {
        order: order.into(),
        community: "tianlun".into(),
        building: "tianlun-b07".into(),
        unit: "tianlun-b07-u8".into(),
        household: "tianlun-b07-u8-0302".into(),
        partner: "yonghui".into(),
        lines: lines(&[("med-insulin", 1)]),
        priority: Priority::Urgent,
        weight_g: 100,
        on_behalf_by: Some("staff-01".into()),
        campaign: None,
    })
}

fn failed(run: &str) -> Event {
    Event::DropFailed(DropFailed {
        order: "k1".into(),
        run: run.into(),
        community: "tianlun".into(),
        household: "tianlun-b07-u8-0302".into(),
        reason: DropFailure::NoAnswer,
        note: None,
    })
}

fn returned(run: &str) -> Event {
    Event::RunReturned(RunReturned {
        run: run.into(),
        community: "tianlun".into(),
        tricycle: "tri-01".into(),
    })
}

/// The story's case: a dialysis kit whose three drops failed.
fn kit_failed_three_times() -> Vec<Event> {
    let mut events = registry();
    events.extend([
        dialysis_kit("k1"),
        picked_event("k1", vec![picked_in_full("med-insulin", 1)]),
        arrived(&["k1"]),
    ]);
    for attempt in 1..=MAX_DROP_ATTEMPTS {
        let run = format!("r{attempt}");
        events.extend([
            run_planned(&run, &["k1"]),
            departed(&run),
            failed(&run),
            returned(&run),
        ]);
    }
    events
}

fn close(order: &str, outcome: EscalationOutcome) -> CloseEscalation {
    CloseEscalation {
        order: order.into(),
        outcome,
        replacement: None,
        note: None,
    }
}

fn record(given: &Given, order: &str) -> OrderRecord {
    given.views().order(order).expect("reads").expect("known")
}

#[test]
fn a_kit_that_failed_three_drops_is_escalated_until_staff_close_it() {
    let escalated = given(&kit_failed_three_times());
    let kit = record(&escalated, "k1");
    assert_eq!(
        kit.disposition(placed_ms()),
        Disposition::Escalated(EscalationReason::DropsFailed)
    );
    let closed = escalated
        .when(|views| {
            close_escalation(
                views,
                close("k1", EscalationOutcome::DeliveredByHand),
                placed_ms(),
            )
        })
        .then_ok();
    let after = with(kit_failed_three_times(), [Event::EscalationClosed(closed)]);
    assert_eq!(
        record(&after, "k1").disposition(placed_ms()),
        Disposition::Closed(EscalationOutcome::DeliveredByHand)
    );
    after
        .when(|views| close_escalation(views, close("k1", EscalationOutcome::Refused), placed_ms()))
        .then_refused(ErrorCode::NotEscalated);
}

#[test]
fn an_urgent_order_escalates_when_overdue_and_a_routine_one_later() {
    let mut events = registry();
    events.extend([dialysis_kit("k1"), placed("o1", &[("veg-pack", 1)])]);
    let given = given(&events);
    let at = |hours: u64| placed_ms() + hours * HOUR_MS;
    for (order, hours, escalated) in [
        ("k1", 2, false),
        ("k1", 3, true),
        ("o1", 3, false),
        ("o1", 16, true),
    ] {
        let result = close_escalation(
            &given.views(),
            close(order, EscalationOutcome::DeliveredByHand),
            at(hours),
        );
        assert_eq!(
            result.is_ok(),
            escalated,
            "{order} after {hours} h: {result:?}"
        );
    }
}

#[test]
fn close_rejections() {
    let escalated = given(&kit_failed_three_times());
    let mut events = kit_failed_three_times();
    events.push(placed("o2", &[("veg-pack", 1)]));
    let with_other = given(&events);
    let long_note = CloseEscalation {
        note: Some("x".repeat(MAX_NOTE_CHARS + 1)),
        ..close("k1", EscalationOutcome::Refused)
    };
    let replacement_of_another_household = CloseEscalation {
        replacement: Some("o2".into()),
        ..close("k1", EscalationOutcome::Reordered)
    };
    let replacement_without_reorder = CloseEscalation {
        replacement: Some("o2".into()),
        ..close("k1", EscalationOutcome::Refused)
    };
    let cases: Vec<(&Given, CloseEscalation, ErrorCode)> = vec![
        (
            &escalated,
            close("k9", EscalationOutcome::Refused),
            ErrorCode::UnknownOrder,
        ),
        (&escalated, long_note, ErrorCode::NoteTooLong),
        (
            &with_other,
            replacement_of_another_household,
            ErrorCode::InvalidReplacement,
        ),
        (
            &with_other,
            replacement_without_reorder,
            ErrorCode::InvalidReplacement,
        ),
        (
            &with_other,
            close("o2", EscalationOutcome::Refused),
            ErrorCode::NotEscalated,
        ),
    ];
    for (given, command, code) in cases {
        given
            .when(|views| close_escalation(views, command.clone(), placed_ms()))
            .then_refused(code);
    }
}
