//! Dispatch and delivery fed the same random events (with dispatch's runs and raises fed
//! back) agree on every order after every event, and dispatch replayed from that log (runs
//! and raises taken from the facts, nothing planned) ends in exactly the state the live run
//! left. The community's map is known, so runs are routed; households are found vulnerable
//! at random, so orders are raised.

use super::*;
use crate::delivery::{DeliveryStatus, OrderRecord};
use crate::order::Stage;
use crate::{MemoryState, apply_atomically, replay_atomically};
use lifeline_events::{
    ArrivedAtCheckpoint, DropDelivered, DropFailed, DropFailure, EventMeta, OrderCancelled,
    OrderLine, OrderPicked, OrderPlaced, PickLine, PickOutcome, RunDeparted, RunReturned,
    TricycleRegistered,
};
use proptest::prelude::*;

const ORDERS_N: usize = 6;

#[derive(Debug, Clone)]
enum Input {
    Place(usize),
    /// A parcel (or an errand, `false`) under the same ids as placed orders.
    Parcel(usize),
    Errand(usize),
    Accept(usize),
    Collect(usize, bool),
    Cancel(usize),
    Pick(usize, bool),
    Arrive(Vec<usize>),
    Depart(usize),
    Return(usize),
    /// The household of order n is registered as vulnerable.
    Flag(usize),
    /// Drop for an order on the run it is on (`true`), or on some other known run.
    Drop {
        order: usize,
        on_its_run: bool,
        run: usize,
        delivered: bool,
    },
}

fn any_input() -> impl Strategy<Value = Input> {
    prop_oneof![
        (0..ORDERS_N).prop_map(Input::Place),
        (0..ORDERS_N).prop_map(Input::Parcel),
        (0..ORDERS_N).prop_map(Input::Errand),
        (0..ORDERS_N).prop_map(Input::Accept),
        (0..ORDERS_N, any::<bool>()).prop_map(|(n, door)| Input::Collect(n, door)),
        (0..ORDERS_N).prop_map(Input::Cancel),
        (0..ORDERS_N, prop::bool::weighted(0.85)).prop_map(|(n, any)| Input::Pick(n, any)),
        prop::collection::vec(0..ORDERS_N, 1..4).prop_map(Input::Arrive),
        (0usize..8).prop_map(Input::Depart),
        (0usize..8).prop_map(Input::Return),
        (0..ORDERS_N).prop_map(Input::Flag),
        (
            0..ORDERS_N,
            prop::bool::weighted(0.8),
            0usize..8,
            prop::bool::weighted(0.7)
        )
            .prop_map(|(order, on_its_run, run, delivered)| Input::Drop {
                order,
                on_its_run,
                run,
                delivered
            }),
    ]
}

fn envelope(event: Event, step: usize) -> Envelope {
    let meta = EventMeta {
        time: time::OffsetDateTime::UNIX_EPOCH + time::Duration::seconds(step as i64),
        source: "test".into(),
        actor: lifeline_events::Actor::system("test"),
        correlation_id: uuid::Uuid::nil(),
        causation_id: None,
    };
    Envelope::new(event, meta)
}

fn id(n: usize) -> String {
    format!("o{n}")
}

