//! The checkpoint and the tricycle: arrivals, departures, returns and drops.

use lifeline_events::Proof;

use super::*;
use crate::command::*;
use crate::testing::given;

// ---- arrive ---------------------------------------------------------------------------

fn arrival(orders: &[&str]) -> Arrival {
    Arrival {
        arrival: "a1".into(),
        community: "tianlun".into(),
        partner: "yonghui".into(),
        orders: orders.iter().map(|o| (*o).into()).collect(),
        vehicle: None,
        driver: None,
        batches: Vec::new(),
    }
}

#[test]
fn arrival_rejections() {
    let state = with(
        registry(),
        [
            placed("o1", &[("veg-pack", 1)]),
            placed("o2", &[("veg-pack", 1)]),
            picked_event("o1", vec![picked_in_full("veg-pack", 1)]),
        ],
    );
    let too_many: Vec<String> = (0..=MAX_ARRIVAL_ORDERS).map(|n| format!("o{n}")).collect();
    let too_many: Vec<&str> = too_many.iter().map(String::as_str).collect();
    let cases: Vec<(Arrival, ErrorCode)> = vec![
        (arrival(&[]), ErrorCode::ArrivalSize),
        (arrival(&too_many), ErrorCode::ArrivalSize),
        (arrival(&["o1", "o1"]), ErrorCode::DuplicateOrder),
        (arrival(&["o9"]), ErrorCode::UnknownOrder),
        (
            Arrival {
                partner: "shuocheng".into(),
                ..arrival(&["o1"])
            },
            ErrorCode::OrderElsewhere,
        ),
        (
            Arrival {
                community: "huangtugang".into(),
                ..arrival(&["o1"])
            },
            ErrorCode::OrderElsewhere,
        ),
        (arrival(&["o1", "o2"]), ErrorCode::NotPicked),
    ];
    for (command, code) in cases {
        state
            .when(|views| arrive(views, command.clone()))
            .then_refused(code);
    }
    state
        .when(|views| arrive(views, arrival(&["o1"])))
        .then_ok();
}

// ---- runs and drops --------------------------------------------------------------------

fn depart(run: &str, courier: &str) -> DepartRun {
    DepartRun {
        run: run.into(),
        courier: Some(courier.into()),
    }
}

#[test]
fn depart_table() {
    let planned = given(&on_run());
    planned
        .when(|views| depart_run(views, depart("r9", "vol-007")))
        .then_refused(ErrorCode::UnknownRun);
    planned
        .when(|views| depart_run(views, depart("r1", "vol-999")))
        .then_refused(ErrorCode::UnknownCourier);
    // A volunteer of another community cannot ride Tianlun's run.
    planned
        .when(|views| depart_run(views, depart("r1", "vol-hg-001")))
        .then_refused(ErrorCode::UnknownCourier);
    let departed_run = planned
        .when(|views| depart_run(views, depart("r1", "vol-007")))
        .then_ok();
    assert_eq!(departed_run.tricycle, "tri-01");
    with(on_run(), [departed("r1")])
        .when(|views| depart_run(views, depart("r1", "vol-007")))
        .then_refused(ErrorCode::RunNotPlanned);
}

#[test]
fn return_table() {
    let run = |run: &str| ReturnRun { run: run.into() };
    given(&on_run())
        .when(|views| return_run(views, run("r1")))
        .then_refused(ErrorCode::RunNotOut);
    given(&on_run())
        .when(|views| return_run(views, run("r9")))
        .then_refused(ErrorCode::UnknownRun);
    with(on_run(), [departed("r1")])
        .when(|views| return_run(views, run("r1")))
        .then_ok();
}

fn delivered_drop(run: &str, order: &str) -> RecordDrop {
    RecordDrop {
        run: run.into(),
        order: order.into(),
        outcome: DropOutcome::Delivered {
            proof: Proof::default(),
        },
    }
}

#[test]
fn drop_rejections() {
    let out = with(on_run(), [departed("r1"), placed("o2", &[("veg-pack", 1)])]);
    let failed_without_reason = RecordDrop {
        outcome: DropOutcome::Failed {
            reason: None,
            note: None,
        },
        ..delivered_drop("r1", "o1")
    };
    let cases: Vec<(RecordDrop, ErrorCode)> = vec![
        (delivered_drop("r1", "o9"), ErrorCode::UnknownOrder),
        (delivered_drop("r9", "o1"), ErrorCode::UnknownRun),
        (delivered_drop("r1", "o2"), ErrorCode::NotOnRun),
        (failed_without_reason, ErrorCode::FailureNeedsReason),
    ];
    for (command, code) in cases {
        out.when(|views| record_drop(views, command.clone()))
            .then_refused(code);
    }
    // Before the run leaves, and after a drop was recorded.
    given(&on_run())
        .when(|views| record_drop(views, delivered_drop("r1", "o1")))
        .then_refused(ErrorCode::RunNotOut);
    let delivered = out
        .when(|views| record_drop(views, delivered_drop("r1", "o1")))
        .then_ok();
    with(on_run(), [departed("r1"), delivered])
        .when(|views| record_drop(views, delivered_drop("r1", "o1")))
        .then_refused(ErrorCode::NotOnRun);
}

