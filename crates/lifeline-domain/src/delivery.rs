//! Delivery status: each order's stage with the time of every transition, and lookups by
//! household, building and run. Impossible transitions are rejected (and so parked).

use lifeline_events::{Envelope, Event, OrderLine, OrderPicked, PickOutcome, Priority};
use serde::{Deserialize, Serialize};

use crate::order::{OrderStatus, Stage, Step};
use crate::{Applied, Handler, Rejection, StateTx, StateTxExt};

pub const NAME: &str = "delivery";
pub const ORDERS: &str = "orders";
/// Index rows `<household>/<order>` with an empty value.
pub const BY_HOUSEHOLD: &str = "by_household";
/// Index rows `<building>/<order>` with an empty value.
pub const BY_BUILDING: &str = "by_building";
/// Index rows `<partner>/<order>` with an empty value.
pub const BY_PARTNER: &str = "by_partner";
pub const RUNS: &str = "runs";
/// Counters kept with the state, so metrics derived from them survive restarts and equal
/// a replay: `stage/<community>/<stage>`, `drops/<community>/delivered`,
/// `drops/<community>/failed/<reason>`, `runs_open/<community>`, and `clock` (the time of
/// the last event applied, the projection's idea of "now").
pub const STATS: &str = "stats";
/// Orders not yet final, keyed `<priority rank>/<placed unix ms, 16 digits>/<order>`, so
/// the first key under a priority is its oldest undelivered order.
pub const OPEN: &str = "open_orders";
/// Vulnerable households, keyed by household, with the day they were last served.
pub const VULNERABLE: &str = "vulnerable";

/// A vulnerable household as the operators' board sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VulnerableHousehold {
    pub community: String,
    pub building: String,
    pub vulnerabilities: Vec<lifeline_events::Vulnerability>,
    /// `YYYY-MM-DD` of the last delivered drop, in the event's own offset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_served_day: Option<String>,
}

/// The key of an order in the [`OPEN`] index.
pub fn open_key(priority: Priority, placed_at_ms: u64, order: &str) -> String {
    format!("{}/{placed_at_ms:016}/{order}", priority_rank(priority))
}

/// `0` for urgent, `1` for priority, `2` for routine: most urgent sorts first.
pub fn priority_rank(priority: Priority) -> u8 {
    match priority {
        Priority::Urgent => 0,
        Priority::Priority => 1,
        Priority::Routine => 2,
    }
}

pub fn stage_key(community: &str, stage: Stage) -> String {
    format!("stage/{community}/{}", stage.as_str())
}

fn bump(state: &mut dyn StateTx, key: &str, delta: i64) -> Result<(), Rejection> {
    let current: i64 = state.get_json(STATS, key)?.unwrap_or(0);
    state.put_json(STATS, key, &(current + delta));
    Ok(())
}