fn to_event(input: &Input, delivery: &MemoryState, runs: &[String]) -> Option<Event> {
    let c = || "c".to_owned();
    let order_run = |n: usize| {
        delivery
            .get_json::<OrderRecord>(crate::delivery::ORDERS, &id(n))
            .ok()
            .flatten()
            .and_then(|record| record.run)
    };
    Some(match input {
        Input::Place(n) => Event::OrderPlaced(OrderPlaced {
            order: id(*n),
            community: c(),
            building: format!("b{}", n % 2),
            unit: "u".into(),
            household: format!("h{n}"),
            partner: "p".into(),
            lines: vec![OrderLine {
                item: "i".into(),
                quantity: 1,
            }],
            priority: Priority::ALL[n % 3],
            weight_g: 30_000,
            on_behalf_by: None,
            campaign: None,
        }),
        Input::Parcel(n) => Event::ParcelReceived(lifeline_events::ParcelReceived {
            order: id(*n),
            community: c(),
            building: format!("b{}", n % 2),
            unit: "u".into(),
            household: format!("h{n}"),
            carrier: "sf".into(),
            tracking: "t".into(),
            weight_g: 2_000,
            priority: Priority::Priority,
        }),
        Input::Errand(n) => Event::ErrandRequested(lifeline_events::ErrandRequested {
            order: id(*n),
            community: c(),
            building: format!("b{}", n % 2),
            unit: "u".into(),
            household: format!("h{n}"),
            place: "hospital".into(),
            medicine: "insulin".into(),
            priority: Priority::Urgent,
            on_behalf_by: None,
        }),
        Input::Accept(n) => Event::ErrandAccepted(lifeline_events::ErrandAccepted {
            order: id(*n),
            community: c(),
            volunteer: "v".into(),
        }),
        Input::Collect(n, door) => Event::ErrandCollected(lifeline_events::ErrandCollected {
            order: id(*n),
            community: c(),
            volunteer: "v".into(),
            route: if *door {
                lifeline_events::ErrandRoute::Door
            } else {
                lifeline_events::ErrandRoute::Checkpoint
            },
            weight_g: 300,
        }),
        Input::Flag(n) => Event::HouseholdRegistered(lifeline_events::HouseholdRegistered {
            community: c(),
            building: format!("b{}", n % 2),
            unit: "u".into(),
            household: format!("h{n}"),
            door: "1".into(),
            head_count: 1,
            vulnerabilities: vec![lifeline_events::Vulnerability::Disabled],
        }),
        Input::Cancel(n) => Event::OrderCancelled(OrderCancelled {
            order: id(*n),
            community: c(),
            reason: "x".into(),
        }),
        Input::Pick(n, any) => Event::OrderPicked(OrderPicked {
            order: id(*n),
            community: c(),
            partner: "p".into(),
            lines: vec![PickLine {
                item: "i".into(),
                ordered: 1,
                outcome: if *any {
                    PickOutcome::Picked
                } else {
                    PickOutcome::Short
                },
                picked: u32::from(*any),
                substitute: None,
            }],
            batch: None,
        }),
        Input::Arrive(orders) => {
            let mut orders: Vec<String> = orders.iter().map(|n| id(*n)).collect();
            orders.dedup();
            Event::ArrivedAtCheckpoint(ArrivedAtCheckpoint {
                arrival: "a".into(),
                community: c(),
                partner: "p".into(),
                orders,
                vehicle: None,
                driver: None,
                batches: Vec::new(),
            })
        }
        Input::Depart(k) => {
            let run = runs.get(k % runs.len().max(1))?.clone();
            Event::RunDeparted(RunDeparted {
                run,
                community: c(),
                tricycle: "t".into(),
                courier: "v".into(),
            })
        }
        Input::Return(k) => {
            let run = runs.get(k % runs.len().max(1))?.clone();
            Event::RunReturned(RunReturned {
                run,
                community: c(),
                tricycle: "t".into(),
            })
        }
        Input::Drop {
            order,
            on_its_run,
            run,
            delivered,
        } => {
            let run = if *on_its_run {
                order_run(*order)?
            } else {
                runs.get(run % runs.len().max(1))?.clone()
            };
            if *delivered {
                Event::DropDelivered(DropDelivered {
                    order: id(*order),
                    run,
                    community: c(),
                    household: format!("h{order}"),
                    proof: Default::default(),
                })
            } else {
                Event::DropFailed(DropFailed {
                    order: id(*order),
                    run,
                    community: c(),
                    household: format!("h{order}"),
                    reason: DropFailure::NoAnswer,
                    note: None,
                })
            }
        }
    })
}

