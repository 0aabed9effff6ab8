//! Dispatch by example: runs come from the planner live and from the `run.planned` facts
//! in a replay, and orders move by the one order state machine.

use lifeline_events::{
    ArrivedAtCheckpoint, DropFailed, DropFailure, Envelope, Event, OrderLine, OrderPicked,
    OrderPlaced, PickLine, PickOutcome, Priority, RunDeparted, RunPlanned, RunReturned, Stop,
    TricycleRegistered,
};

use super::*;
use crate::order::{MAX_DROP_ATTEMPTS, Stage};
use crate::testing::envelope;
use crate::{MemoryState, apply_atomically, replay_atomically};

fn tricycle(capacity_g: u32) -> Event {
    Event::TricycleRegistered(TricycleRegistered {
        community: "tianlun".into(),
        tricycle: "tri-01".into(),
        capacity_g,
    })
}

fn placed(order: &str, building: &str) -> Event {
    Event::OrderPlaced(OrderPlaced {
        order: order.into(),
        community: "tianlun".into(),
        building: building.into(),
        unit: format!("{building}-u1"),
        household: format!("{building}-u1-{order}"),
        partner: "yonghui".into(),
        lines: vec![OrderLine {
            item: "veg-pack".into(),
            quantity: 1,
        }],
        priority: Priority::Routine,
        weight_g: 8_000,
        on_behalf_by: None,
        campaign: None,
    })
}

fn picked(order: &str) -> Event {
    Event::OrderPicked(OrderPicked {
        order: order.into(),
        community: "tianlun".into(),
        partner: "yonghui".into(),
        lines: vec![PickLine {
            item: "veg-pack".into(),
            ordered: 1,
            outcome: PickOutcome::Picked,
            picked: 1,
            substitute: None,
        }],
        batch: None,
    })
}

fn arrived(orders: &[&str]) -> Event {
    Event::ArrivedAtCheckpoint(ArrivedAtCheckpoint {
        arrival: "a1".into(),
        community: "tianlun".into(),
        partner: "yonghui".into(),
        orders: orders.iter().map(|order| (*order).to_owned()).collect(),
        vehicle: None,
        driver: None,
        batches: Vec::new(),
    })
}

/// A run as some planner once wrote it: `order` alone, on tri-01.
fn planned_fact(run: &str, order: &str, building: &str) -> Event {
    Event::RunPlanned(RunPlanned {
        run: run.into(),
        community: "tianlun".into(),
        tricycle: "tri-01".into(),
        stops: vec![Stop {
            building: building.into(),
            unit: format!("{building}-u1"),
            household: format!("{building}-u1-{order}"),
            orders: vec![order.into()],
        }],
        load_g: 8_000,
        distance_m: None,
    })
}

/// Two orders in two buildings at the checkpoint; a 20 kg tricycle takes both.
fn two_orders_arrive() -> Vec<Event> {
    vec![
        tricycle(20_000),
        placed("o1", "b1"),
        placed("o2", "b2"),
        picked("o1"),
        picked("o2"),
        arrived(&["o1", "o2"]),
    ]
}

/// Applies events live, feeding each emitted `run.planned` back as the stream would.
fn live(events: &[Event]) -> (MemoryState, Vec<RunPlanned>) {
    let mut state = MemoryState::default();
    let runs = live_on(&mut state, events);
    (state, runs)
}

/// [`live`] on a given state; returns the runs planned.
fn live_on(state: &mut MemoryState, events: &[Event]) -> Vec<RunPlanned> {
    let mut runs = Vec::new();
    let mut pending: Vec<Envelope> = events.iter().cloned().map(envelope).collect();
    pending.reverse();
    while let Some(next) = pending.pop() {
        let mut emitted = Vec::new();
        apply_atomically(&Dispatch::default(), state, &next, &mut emitted)
            .unwrap_or_else(|rejection| panic!("{}: {rejection}", next.event_type()));
        for emit in emitted.into_iter().rev() {
            if let Event::RunPlanned(planned) = &emit.event {
                runs.push(planned.clone());
            }
            pending.push(emit);
        }
    }
    runs
}

fn order(state: &MemoryState, order: &str) -> DispatchOrder {
    state
        .get_json(ORDERS, order)
        .expect("row decodes")
        .expect("order known")
}

