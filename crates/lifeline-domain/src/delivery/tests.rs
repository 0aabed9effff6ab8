//! The delivery projection's properties: counters and indexes agree with the orders, a
//! replay is equal, and the generator reaches the deep stages.

use super::*;
use crate::{MemoryState, apply_atomically};
use lifeline_events::{
    Actor, ArrivedAtCheckpoint, DropDelivered, DropFailed, DropFailure, EscalationClosed,
    EscalationOutcome, EventMeta, OrderCancelled, OrderPlaced, PickLine, PickOutcome, RunDeparted,
    RunPlanned, RunReturned,
};
use proptest::prelude::*;

const ORDERS_N: usize = 4;
const RUNS_N: usize = 3;
/// Ten minutes between events: long enough for urgent orders to become overdue.
const STEP_MS: u64 = 600_000;

fn envelope(event: Event, millis: u64) -> Envelope {
    let meta = EventMeta {
        time: time::OffsetDateTime::UNIX_EPOCH + time::Duration::milliseconds(millis as i64),
        source: "test".into(),
        actor: Actor::system("test"),
        correlation_id: uuid::Uuid::nil(),
        causation_id: None,
    };
    Envelope::new(event, meta)
}

fn order_id(n: usize) -> String {
    format!("o{n}")
}

/// Any event of the delivery stages about a handful of orders and runs, valid or not.
fn any_event() -> impl Strategy<Value = Event> {
    let community = || "c".to_owned();
    prop_oneof![
        (0..ORDERS_N, 0u8..3).prop_map(move |(n, priority)| Event::OrderPlaced(OrderPlaced {
            order: order_id(n),
            community: community(),
            building: "b".into(),
            unit: "u".into(),
            household: format!("h{n}"),
            partner: "p".into(),
            lines: vec![OrderLine {
                item: "i".into(),
                quantity: 1,
            }],
            priority: Priority::ALL[priority as usize],
            weight_g: 1,
            on_behalf_by: None,
            campaign: None,
        })),
        (0..ORDERS_N).prop_map(move |n| Event::OrderCancelled(OrderCancelled {
            order: order_id(n),
            community: community(),
            reason: "x".into()
        })),
        (0..ORDERS_N, 0u32..2).prop_map(move |(n, picked)| Event::OrderPicked(OrderPicked {
            order: order_id(n),
            community: community(),
            partner: "p".into(),
            lines: vec![PickLine {
                item: "i".into(),
                ordered: 1,
                outcome: if picked == 1 {
                    PickOutcome::Picked
                } else {
                    PickOutcome::Short
                },
                picked,
                substitute: None
            }],
            batch: None,
        })),
        prop::collection::vec(0..ORDERS_N, 1..3).prop_map(move |orders| {
            Event::ArrivedAtCheckpoint(ArrivedAtCheckpoint {
                arrival: "a".into(),
                community: community(),
                partner: "p".into(),
                orders: orders.into_iter().map(order_id).collect(),
                vehicle: None,
                driver: None,
                batches: Vec::new(),
            })
        }),
        (0..RUNS_N, prop::collection::vec(0..ORDERS_N, 1..3)).prop_map(move |(run, orders)| {
            Event::RunPlanned(RunPlanned {
                run: format!("r{run}"),
                community: community(),
                tricycle: "t".into(),
                stops: vec![lifeline_events::Stop {
                    building: "b".into(),
                    unit: "u".into(),
                    household: "h".into(),
                    orders: orders.into_iter().map(order_id).collect(),
                }],
                load_g: 1,
                distance_m: None,
            })
        }),
        (0..RUNS_N).prop_map(move |run| Event::RunDeparted(RunDeparted {
            run: format!("r{run}"),
            community: community(),
            tricycle: "t".into(),
            courier: "v".into()
        })),
        (0..RUNS_N).prop_map(move |run| Event::RunReturned(RunReturned {
            run: format!("r{run}"),
            community: community(),
            tricycle: "t".into()
        })),
        (0..ORDERS_N, 0..RUNS_N).prop_map(move |(n, run)| Event::DropDelivered(DropDelivered {
            order: order_id(n),
            run: format!("r{run}"),
            community: community(),
            household: format!("h{n}"),
            proof: Default::default()
        })),
        (0..ORDERS_N, 0..RUNS_N).prop_map(move |(n, run)| Event::DropFailed(DropFailed {
            order: order_id(n),
            run: format!("r{run}"),
            community: community(),
            household: format!("h{n}"),
            reason: DropFailure::NoAnswer,
            note: None
        })),
    ]
}