/// One state machine: dispatch's status of an order is the delivery status's, and an order
/// on a run is on the same run in both.
fn agrees(record: &OrderRecord, order: &DispatchOrder) -> bool {
    record.status == order.status
        && record.priority == order.priority
        && (record.status.stage != Stage::OnRun || order.run == record.run)
        && (order.queued.is_none() || order.status.waits_for_run())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]
    #[test]
    fn dispatch_and_delivery_agree_on_every_order(inputs in prop::collection::vec(any_input(), 1..80)) {
        dispatch_and_delivery_agree_on_every_order_holds(inputs)?;
    }
}

/// The property's body, outside the macro so rustfmt formats it.
fn dispatch_and_delivery_agree_on_every_order_holds(
    inputs: Vec<Input>,
) -> Result<(), TestCaseError> {
    let mut dispatch = MemoryState::default();
    let mut delivery = MemoryState::default();
    let mut runs: Vec<String> = Vec::new();
    let mut emitted = Vec::new();
    let mut log = Vec::new();
    // One small tricycle: runs are short and orders wait for each other.
    let fleet = envelope(
        Event::TricycleRegistered(TricycleRegistered {
            community: "c".into(),
            tricycle: "t".into(),
            capacity_g: 60_000,
        }),
        0,
    );
    // The map: the checkpoint and the two buildings, far apart.
    let map = [
        Event::CommunityRegistered(lifeline_events::CommunityRegistered {
            community: "c".into(),
            name: "c".into(),
            name_zh: None,
            checkpoint: "gate".into(),
            checkpoint_zh: None,
            checkpoint_x_m: Some(0),
            checkpoint_y_m: Some(0),
        }),
        Event::BuildingRegistered(lifeline_events::BuildingRegistered {
            community: "c".into(),
            building: "b0".into(),
            name: "b0".into(),
            name_zh: None,
            x_m: 300,
            y_m: 0,
        }),
        Event::BuildingRegistered(lifeline_events::BuildingRegistered {
            community: "c".into(),
            building: "b1".into(),
            name: "b1".into(),
            name_zh: None,
            x_m: 0,
            y_m: 400,
        }),
    ];
    for event in map {
        let event = envelope(event, 0);
        apply_atomically(&Dispatch::default(), &mut dispatch, &event, &mut emitted).expect("map");
        log.push(event);
    }
    apply_atomically(&Dispatch::default(), &mut dispatch, &fleet, &mut emitted).expect("fleet");
    log.push(fleet);
    for (step, input) in inputs.iter().enumerate() {
        let Some(event) = to_event(input, &delivery, &runs) else {
            continue;
        };
        let mut queue = vec![envelope(event, step + 1)];
        while let Some(next) = queue.pop() {
            let mut emits = Vec::new();
            let _ = apply_atomically(&Dispatch::default(), &mut dispatch, &next, &mut emits);
            let _ = apply_atomically(&DeliveryStatus, &mut delivery, &next, &mut Vec::new());
            log.push(next);
            for emit in emits {
                if let Event::RunPlanned(planned) = &emit.event {
                    runs.push(planned.run.clone());
                }
                queue.insert(0, emit);
            }
        }
        for n in 0..ORDERS_N {
            let record: Option<OrderRecord> = delivery
                .get_json(crate::delivery::ORDERS, &id(n))
                .expect("row");
            let order: Option<DispatchOrder> = dispatch.get_json(ORDERS, &id(n)).expect("row");
            if let (Some(record), Some(order)) = (record, order) {
                prop_assert!(
                    agrees(&record, &order),
                    "after {input:?}: delivery {:?} (run {:?}) vs dispatch {:?} (run {:?}, queued {:?})",
                    record.status,
                    record.run,
                    order.status,
                    order.run,
                    order.queued
                );
            }
        }
    }
    let mut replayed = MemoryState::default();
    for envelope in &log {
        let _ = replay_atomically(&Dispatch::default(), &mut replayed, envelope);
    }
    prop_assert!(
        replayed == dispatch,
        "replay from the facts differs from the live state"
    );
    Ok(())
}