#[test]
fn live_planning_puts_both_orders_on_one_run_and_reading_it_back_changes_nothing() {
    let (state, runs) = live(&two_orders_arrive());
    assert_eq!(runs.len(), 1);
    let run = &runs[0];
    assert_eq!(run.load_g, 16_000);
    for id in ["o1", "o2"] {
        let order = order(&state, id);
        assert_eq!(order.status.stage, Stage::OnRun);
        assert_eq!(order.run.as_deref(), Some(run.run.as_str()));
        assert_eq!(order.queued, None);
    }
    let mut again = state.clone();
    let read_back = envelope(Event::RunPlanned(run.clone()));
    let applied = apply_atomically(
        &Dispatch::default(),
        &mut again,
        &read_back,
        &mut Vec::new(),
    );
    assert_eq!(applied, Ok(Applied::Ignored));
    assert_eq!(again, state);
}

#[test]
fn a_replay_takes_runs_from_the_facts_not_from_the_planner() {
    // The stream says an older planner sent o2 alone; today's would take both.
    let mut events = two_orders_arrive();
    events.push(planned_fact("run-old", "o2", "b2"));
    let mut state = MemoryState::default();
    for event in events {
        replay_atomically(&Dispatch::default(), &mut state, &envelope(event)).expect("applies");
    }
    let o2 = order(&state, "o2");
    assert_eq!(o2.status.stage, Stage::OnRun);
    assert_eq!(o2.run.as_deref(), Some("run-old"));
    let o1 = order(&state, "o1");
    assert_eq!(o1.status.stage, Stage::AtCheckpoint);
    assert!(o1.queued.is_some(), "o1 still waits at the checkpoint");
    let tri: Tricycle = state
        .get_json(FLEET, "tianlun/tri-01")
        .expect("decodes")
        .expect("tricycle");
    assert_eq!(tri.run.as_deref(), Some("run-old"));
    let community: CommunityDispatch = state
        .get_json(COMMUNITIES, "tianlun")
        .expect("decodes")
        .expect("community");
    assert_eq!(community.waiting.keys().collect::<Vec<_>>(), ["b1"]);
}

#[test]
fn a_fleet_kept_in_the_community_row_by_an_earlier_release_is_moved_to_rows_and_rides() {
    // An earlier release kept the fleet in the community's row: one tricycle out on a
    // run, one free.
    let mut state = MemoryState::default();
    live_on(&mut state, &[placed("o1", "b1"), picked("o1")]);
    let mut old = CommunityDispatch::default();
    for (id, run) in [("tri-01", Some("run-out")), ("tri-02", None)] {
        old.tricycles.insert(
            id.to_owned(),
            Tricycle {
                capacity_g: 20_000,
                run: run.map(str::to_owned),
            },
        );
    }
    state.put_json(COMMUNITIES, "tianlun", &old);

    let runs = live_on(&mut state, &[arrived(&["o1"])]);
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].tricycle, "tri-02", "the free one rides");
    let row: CommunityDispatch = state
        .get_json(COMMUNITIES, "tianlun")
        .expect("decodes")
        .expect("community");
    assert!(
        row.tricycles.is_empty(),
        "the row no longer carries the fleet"
    );
    for (id, run) in [("tri-01", "run-out"), ("tri-02", runs[0].run.as_str())] {
        let tri: Tricycle = state
            .get_json(FLEET, &format!("tianlun/{id}"))
            .expect("decodes")
            .expect("tricycle");
        assert_eq!(tri.run.as_deref(), Some(run));
    }
    assert_eq!(state.scan_prefix(FREE_TRICYCLES, "tianlun/"), Vec::new());
}

#[test]
fn a_run_fact_for_an_order_not_at_the_checkpoint_is_parked() {
    let mut state = MemoryState::default();
    for event in [tricycle(20_000), placed("o1", "b1"), picked("o1")] {
        replay_atomically(&Dispatch::default(), &mut state, &envelope(event)).expect("applies");
    }
    let fact = envelope(planned_fact("run-x", "o1", "b1"));
    let rejection = replay_atomically(&Dispatch::default(), &mut state, &fact).expect_err("parked");
    assert_eq!(rejection.reason, Reason::ImpossibleTransition);
}

fn failed_drop(run: &str) -> Event {
    Event::DropFailed(DropFailed {
        order: "o1".into(),
        run: run.into(),
        community: "tianlun".into(),
        household: "b1-u1-o1".into(),
        reason: DropFailure::NoAnswer,
        note: None,
    })
}

fn departed(run: &str) -> Event {
    Event::RunDeparted(RunDeparted {
        run: run.into(),
        community: "tianlun".into(),
        tricycle: "tri-01".into(),
        courier: "v1".into(),
    })
}

fn returned(run: &str) -> Event {
    Event::RunReturned(RunReturned {
        run: run.into(),
        community: "tianlun".into(),
        tricycle: "tri-01".into(),
    })
}