/// An event, or a hint to aim the next one at what the state allows: drop an order
/// where its run really is, or plan a run of the orders really waiting. Blind events
/// alone rarely get an order to the door; the steered ones do (see
/// `steered_sequences_reach_the_deep_stages`), and blind ones still test rejections.
#[derive(Debug, Clone)]
enum Input {
    Blind(Box<Event>),
    DropOnItsRun {
        order: usize,
        delivered: bool,
    },
    PlanWaiting {
        run: usize,
    },
    PlaceNew,
    PickPlaced,
    ArrivePicked,
    DepartPlanned,
    ReturnDeparted,
    /// Staff close whatever is escalated now (or, if nothing is, o0: refused).
    CloseEscalated {
        outcome: usize,
    },
}

fn any_input() -> impl Strategy<Value = Input> {
    prop_oneof![
        3 => any_event().prop_map(|event| Input::Blind(Box::new(event))),
        2 => Just(Input::PlaceNew),
        2 => Just(Input::PickPlaced),
        2 => (0..ORDERS_N, prop::bool::weighted(0.7))
            .prop_map(|(order, delivered)| Input::DropOnItsRun { order, delivered }),
        1 => (0..RUNS_N).prop_map(|run| Input::PlanWaiting { run }),
        1 => Just(Input::ArrivePicked),
        1 => Just(Input::DepartPlanned),
        1 => Just(Input::ReturnDeparted),
        1 => (0..EscalationOutcome::ALL.len()).prop_map(|outcome| Input::CloseEscalated { outcome }),
    ]
}