/// The calendar day of an event, in its own offset.
pub fn day_of(envelope: &Envelope) -> String {
    let date = envelope.time.date();
    format!(
        "{:04}-{:02}-{:02}",
        date.year(),
        u8::from(date.month()),
        date.day()
    )
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transition {
    pub stage: Stage,
    /// RFC 3339 time of the event that caused the transition.
    pub at: String,
    pub event_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderRecord {
    pub order: String,
    pub community: String,
    pub building: String,
    pub unit: String,
    pub household: String,
    pub partner: String,
    pub priority: Priority,
    /// Unix milliseconds of the `order.placed` event.
    #[serde(default)]
    pub placed_at_ms: u64,
    pub status: OrderStatus,
    pub is_final: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<String>,
    /// What goes to the door: the ordered lines, replaced by what was picked.
    #[serde(default)]
    pub items: Vec<OrderLine>,
    pub history: Vec<Transition>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunState {
    Planned,
    Departed,
    Returned,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunRecord {
    pub run: String,
    pub community: String,
    pub tricycle: String,
    pub state: RunState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub courier: Option<String>,
    pub orders: Vec<String>,
    pub planned_at: String,
}

#[derive(Debug, Default)]
pub struct DeliveryStatus;

/// Checks that a pick's lines are self-consistent (shared with the inventory rules).
pub fn validate_pick_lines(picked: &OrderPicked) -> Result<(), Rejection> {
    if picked.lines.is_empty() {
        return Err(Rejection::new("invalid_pick", "a pick has no lines"));
    }
    for line in &picked.lines {
        let consistent = match line.outcome {
            PickOutcome::Picked => line.picked == line.ordered && line.substitute.is_none(),
            PickOutcome::Short => line.picked < line.ordered && line.substitute.is_none(),
            // Part of the line (possibly none) picked, the rest replaced.
            PickOutcome::Substituted => {
                line.picked < line.ordered
                    && line.substitute.as_ref().is_some_and(|substitute| {
                        substitute.quantity > 0 && substitute.item != line.item
                    })
            }
        };
        if !consistent {
            return Err(Rejection::new(
                "invalid_pick",
                format!(
                    "line for {} is inconsistent with outcome {:?}",
                    line.item, line.outcome
                ),
            ));
        }
    }
    Ok(())
}

/// What a pick hands over: each line's picked quantity and any substitute.
pub fn picked_items(picked: &OrderPicked) -> Vec<OrderLine> {
    let mut items = Vec::new();
    for line in &picked.lines {
        if line.picked > 0 {
            items.push(OrderLine {
                item: line.item.clone(),
                quantity: line.picked,
            });
        }
        if let Some(substitute) = &line.substitute {
            items.push(OrderLine {
                item: substitute.item.clone(),
                quantity: substitute.quantity,
            });
        }
    }
    items
}

/// True when a pick hands over any goods at all.
pub fn anything_picked(picked: &OrderPicked) -> bool {
    picked
        .lines
        .iter()
        .any(|line| line.picked > 0 || line.substitute.is_some())
}

fn time_text(envelope: &Envelope) -> String {
    envelope
        .time
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

fn load_order(state: &dyn StateTx, order: &str) -> Result<OrderRecord, Rejection> {
    state
        .get_json::<OrderRecord>(ORDERS, order)?
        .ok_or_else(|| Rejection::new("unknown_order", order.to_owned()))
}

/// Moves an order one step and records the transition.
fn step_order(
    state: &mut dyn StateTx,
    envelope: &Envelope,
    order: &str,
    step: Step,
    detail: Option<String>,
    run: Option<&str>,
) -> Result<(), Rejection> {
    let mut record = load_order(state, order)?;
    let status = record.status.next(step).map_err(|error| {
        Rejection::new("impossible_transition", format!("order {order}: {error}"))
    })?;
    bump(
        state,
        &stage_key(&record.community, record.status.stage),
        -1,
    )?;
    bump(state, &stage_key(&record.community, status.stage), 1)?;
    if status.is_final() && !record.is_final {
        state.delete(OPEN, &open_key(record.priority, record.placed_at_ms, order));
    }
    record.status = status;
    record.is_final = status.is_final();
    if let Some(run) = run {
        record.run = Some(run.to_owned());
    }
    record.history.push(Transition {
        stage: status.stage,
        at: time_text(envelope),
        event_id: envelope.id.to_string(),
        detail,
    });
    state.put_json(ORDERS, order, &record);
    Ok(())
}

fn load_run(state: &dyn StateTx, run: &str) -> Result<RunRecord, Rejection> {
    state
        .get_json::<RunRecord>(RUNS, run)?
        .ok_or_else(|| Rejection::new("unknown_run", run.to_owned()))
}

/// A drop must be for an order on that run, and the run must be out.
fn check_drop(state: &dyn StateTx, order: &str, run: &str) -> Result<(), Rejection> {
    let record = load_order(state, order)?;
    if record.status.stage != Stage::OnRun || record.run.as_deref() != Some(run) {
        return Err(Rejection::new(
            "impossible_transition",
            format!(
                "order {order} is {:?}, not on run {run}",
                record.status.stage
            ),
        ));
    }
    Ok(())
}

impl Handler for DeliveryStatus {
    fn name(&self) -> &'static str {
        NAME
    }

    fn tables(&self) -> &'static [&'static str] {
        &[
            ORDERS,
            BY_HOUSEHOLD,
            BY_BUILDING,
            BY_PARTNER,
            RUNS,
            STATS,
            OPEN,
            VULNERABLE,
        ]
    }

    fn apply(
        &self,
        state: &mut dyn StateTx,
        envelope: &Envelope,
        _emit: &mut Vec<Envelope>,
    ) -> Result<Applied, Rejection> {
        let applied = apply_event(state, envelope)?;
        if applied == Applied::Changed {
            state.put_json(STATS, "clock", &time_text(envelope));
        }
        Ok(applied)
    }
}

fn apply_event(state: &mut dyn StateTx, envelope: &Envelope) -> Result<Applied, Rejection> {
    match &envelope.event {
        Event::OrderPlaced(placed) => {
            if state.get(ORDERS, &placed.order).is_some() {
                return Err(Rejection::new("duplicate_order", placed.order.clone()));
            }
            let record = OrderRecord {
                order: placed.order.clone(),
                community: placed.community.clone(),
                building: placed.building.clone(),
                unit: placed.unit.clone(),
                household: placed.household.clone(),
                partner: placed.partner.clone(),
                priority: placed.priority,
                placed_at_ms: envelope.unix_millis(),
                status: OrderStatus::placed(),
                is_final: false,
                run: None,
                items: placed.lines.clone(),
                history: vec![Transition {
                    stage: Stage::Placed,
                    at: time_text(envelope),
                    event_id: envelope.id.to_string(),
                    detail: placed
                        .on_behalf_by
                        .as_ref()
                        .map(|staff| format!("placed by staff {staff}")),
                }],
            };
            state.put_json(ORDERS, &placed.order, &record);
            bump(state, &stage_key(&placed.community, Stage::Placed), 1)?;
            state.put(
                OPEN,
                &open_key(placed.priority, record.placed_at_ms, &placed.order),
                Vec::new(),
            );
            state.put(
                BY_HOUSEHOLD,
                &format!("{}/{}", placed.household, placed.order),
                Vec::new(),
            );
            state.put(
                BY_BUILDING,
                &format!("{}/{}", placed.building, placed.order),
                Vec::new(),
            );
            state.put(
                BY_PARTNER,
                &format!("{}/{}", placed.partner, placed.order),
                Vec::new(),
            );
            Ok(Applied::Changed)
        }
        Event::OrderCancelled(cancelled) => {
            step_order(
                state,
                envelope,
                &cancelled.order,
                Step::Cancel,
                Some(cancelled.reason.clone()),
                None,
            )?;
            Ok(Applied::Changed)
        }
        Event::OrderPicked(picked) => {
            validate_pick_lines(picked)?;
            let record = load_order(state, &picked.order)?;
            if record.partner != picked.partner {
                return Err(Rejection::new(
                    "wrong_partner",
                    format!(
                        "order {} belongs to partner {}",
                        picked.order, record.partner
                    ),
                ));
            }
            let anything = anything_picked(picked);
            let detail = (!anything).then(|| "nothing could be picked".to_owned());
            step_order(
                state,
                envelope,
                &picked.order,
                Step::Pick {
                    anything_picked: anything,
                },
                detail,
                None,
            )?;
            let mut record = load_order(state, &picked.order)?;
            record.items = picked_items(picked);
            state.put_json(ORDERS, &picked.order, &record);
            Ok(Applied::Changed)
        }
        Event::ArrivedAtCheckpoint(arrival) => {
            for order in &arrival.orders {
                step_order(state, envelope, order, Step::ArriveAtCheckpoint, None, None)?;
            }
            Ok(Applied::Changed)
        }
        Event::RunPlanned(planned) => {
            if state.get(RUNS, &planned.run).is_some() {
                return Err(Rejection::new("duplicate_run", planned.run.clone()));
            }
            let orders: Vec<String> = planned.orders().cloned().collect();
            for order in &orders {
                step_order(
                    state,
                    envelope,
                    order,
                    Step::PlanOnRun,
                    Some(format!("run {}", planned.run)),
                    Some(&planned.run),
                )?;
            }
            let run = RunRecord {
                run: planned.run.clone(),
                community: planned.community.clone(),
                tricycle: planned.tricycle.clone(),
                state: RunState::Planned,
                courier: None,
                orders,
                planned_at: time_text(envelope),
            };
            state.put_json(RUNS, &planned.run, &run);
            bump(state, &format!("runs_open/{}", planned.community), 1)?;
            Ok(Applied::Changed)
        }
        Event::RunDeparted(departed) => {
            let mut run = load_run(state, &departed.run)?;
            if run.state != RunState::Planned {
                return Err(Rejection::new(
                    "impossible_transition",
                    format!("run {} departed while {:?}", run.run, run.state),
                ));
            }
            run.state = RunState::Departed;
            run.courier = Some(departed.courier.clone());
            state.put_json(RUNS, &departed.run, &run);
            Ok(Applied::Changed)
        }
        Event::RunReturned(returned) => {
            let mut run = load_run(state, &returned.run)?;
            if run.state != RunState::Departed {
                return Err(Rejection::new(
                    "impossible_transition",
                    format!("run {} returned while {:?}", run.run, run.state),
                ));
            }
            for order in &run.orders {
                let record = load_order(state, order)?;
                if record.status.stage == Stage::OnRun
                    && record.run.as_deref() == Some(run.run.as_str())
                {
                    step_order(
                        state,
                        envelope,
                        order,
                        Step::ReturnUndropped,
                        Some("returned undropped".to_owned()),
                        None,
                    )?;
                }
            }
            run.state = RunState::Returned;
            state.put_json(RUNS, &returned.run, &run);
            bump(state, &format!("runs_open/{}", run.community), -1)?;
            Ok(Applied::Changed)
        }
        Event::DropDelivered(delivered) => {
            check_drop(state, &delivered.order, &delivered.run)?;
            step_order(state, envelope, &delivered.order, Step::Deliver, None, None)?;
            bump(
                state,
                &format!("drops/{}/delivered", delivered.community),
                1,
            )?;
            if let Some(mut household) =
                state.get_json::<VulnerableHousehold>(VULNERABLE, &delivered.household)?
            {
                household.last_served_day = Some(day_of(envelope));
                state.put_json(VULNERABLE, &delivered.household, &household);
            }
            Ok(Applied::Changed)
        }
        Event::DropFailed(failed) => {
            check_drop(state, &failed.order, &failed.run)?;
            step_order(
                state,
                envelope,
                &failed.order,
                Step::FailDrop,
                Some(failed.reason.as_str().to_owned()),
                None,
            )?;
            bump(
                state,
                &format!(
                    "drops/{}/failed/{}",
                    failed.community,
                    failed.reason.as_str()
                ),
                1,
            )?;
            Ok(Applied::Changed)
        }
        Event::HouseholdRegistered(household) => {
            if household.vulnerabilities.is_empty() {
                // A household re-registered as no longer vulnerable leaves the list.
                if state.get(VULNERABLE, &household.household).is_some() {
                    state.delete(VULNERABLE, &household.household);
                    return Ok(Applied::Changed);
                }
                return Ok(Applied::Ignored);
            }
            let last_served_day = state
                .get_json::<VulnerableHousehold>(VULNERABLE, &household.household)?
                .and_then(|known| known.last_served_day);
            let row = VulnerableHousehold {
                community: household.community.clone(),
                building: household.building.clone(),
                vulnerabilities: household.vulnerabilities.clone(),
                last_served_day,
            };
            state.put_json(VULNERABLE, &household.household, &row);
            Ok(Applied::Changed)
        }
        _ => Ok(Applied::Ignored),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{MemoryState, apply_atomically};
    use lifeline_events::{
        Actor, ArrivedAtCheckpoint, DropDelivered, DropFailed, DropFailure, EventMeta,
        OrderCancelled, OrderPlaced, PickLine, RunDeparted, RunPlanned, RunReturned,
    };
    use proptest::prelude::*;

    const ORDERS_N: usize = 4;
    const RUNS_N: usize = 3;

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
                lines: vec![],
                priority: Priority::ALL[priority as usize],
                weight_g: 1,
                on_behalf_by: None,
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
            })),
            prop::collection::vec(0..ORDERS_N, 1..3).prop_map(move |orders| {
                Event::ArrivedAtCheckpoint(ArrivedAtCheckpoint {
                    arrival: "a".into(),
                    community: community(),
                    partner: "p".into(),
                    orders: orders.into_iter().map(order_id).collect(),
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
            (0..ORDERS_N, 0..RUNS_N).prop_map(move |(n, run)| Event::DropDelivered(
                DropDelivered {
                    order: order_id(n),
                    run: format!("r{run}"),
                    community: community(),
                    household: format!("h{n}"),
                    proof: Default::default()
                }
            )),
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
        fn counters_and_indexes_agree_with_the_orders(events in prop::collection::vec(any_event(), 0..60)) {
            let envelopes: Vec<Envelope> = events.into_iter().enumerate().map(|(i, e)| envelope(e, i as u64 * 1000)).collect();
            let mut state = MemoryState::default();
            let mut emit = Vec::new();
            for envelope in &envelopes {
                let before = state.clone();
                if apply_atomically(&DeliveryStatus, &mut state, envelope, &mut emit).is_err() {
                    prop_assert_eq!(&state, &before);
                }
            }
            let orders: Vec<(String, OrderRecord)> = rows(&state, ORDERS);
            for stage in Stage::ALL {
                let counted = orders.iter().filter(|(_, o)| o.status.stage == stage).count() as i64;
                let stored: i64 = state.get_json(STATS, &stage_key("c", stage)).expect("row").unwrap_or(0);
                prop_assert_eq!(stored, counted, "stage {:?}", stage);
            }
            let open: BTreeSet<String> = state.rows.keys().filter(|(t, _)| t == OPEN).map(|(_, k)| k.rsplit('/').next().unwrap_or_default().to_owned()).collect();
            let not_final: BTreeSet<String> = orders.iter().filter(|(_, o)| !o.is_final).map(|(id, _)| id.clone()).collect();
            prop_assert_eq!(open, not_final);
            for (_, order) in &orders {
                let mut status = OrderStatus::placed();
                prop_assert_eq!(order.history[0].stage, Stage::Placed);
                for transition in &order.history[1..] {
                    let legal = [
                        Step::Cancel, Step::Pick { anything_picked: true }, Step::Pick { anything_picked: false },
                        Step::ArriveAtCheckpoint, Step::PlanOnRun, Step::ReturnUndropped, Step::Deliver, Step::FailDrop,
                    ].iter().filter_map(|step| status.next(*step).ok()).find(|next| next.stage == transition.stage);
                    prop_assert!(legal.is_some(), "illegal {:?} -> {:?}", status.stage, transition.stage);
                    status = legal.expect("checked");
                }
                prop_assert_eq!(status.stage, order.status.stage);
            }
            let mut replayed = MemoryState::default();
            for envelope in &envelopes {
                let _ = apply_atomically(&DeliveryStatus, &mut replayed, envelope, &mut emit);
            }
            prop_assert_eq!(replayed, state);
        }
    }

    use std::collections::BTreeSet;
}