#[test]
fn a_failed_drop_rides_again_until_the_last_attempt() {
    let (mut state, mut runs) = live(&[
        tricycle(20_000),
        placed("o1", "b1"),
        picked("o1"),
        arrived(&["o1"]),
    ]);
    for attempt in 1..=MAX_DROP_ATTEMPTS {
        let run = runs.last().expect("a run").run.clone();
        runs.extend(live_on(
            &mut state,
            &[departed(&run), failed_drop(&run), returned(&run)],
        ));
        let o1 = order(&state, "o1");
        assert_eq!(o1.status.failed_drops, attempt);
        if attempt < MAX_DROP_ATTEMPTS {
            assert_eq!(
                o1.status.stage,
                Stage::OnRun,
                "attempt {attempt}: planned again"
            );
        } else {
            assert!(o1.status.is_final());
            assert_eq!(o1.queued, None, "a final failure does not ride again");
        }
    }
    assert_eq!(runs.len() as u32, MAX_DROP_ATTEMPTS);
}

/// Rides `run` to the end: departs, delivers every order, comes back. Returns the runs
/// planned when it came back.
fn ride(state: &mut MemoryState, run: &RunPlanned) -> Vec<RunPlanned> {
    let mut events = vec![Event::RunDeparted(RunDeparted {
        run: run.run.clone(),
        community: "tianlun".into(),
        tricycle: run.tricycle.clone(),
        courier: "vol-1".into(),
    })];
    for stop in &run.stops {
        for order in &stop.orders {
            events.push(Event::DropDelivered(lifeline_events::DropDelivered {
                order: order.clone(),
                run: run.run.clone(),
                community: "tianlun".into(),
                household: stop.household.clone(),
                proof: Default::default(),
            }));
        }
    }
    events.push(Event::RunReturned(RunReturned {
        run: run.run.clone(),
        community: "tianlun".into(),
        tricycle: run.tricycle.clone(),
    }));
    live_on(state, &events)
}

/// Far more waits than one window holds: planning reads each building's queue a window at
/// a time, every order rides once, each building's orders leave in the order they arrived,
/// and the queue rows are gone at the end.
#[test]
fn a_queue_longer_than_a_window_drains_in_arrival_order_and_every_order_rides_once() {
    let total = 3 * WINDOW + 7;
    let ids: Vec<String> = (0..total).map(|n| format!("o{n:04}")).collect();
    let building = |n: usize| if n.is_multiple_of(3) { "b2" } else { "b1" };
    let mut events = Vec::new();
    for (n, id) in ids.iter().enumerate() {
        events.push(placed(id, building(n)));
        events.push(picked(id));
    }
    let arriving: Vec<&str> = ids.iter().map(String::as_str).collect();
    events.push(arrived(&arriving));
    // The queue is in the store before any tricycle: the plan must read it window by
    // window. 125 orders fit: all of b2 (more than a window) and the head of b1.
    events.push(tricycle(125 * 8_000));
    let mut state = MemoryState::default();
    let mut runs: std::collections::VecDeque<RunPlanned> = live_on(&mut state, &events).into();
    let b2: Vec<String> = (0..total)
        .filter(|n| building(*n) == "b2")
        .map(|n| ids[n].clone())
        .collect();
    assert!(b2.len() > WINDOW);
    let first: std::collections::BTreeSet<&String> = runs[0].orders().collect();
    assert_eq!(first.len(), 125);
    assert!(
        b2.iter().all(|id| first.contains(id)),
        "all of b2 rides first"
    );
    let mut ridden: Vec<String> = Vec::new();
    let mut count = 0;
    while let Some(run) = runs.pop_front() {
        count += 1;
        ridden.extend(run.orders().cloned());
        runs.extend(ride(&mut state, &run));
    }
    assert_eq!(count, 2, "199 orders, 125 a run");
    let mut once = ridden.clone();
    once.sort();
    once.dedup();
    assert_eq!(once.len(), ridden.len(), "no order rides twice");
    assert_eq!(once, ids, "every order rides");
    for wanted in ["b1", "b2"] {
        let in_building: Vec<&String> = ridden
            .iter()
            .filter(|id| building(id[1..].parse().expect("number")) == wanted)
            .collect();
        assert!(in_building.is_sorted(), "{wanted} leaves in arrival order");
    }
    for id in &ids {
        assert_eq!(order(&state, id).status.stage, Stage::Delivered);
    }
    assert_eq!(state.scan_prefix(QUEUES, ""), Vec::new());
    let community: CommunityDispatch = state
        .get_json(COMMUNITIES, "tianlun")
        .expect("decodes")
        .expect("community");
    assert!(community.waiting.is_empty());
}