/// Turns an input into an event against the current state, at `now_ms`.
fn steer(input: Input, state: &MemoryState, now_ms: u64) -> Event {
    let orders: Vec<(String, OrderRecord)> = rows(state, ORDERS);
    match input {
        Input::CloseEscalated { outcome } => {
            let escalated = orders
                .iter()
                .find(|(_, o)| matches!(o.disposition(now_ms), Disposition::Escalated(_)))
                .map_or_else(|| order_id(0), |(id, _)| id.clone());
            Event::EscalationClosed(EscalationClosed {
                order: escalated,
                community: "c".into(),
                outcome: EscalationOutcome::ALL[outcome],
                replacement: None,
                note: None,
            })
        }
        Input::Blind(event) => *event,
        Input::DropOnItsRun { order, delivered } => {
            let id = order_id(order);
            let run = orders
                .iter()
                .find(|(key, _)| *key == id)
                .and_then(|(_, record)| record.run.clone())
                .unwrap_or_else(|| "r0".into());
            if delivered {
                Event::DropDelivered(DropDelivered {
                    order: id,
                    run,
                    community: "c".into(),
                    household: format!("h{order}"),
                    proof: Default::default(),
                })
            } else {
                Event::DropFailed(DropFailed {
                    order: id,
                    run,
                    community: "c".into(),
                    household: format!("h{order}"),
                    reason: DropFailure::NoAnswer,
                    note: None,
                })
            }
        }
        Input::PlaceNew => {
            let n = (0..ORDERS_N)
                .find(|n| orders.iter().all(|(id, _)| *id != order_id(*n)))
                .unwrap_or(0);
            Event::OrderPlaced(OrderPlaced {
                order: order_id(n),
                community: "c".into(),
                building: "b".into(),
                unit: "u".into(),
                household: format!("h{n}"),
                partner: "p".into(),
                lines: vec![OrderLine {
                    item: "i".into(),
                    quantity: 1,
                }],
                priority: Priority::ALL[n % 3],
                weight_g: 1,
                on_behalf_by: None,
                campaign: None,
            })
        }
        Input::PickPlaced => {
            let placed = orders
                .iter()
                .find(|(_, o)| o.status.stage == Stage::Placed)
                .map_or_else(|| order_id(0), |(id, _)| id.clone());
            Event::OrderPicked(OrderPicked {
                order: placed,
                community: "c".into(),
                partner: "p".into(),
                lines: vec![PickLine {
                    item: "i".into(),
                    ordered: 1,
                    outcome: PickOutcome::Picked,
                    picked: 1,
                    substitute: None,
                }],
                batch: None,
            })
        }
        Input::ArrivePicked => {
            let picked: Vec<String> = orders
                .iter()
                .filter(|(_, o)| o.status.stage == Stage::Picked)
                .map(|(id, _)| id.clone())
                .collect();
            Event::ArrivedAtCheckpoint(ArrivedAtCheckpoint {
                arrival: "a".into(),
                community: "c".into(),
                partner: "p".into(),
                orders: if picked.is_empty() {
                    vec![order_id(0)]
                } else {
                    picked
                },
                vehicle: None,
                driver: None,
                batches: Vec::new(),
            })
        }
        Input::DepartPlanned | Input::ReturnDeparted => {
            let wanted = match input {
                Input::DepartPlanned => RunState::Planned,
                _ => RunState::Departed,
            };
            let run = rows::<RunRecord>(state, RUNS)
                .into_iter()
                .find(|(_, r)| r.state == wanted)
                .map_or_else(|| "r0".to_owned(), |(id, _)| id);
            if wanted == RunState::Planned {
                Event::RunDeparted(RunDeparted {
                    run,
                    community: "c".into(),
                    tricycle: "t".into(),
                    courier: "v".into(),
                })
            } else {
                Event::RunReturned(RunReturned {
                    run,
                    community: "c".into(),
                    tricycle: "t".into(),
                })
            }
        }
        Input::PlanWaiting { run } => {
            let waiting: Vec<String> = orders
                .iter()
                .filter(|(_, o)| o.status.next(Step::PlanOnRun).is_ok())
                .map(|(id, _)| id.clone())
                .collect();
            Event::RunPlanned(RunPlanned {
                run: format!("r{run}"),
                community: "c".into(),
                tricycle: "t".into(),
                stops: vec![lifeline_events::Stop {
                    building: "b".into(),
                    unit: "u".into(),
                    household: "h".into(),
                    orders: if waiting.is_empty() {
                        vec![order_id(0)]
                    } else {
                        waiting
                    },
                }],
                load_g: 1,
                distance_m: None,
            })
        }
    }
}

/// Applies steered inputs one by one; returns the envelopes as applied and the state.
fn play(inputs: Vec<Input>) -> (Vec<Envelope>, MemoryState) {
    let mut state = MemoryState::default();
    let mut envelopes = Vec::new();
    for (i, input) in inputs.into_iter().enumerate() {
        let envelope = envelope(steer(input, &state, i as u64 * STEP_MS), i as u64 * STEP_MS);
        let _ = apply_atomically(&DeliveryStatus, &mut state, &envelope, &mut Vec::new());
        envelopes.push(envelope);
    }
    (envelopes, state)
}