#[test]
fn every_code_has_one_refusal_and_a_wire_name() {
    for code in [
        ErrorCode::EmptyOrder,
        ErrorCode::UnknownItem,
        ErrorCode::NotCancellable,
        ErrorCode::WrongPartner,
        ErrorCode::NotYetVisible,
    ] {
        let name = code.to_string();
        assert!(!name.is_empty() && name.chars().all(|c| c.is_ascii_lowercase() || c == '_'));
    }
    assert_eq!(ErrorCode::NotCancellable.to_string(), "not_cancellable");
}

fn sealed(scope: lifeline_events::SealScope, sealed: bool) -> Event {
    Event::SealChanged(lifeline_events::SealChanged {
        community: "tianlun".into(),
        scope,
        sealed,
    })
}

fn unit_b07_u8() -> lifeline_events::SealScope {
    lifeline_events::SealScope::Unit {
        building: "tianlun-b07".into(),
        unit: "tianlun-b07-u8".into(),
    }
}

/// Behind a sealed unit or building: only the door-to-door group rides, and a delivered
/// drop needs a proof; lifting the seal lifts both rules; a community seal alone changes
/// neither.
#[test]
fn seals_decide_who_rides_and_how_the_door_drop_is_proven() {
    let supplies_volunteer = lifeline_events::VolunteerRegistered {
        community: "tianlun".into(),
        volunteer: "vol-008".into(),
        name: "vol-008".into(),
        group: "supplies".into(),
    };
    let with_seal = |seal: Vec<Event>| {
        let mut events = on_run();
        events.push(Event::VolunteerRegistered(supplies_volunteer.clone()));
        events.extend(seal);
        events
    };
    let unit = with_seal(vec![sealed(unit_b07_u8(), true)]);
    given(&unit)
        .when(|views| depart_run(views, depart("r1", "vol-008")))
        .then_refused(ErrorCode::CourierNotCleared);
    given(&unit)
        .when(|views| depart_run(views, depart("r1", "vol-007")))
        .then_ok();
    let building = with_seal(vec![sealed(
        lifeline_events::SealScope::Building {
            building: "tianlun-b07".into(),
        },
        true,
    )]);
    given(&building)
        .when(|views| depart_run(views, depart("r1", "vol-008")))
        .then_refused(ErrorCode::CourierNotCleared);
    for open in [
        with_seal(vec![
            sealed(unit_b07_u8(), true),
            sealed(unit_b07_u8(), false),
        ]),
        with_seal(vec![sealed(lifeline_events::SealScope::Community, true)]),
    ] {
        given(&open)
            .when(|views| depart_run(views, depart("r1", "vol-008")))
            .then_ok();
        with(open, [departed("r1")])
            .when(|views| record_drop(views, delivered_drop("r1", "o1")))
            .then_ok();
    }
    let out = with(unit, [departed("r1")]);
    out.when(|views| record_drop(views, delivered_drop("r1", "o1")))
        .then_refused(ErrorCode::ProofRequired);
    let with_code = RecordDrop {
        outcome: DropOutcome::Delivered {
            proof: Proof {
                code: Some("4711".into()),
                photo_sha256: None,
            },
        },
        ..delivered_drop("r1", "o1")
    };
    out.when(|views| record_drop(views, with_code.clone()))
        .then_ok();
}

#[test]
fn a_seal_names_a_building_of_its_community() {
    let mut events = registry();
    events.push(Event::BuildingRegistered(
        lifeline_events::BuildingRegistered {
            community: "tianlun".into(),
            building: "tianlun-b07".into(),
            name: "7号楼".into(),
            x_m: 0,
            y_m: 0,
            name_zh: None,
        },
    ));
    let given = given(&events);
    let seal = |scope| ChangeSeal {
        community: "tianlun".into(),
        scope,
        sealed: true,
    };
    given
        .when(|views| change_seal(views, seal(unit_b07_u8())))
        .then_ok();
    given
        .when(|views| change_seal(views, seal(lifeline_events::SealScope::Community)))
        .then_ok();
    for scope in [
        lifeline_events::SealScope::Building {
            building: "tianlun-b99".into(),
        },
        lifeline_events::SealScope::Unit {
            building: "tianlun-b07".into(),
            unit: "tianlun-b01-u1".into(),
        },
    ] {
        given
            .when(|views| change_seal(views, seal(scope.clone())))
            .then_refused(ErrorCode::UnknownBuilding);
    }
}