fn community_at(x_m: i32, y_m: i32) -> Event {
    Event::CommunityRegistered(lifeline_events::CommunityRegistered {
        community: "tianlun".into(),
        name: "Tianlun Jincheng".into(),
        name_zh: None,
        checkpoint: "railway checkpoint".into(),
        checkpoint_zh: None,
        checkpoint_x_m: Some(x_m),
        checkpoint_y_m: Some(y_m),
    })
}

fn building_at(building: &str, x_m: i32) -> Event {
    Event::BuildingRegistered(lifeline_events::BuildingRegistered {
        community: "tianlun".into(),
        building: building.into(),
        name: building.into(),
        name_zh: None,
        x_m,
        y_m: 0,
    })
}

/// With the map known, a run starts at the building whose order waits longest and fills up
/// next door rather than across the estate, and says how far it rides.
#[test]
fn a_run_fills_up_next_door_and_knows_its_distance() {
    let events = vec![
        community_at(0, 0),
        building_at("b1", 100),
        building_at("b2", 900),
        building_at("b3", 150),
        tricycle(16_000),
        placed("o1", "b1"),
        placed("o2", "b2"),
        placed("o3", "b3"),
        picked("o1"),
        picked("o2"),
        picked("o3"),
        arrived(&["o1", "o2", "o3"]),
    ];
    let (_, runs) = live(&events);
    let run = &runs[0];
    let orders: Vec<&str> = run.orders().map(String::as_str).collect();
    assert_eq!(
        orders,
        ["o1", "o3"],
        "b3 is next door to b1, b2 across the estate"
    );
    assert_eq!(run.distance_m, Some(100 + 50 + 150));

    // Without a map: rank order, and no distance.
    let (_, runs) = live(&events[4..]);
    let orders: Vec<&str> = runs[0].orders().map(String::as_str).collect();
    assert_eq!((orders, runs[0].distance_m), (vec!["o1", "o2"], None));
}

fn household_flagged(order: &str, building: &str) -> Event {
    Event::HouseholdRegistered(lifeline_events::HouseholdRegistered {
        community: "tianlun".into(),
        building: building.into(),
        unit: format!("{building}-u1"),
        household: format!("{building}-u1-{order}"),
        door: "101".into(),
        head_count: 1,
        vulnerabilities: vec![lifeline_events::Vulnerability::Dialysis],
    })
}

/// A household found vulnerable: its waiting order is raised once and moves ahead of the
/// routine orders in the checkpoint queue.
#[test]
fn a_household_found_vulnerable_has_its_waiting_order_raised_ahead_of_routine_ones() {
    let mut state = MemoryState::default();
    live_on(
        &mut state,
        &[
            placed("o1", "b1"),
            placed("o2", "b1"),
            picked("o1"),
            picked("o2"),
            arrived(&["o1", "o2"]),
        ],
    );
    let flagged = envelope(household_flagged("o2", "b1"));
    let mut emitted = Vec::new();
    apply_atomically(&Dispatch::default(), &mut state, &flagged, &mut emitted).expect("applies");
    let [raise] = emitted.as_slice() else {
        panic!("one raise: {emitted:?}");
    };
    let Event::OrderReprioritized(raised) = &raise.event else {
        panic!("{raise:?}");
    };
    assert_eq!(
        (raised.order.as_str(), raised.priority),
        ("o2", Priority::Priority)
    );
    // The same registration again emits the same id (a re-run after a crash dedups).
    let mut again = Vec::new();
    apply_atomically(
        &Dispatch::default(),
        &mut state.clone(),
        &flagged,
        &mut again,
    )
    .expect("applies");
    assert_eq!(again[0].id, raise.id);

    apply_atomically(&Dispatch::default(), &mut state, raise, &mut Vec::new()).expect("applies");
    let o2 = order(&state, "o2");
    assert_eq!(o2.priority, Priority::Priority);
    let o1 = order(&state, "o1");
    assert!(o2.queued.expect("waits") < o1.queued.expect("waits"));
    // Raised once: a second raise, or the same flags again, changes nothing.
    assert_eq!(
        apply_atomically(&Dispatch::default(), &mut state, raise, &mut Vec::new()),
        Ok(Applied::Ignored)
    );
    let mut none = Vec::new();
    apply_atomically(&Dispatch::default(), &mut state, &flagged, &mut none).expect("applies");
    assert!(none.is_empty(), "{none:?}");

    // The first free tricycle takes the raised order first.
    let runs = live_on(&mut state, &[tricycle(8_000)]);
    assert_eq!(runs[0].orders().next().map(String::as_str), Some("o2"));
}