/// The generator is not blind: over a fixed sample, many sequences take an order onto
/// a run and to the door, and some fail a drop for good.
#[test]
fn steered_sequences_reach_the_deep_stages() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        TestRng::deterministic_rng(RngAlgorithm::ChaCha),
    );
    let strategy = prop::collection::vec(any_input(), 10..60);
    let (mut on_run, mut delivered, mut runs_out) = (0, 0, 0);
    let (mut escalated, mut closed) = (0, 0);
    let samples = 400;
    for _ in 0..samples {
        let inputs = strategy.new_tree(&mut runner).expect("sample").current();
        let (envelopes, state) = play(inputs);
        assert_eq!(
            envelopes.len(),
            envelopes
                .iter()
                .map(|e| e.id)
                .collect::<BTreeSet<_>>()
                .len()
        );
        let reached = |stage: Stage| {
            rows::<OrderRecord>(&state, ORDERS)
                .iter()
                .any(|(_, o)| o.history.iter().any(|t| t.stage == stage))
        };
        on_run += usize::from(reached(Stage::OnRun));
        delivered += usize::from(reached(Stage::Delivered));
        runs_out += usize::from(
            rows::<RunRecord>(&state, RUNS)
                .iter()
                .any(|(_, r)| r.state != RunState::Planned),
        );
        let orders = rows::<OrderRecord>(&state, ORDERS);
        escalated += usize::from(orders.iter().any(|(_, o)| o.escalation.is_some()));
        closed += usize::from(
            orders
                .iter()
                .any(|(_, o)| o.escalation.as_ref().is_some_and(|e| e.closed.is_some())),
        );
    }
    let figures = format!(
        "of {samples}: on a run {on_run}, delivered {delivered}, a run left {runs_out}, \
         escalated {escalated}, escalation closed {closed}"
    );
    eprintln!("{figures}");
    assert!(escalated * 10 >= samples, "{figures}");
    assert!(closed * 20 >= samples, "{figures}");
    assert!(on_run * 5 >= samples, "{figures}");
    assert!(delivered * 10 >= samples, "{figures}");
    assert!(runs_out * 10 >= samples, "{figures}");
}

fn rows<T: serde::de::DeserializeOwned>(state: &MemoryState, table: &str) -> Vec<(String, T)> {
    state
        .rows
        .iter()
        .filter(|((t, _), _)| t == table)
        .map(|((_, key), value)| {
            (
                key.clone(),
                serde_json::from_slice(value).expect("row decodes"),
            )
        })
        .collect()
}

proptest! {
    /// Whatever arrives: every order's history is a chain of legal steps, the stage
    /// counters equal a count of the orders, the open index holds exactly the orders
    /// that are not final, rejected events leave no trace, and a replay is equal.
    #[test]
    fn counters_and_indexes_agree_with_the_orders(inputs in prop::collection::vec(any_input(), 0..80)) {
        counters_and_indexes_agree_with_the_orders_holds(inputs)?;
    }
}

/// The property's body, outside the macro so rustfmt formats it.
fn counters_and_indexes_agree_with_the_orders_holds(
    inputs: Vec<Input>,
) -> Result<(), TestCaseError> {
    let mut state = MemoryState::default();
    let mut emit = Vec::new();
    let mut envelopes = Vec::new();
    for (i, input) in inputs.into_iter().enumerate() {
        let envelope = envelope(steer(input, &state, i as u64 * STEP_MS), i as u64 * STEP_MS);
        let before = state.clone();
        if apply_atomically(&DeliveryStatus, &mut state, &envelope, &mut emit).is_err() {
            prop_assert_eq!(&state, &before);
        }
        envelopes.push(envelope);
    }
    let orders: Vec<(String, OrderRecord)> = rows(&state, ORDERS);
    for stage in Stage::ALL {
        let counted = orders
            .iter()
            .filter(|(_, o)| o.status.stage == stage)
            .count() as i64;
        let stored: i64 = state
            .get_json(
                STATS,
                &Counter::Stage {
                    community: "c".into(),
                    stage,
                }
                .key(),
            )
            .expect("row")
            .unwrap_or(0);
        prop_assert_eq!(stored, counted, "stage {:?}", stage);
    }
    let open: BTreeSet<String> = state
        .rows
        .keys()
        .filter(|(t, _)| t == OPEN)
        .map(|(_, k)| k.rsplit('/').next().unwrap_or_default().to_owned())
        .collect();
    let not_final: BTreeSet<String> = orders
        .iter()
        .filter(|(_, o)| !o.is_final && o.escalation.is_none())
        .map(|(id, _)| id.clone())
        .collect();
    prop_assert_eq!(&open, &not_final);
    let now_ms = envelopes.last().map_or(0, Envelope::unix_millis);
    let escalated: BTreeSet<String> = state
        .rows
        .keys()
        .filter(|(t, _)| t == ESCALATIONS)
        .map(|(_, k)| k.rsplit('/').next().unwrap_or_default().to_owned())
        .collect();
    let counted: i64 = EscalationReason::ALL
        .iter()
        .flat_map(|reason| Priority::ALL.map(|priority| (*reason, priority)))
        .map(|(reason, priority)| {
            let key = Counter::Escalations {
                community: "c".into(),
                priority,
                reason,
            }
            .key();
            state
                .get_json::<i64>(STATS, &key)
                .expect("row")
                .unwrap_or(0)
        })
        .sum();
    prop_assert_eq!(counted, escalated.len() as i64, "escalation counters");
    // No order leaves every list: each one not delivered or cancelled is in exactly one
    // of in progress (open, not overdue), escalated (overdue, or in the escalations
    // index) and closed by staff, and that is what its disposition says.
    for (id, order) in &orders {
        let in_open = open.contains(id);
        let overdue = now_ms >= escalation::overdue_at_ms(order.priority, order.placed_at_ms);
        let closed = order
            .escalation
            .as_ref()
            .is_some_and(|e| e.closed.is_some());
        let done = matches!(order.status.stage, Stage::Delivered | Stage::Cancelled);
        let places = [
            in_open && !overdue,
            in_open && overdue,
            escalated.contains(id),
            closed && !done,
            done,
        ];
        prop_assert_eq!(
            places.iter().filter(|p| **p).count(),
            1,
            "order {} is in {:?}: {:?}",
            id,
            places,
            order
        );
        let expected = match places.iter().position(|p| *p) {
            Some(0) => matches!(order.disposition(now_ms), Disposition::InProgress),
            Some(1) => {
                order.disposition(now_ms) == Disposition::Escalated(EscalationReason::Overdue)
            }
            Some(2) => matches!(order.disposition(now_ms), Disposition::Escalated(_)),
            Some(3) => matches!(order.disposition(now_ms), Disposition::Closed(_)),
            _ => matches!(
                order.disposition(now_ms),
                Disposition::Delivered | Disposition::Cancelled
            ),
        };
        prop_assert!(
            expected,
            "order {} disposition {:?}",
            id,
            order.disposition(now_ms)
        );
        if order.is_final && !done {
            prop_assert!(
                order.escalation.is_some(),
                "final failure {} not escalated",
                id
            );
        }
    }
    for (_, order) in &orders {
        let mut status = OrderStatus::placed();
        prop_assert_eq!(order.history[0].stage, Stage::Placed);
        for transition in &order.history[1..] {
            let legal = [
                Step::Cancel,
                Step::Pick {
                    anything_picked: true,
                },
                Step::Pick {
                    anything_picked: false,
                },
                Step::ArriveAtCheckpoint,
                Step::PlanOnRun,
                Step::ReturnUndropped,
                Step::Deliver,
                Step::FailDrop,
            ]
            .iter()
            .filter_map(|step| status.next(*step).ok())
            .find(|next| next.stage == transition.stage);
            prop_assert!(
                legal.is_some(),
                "illegal {:?} -> {:?}",
                status.stage,
                transition.stage
            );
            status = legal.expect("checked");
        }
        prop_assert_eq!(status.stage, order.status.stage);
    }
    let mut replayed = MemoryState::default();
    for envelope in &envelopes {
        let _ = apply_atomically(&DeliveryStatus, &mut replayed, envelope, &mut emit);
    }
    prop_assert_eq!(replayed, state);
    Ok(())
}

use std::collections::BTreeSet;
