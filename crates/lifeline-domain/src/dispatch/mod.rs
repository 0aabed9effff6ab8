//! Dispatch, a process manager: orders that were picked and reached the checkpoint are
//! batched into tricycle runs, grouped by building, within a tricycle's capacity, priority
//! orders first.
//!
//! Planning happens after each event that can make a run possible (goods arrive, a tricycle
//! is registered or comes back), from state alone, and the emitted `run.planned` event's id
//! is derived from the causing event. Re-processing the same input after a crash therefore
//! plans the same runs with the same ids, and JetStream drops the second publish.

use std::collections::{BTreeMap, BTreeSet};

use lifeline_events::{Actor, Envelope, Event, Priority, RunPlanned, Stop, deterministic_event_id};
use serde::{Deserialize, Serialize};

use crate::order::MAX_DROP_ATTEMPTS;
use crate::{Applied, Handler, Reason, Rejection, StateTx, StateTxExt};

pub const NAME: &str = "dispatch";
pub const ORDERS: &str = "orders";
pub const COMMUNITIES: &str = "communities";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Placed, not yet picked.
    Waiting,
    /// Picked, on its way to the checkpoint.
    Picked,
    Queued,
    OnRun,
    /// The last drop failed; it goes back in the queue when its run returns.
    DropFailed,
    Done,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DispatchOrder {
    pub community: String,
    pub building: String,
    pub unit: String,
    pub household: String,
    pub priority: Priority,
    pub weight_g: u32,
    pub phase: Phase,
    pub failed_drops: u32,
    /// The run it is on, or was last on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<String>,
    /// The ordered lines, until the pick: a pick is checked against them by the same rule
    /// as delivery and inventory, so all three park the same picks.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lines: Vec<lifeline_events::OrderLine>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueuedOrder {
    pub order: String,
    pub priority: Priority,
    pub building: String,
    pub unit: String,
    pub household: String,
    pub weight_g: u32,
    /// Queue position: earlier arrivals first within a priority.
    pub seq: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tricycle {
    pub capacity_g: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<String>,
}

/// Everything dispatch knows about one community: its fleet, its queue at the checkpoint
/// and the runs that are out.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommunityDispatch {
    pub tricycles: BTreeMap<String, Tricycle>,
    pub queue: Vec<QueuedOrder>,
    pub runs: BTreeMap<String, Vec<String>>,
    /// Runs out on the road: only these can return.
    #[serde(default)]
    pub departed: BTreeSet<String>,
    pub next_seq: u64,
}

/// A run the planner chose, before it becomes an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedLoad {
    pub tricycle: String,
    pub orders: Vec<QueuedOrder>,
    pub load_g: u32,
}

fn queue_rank(order: &QueuedOrder) -> (std::cmp::Reverse<Priority>, u64) {
    (std::cmp::Reverse(order.priority), order.seq)
}

/// Fills free tricycles from the queue until either runs out. Pure and deterministic:
/// the same state always gives the same loads.
pub fn plan_loads(dispatch: &mut CommunityDispatch) -> Vec<PlannedLoad> {
    let mut loads = Vec::new();
    loop {
        if dispatch.queue.is_empty() {
            return loads;
        }
        // The largest free tricycle first (ties by id), so heavy queues clear fastest.
        let Some((tricycle, capacity_g)) = dispatch
            .tricycles
            .iter()
            .filter(|(_, tricycle)| tricycle.run.is_none())
            .max_by(|(id_a, a), (id_b, b)| a.capacity_g.cmp(&b.capacity_g).then(id_b.cmp(id_a)))
            .map(|(id, tricycle)| (id.clone(), tricycle.capacity_g))
        else {
            return loads;
        };
        dispatch.queue.sort_by_key(queue_rank);
        // Buildings in the order of their most urgent waiting order.
        let mut buildings: Vec<&str> = Vec::new();
        for order in &dispatch.queue {
            if !buildings.contains(&order.building.as_str()) {
                buildings.push(&order.building);
            }
        }
        let mut chosen: BTreeSet<usize> = BTreeSet::new();
        let mut load_g: u32 = 0;
        for building in &buildings {
            for (index, order) in dispatch.queue.iter().enumerate() {
                if order.building != *building {
                    continue;
                }
                let fits = load_g.saturating_add(order.weight_g) <= capacity_g;
                // An order heavier than the tricycle still goes, alone.
                if fits || chosen.is_empty() {
                    chosen.insert(index);
                    load_g = load_g.saturating_add(order.weight_g);
                }
                if load_g >= capacity_g {
                    break;
                }
            }
            if load_g >= capacity_g {
                break;
            }
        }
        let mut orders = Vec::with_capacity(chosen.len());
        let mut remaining = Vec::with_capacity(dispatch.queue.len() - chosen.len());
        for (index, order) in dispatch.queue.drain(..).enumerate() {
            if chosen.contains(&index) {
                orders.push(order);
            } else {
                remaining.push(order);
            }
        }
        dispatch.queue = remaining;
        // Chosen from `dispatch.tricycles` above, so it is there; marked busy for this plan.
        if let Some(chosen) = dispatch.tricycles.get_mut(&tricycle) {
            chosen.run = Some(String::new());
        }
        loads.push(PlannedLoad {
            tricycle,
            orders,
            load_g,
        });
    }
}

/// Stops in driving order: buildings in the order the planner chose them, then by unit and
/// household, one stop per household.
pub fn stops_for(load: &PlannedLoad) -> Vec<Stop> {
    let mut building_rank: Vec<&str> = Vec::new();
    for order in &load.orders {
        if !building_rank.contains(&order.building.as_str()) {
            building_rank.push(&order.building);
        }
    }
    let mut by_household: BTreeMap<(usize, &str, &str), (String, Vec<String>)> = BTreeMap::new();
    for order in &load.orders {
        let rank = building_rank
            .iter()
            .position(|building| *building == order.building)
            .unwrap_or(usize::MAX);
        by_household
            .entry((rank, order.unit.as_str(), order.household.as_str()))
            .or_insert_with(|| (order.building.clone(), Vec::new()))
            .1
            .push(order.order.clone());
    }
    by_household
        .into_iter()
        .map(|((_, unit, household), (building, orders))| Stop {
            building,
            unit: unit.to_owned(),
            household: household.to_owned(),
            orders,
        })
        .collect()
}

#[derive(Debug, Default)]
pub struct Dispatch;

fn load_community(state: &dyn StateTx, community: &str) -> Result<CommunityDispatch, Rejection> {
    Ok(state
        .get_json::<CommunityDispatch>(COMMUNITIES, community)?
        .unwrap_or_default())
}

fn load_order(state: &dyn StateTx, order: &str) -> Result<DispatchOrder, Rejection> {
    state
        .get_json::<DispatchOrder>(ORDERS, order)?
        .ok_or_else(|| Rejection::new(Reason::UnknownOrder, order.to_owned()))
}

fn enqueue(community: &mut CommunityDispatch, order_id: &str, order: &DispatchOrder) {
    community.queue.push(QueuedOrder {
        order: order_id.to_owned(),
        priority: order.priority,
        building: order.building.clone(),
        unit: order.unit.clone(),
        household: order.household.clone(),
        weight_g: order.weight_g,
        seq: community.next_seq,
    });
    community.next_seq += 1;
}

/// Plans what can be planned, records it in state and emits one `run.planned` per run.
fn plan_and_emit(
    state: &mut dyn StateTx,
    cause: &Envelope,
    community_id: &str,
    mut community: CommunityDispatch,
    emit: &mut Vec<Envelope>,
) -> Result<(), Rejection> {
    let loads = plan_loads(&mut community);
    for (index, load) in loads.iter().enumerate() {
        let id = deterministic_event_id(
            cause.unix_millis(),
            NAME,
            &[&cause.id.to_string(), &index.to_string()],
        );
        let run = format!("run-{}", id.simple());
        for queued in &load.orders {
            let mut order = load_order(state, &queued.order)?;
            order.phase = Phase::OnRun;
            order.run = Some(run.clone());
            state.put_json(ORDERS, &queued.order, &order);
        }
        let Some(tricycle) = community.tricycles.get_mut(&load.tricycle) else {
            // The planner only picks tricycles it was given: a state bug, parked, not a panic.
            return Err(Rejection::new(
                Reason::CorruptState,
                format!(
                    "planned tricycle {} is not in {community_id}",
                    load.tricycle
                ),
            ));
        };
        tricycle.run = Some(run.clone());
        community.runs.insert(
            run.clone(),
            load.orders
                .iter()
                .map(|queued| queued.order.clone())
                .collect(),
        );
        let planned = RunPlanned {
            run,
            community: community_id.to_owned(),
            tricycle: load.tricycle.clone(),
            stops: stops_for(load),
            load_g: load.load_g,
        };
        let meta = cause.follow_up("lifeline-dispatch", Actor::system(NAME), cause.time);
        emit.push(Envelope::with_id(id, Event::RunPlanned(planned), meta));
    }
    state.put_json(COMMUNITIES, community_id, &community);
    Ok(())
}

impl Handler for Dispatch {
    fn name(&self) -> &'static str {
        NAME
    }

    fn tables(&self) -> &'static [&'static str] {
        &[ORDERS, COMMUNITIES]
    }

    fn apply(
        &self,
        state: &mut dyn StateTx,
        envelope: &Envelope,
        emit: &mut Vec<Envelope>,
    ) -> Result<Applied, Rejection> {
        match &envelope.event {
            Event::TricycleRegistered(registered) => {
                let mut community = load_community(state, &registered.community)?;
                let tricycle = community
                    .tricycles
                    .entry(registered.tricycle.clone())
                    .or_insert(Tricycle {
                        capacity_g: registered.capacity_g,
                        run: None,
                    });
                tricycle.capacity_g = registered.capacity_g;
                plan_and_emit(state, envelope, &registered.community, community, emit)?;
                Ok(Applied::Changed)
            }
            Event::OrderPlaced(placed) => {
                if state.get(ORDERS, &placed.order).is_some() {
                    return Err(Rejection::new(Reason::DuplicateOrder, placed.order.clone()));
                }
                let order = DispatchOrder {
                    community: placed.community.clone(),
                    building: placed.building.clone(),
                    unit: placed.unit.clone(),
                    household: placed.household.clone(),
                    priority: placed.priority,
                    weight_g: placed.weight_g,
                    phase: Phase::Waiting,
                    failed_drops: 0,
                    run: None,
                    lines: placed.lines.clone(),
                };
                state.put_json(ORDERS, &placed.order, &order);
                Ok(Applied::Changed)
            }
            Event::OrderCancelled(cancelled) => {
                let mut order = load_order(state, &cancelled.order)?;
                if order.phase != Phase::Waiting {
                    return Err(Rejection::new(
                        Reason::ImpossibleTransition,
                        format!(
                            "cancel of order {} in phase {:?}",
                            cancelled.order, order.phase
                        ),
                    ));
                }
                order.phase = Phase::Done;
                state.put_json(ORDERS, &cancelled.order, &order);
                Ok(Applied::Changed)
            }
            Event::OrderPicked(picked) => {
                let mut order = load_order(state, &picked.order)?;
                if order.phase != Phase::Waiting {
                    return Err(Rejection::new(
                        Reason::ImpossibleTransition,
                        format!("pick of order {} in phase {:?}", picked.order, order.phase),
                    ));
                }
                crate::command::check_pick_lines(&order.lines, &picked.lines)
                    .map_err(|error| Rejection::new(Reason::InvalidPick, error.to_string()))?;
                order.lines = Vec::new();
                // The same predicate as the delivery status: nothing picked, nothing to carry.
                order.phase = if crate::delivery::anything_picked(picked) {
                    Phase::Picked
                } else {
                    Phase::Done
                };
                state.put_json(ORDERS, &picked.order, &order);
                Ok(Applied::Changed)
            }
            Event::ArrivedAtCheckpoint(arrival) => {
                let mut community = load_community(state, &arrival.community)?;
                for order_id in &arrival.orders {
                    let mut order = load_order(state, order_id)?;
                    if order.phase != Phase::Picked {
                        return Err(Rejection::new(
                            Reason::ImpossibleTransition,
                            format!(
                                "order {order_id} arrived at the checkpoint in phase {:?}",
                                order.phase
                            ),
                        ));
                    }
                    order.phase = Phase::Queued;
                    state.put_json(ORDERS, order_id, &order);
                    enqueue(&mut community, order_id, &order);
                }
                plan_and_emit(state, envelope, &arrival.community, community, emit)?;
                Ok(Applied::Changed)
            }
            Event::DropDelivered(delivered) => {
                let mut order = load_order(state, &delivered.order)?;
                if order.phase != Phase::OnRun
                    || order.run.as_deref() != Some(delivered.run.as_str())
                {
                    return Err(Rejection::new(
                        Reason::ImpossibleTransition,
                        format!(
                            "drop of order {} in phase {:?}",
                            delivered.order, order.phase
                        ),
                    ));
                }
                order.phase = Phase::Done;
                state.put_json(ORDERS, &delivered.order, &order);
                Ok(Applied::Changed)
            }
            Event::DropFailed(failed) => {
                let mut order = load_order(state, &failed.order)?;
                if order.phase != Phase::OnRun || order.run.as_deref() != Some(failed.run.as_str())
                {
                    return Err(Rejection::new(
                        Reason::ImpossibleTransition,
                        format!(
                            "failed drop of order {} in phase {:?}",
                            failed.order, order.phase
                        ),
                    ));
                }
                order.failed_drops += 1;
                order.phase = if order.failed_drops >= MAX_DROP_ATTEMPTS {
                    Phase::Done
                } else {
                    Phase::DropFailed
                };
                state.put_json(ORDERS, &failed.order, &order);
                Ok(Applied::Changed)
            }
            Event::RunDeparted(departed) => {
                let mut community = load_community(state, &departed.community)?;
                if !community.runs.contains_key(&departed.run)
                    || community.departed.contains(&departed.run)
                {
                    return Err(Rejection::new(
                        Reason::ImpossibleTransition,
                        format!(
                            "run {} departed, but it is not waiting to leave",
                            departed.run
                        ),
                    ));
                }
                community.departed.insert(departed.run.clone());
                state.put_json(COMMUNITIES, &departed.community, &community);
                Ok(Applied::Changed)
            }
            Event::RunReturned(returned) => {
                let mut community = load_community(state, &returned.community)?;
                if !community.departed.remove(&returned.run) {
                    return Err(Rejection::new(
                        Reason::ImpossibleTransition,
                        format!("run {} returned, but it is not out", returned.run),
                    ));
                }
                let Some(orders) = community.runs.remove(&returned.run) else {
                    return Err(Rejection::new(Reason::UnknownRun, returned.run.clone()));
                };
                // The tricycle that took this run, whatever the event says.
                for tricycle in community.tricycles.values_mut() {
                    if tricycle.run.as_deref() == Some(returned.run.as_str()) {
                        tricycle.run = None;
                    }
                }
                for order_id in orders {
                    let mut order = load_order(state, &order_id)?;
                    if order.run.as_deref() != Some(returned.run.as_str()) {
                        continue;
                    }
                    match order.phase {
                        Phase::OnRun | Phase::DropFailed => {
                            order.phase = Phase::Queued;
                            state.put_json(ORDERS, &order_id, &order);
                            enqueue(&mut community, &order_id, &order);
                        }
                        Phase::Waiting | Phase::Picked | Phase::Queued | Phase::Done => {}
                    }
                }
                plan_and_emit(state, envelope, &returned.community, community, emit)?;
                Ok(Applied::Changed)
            }
            _ => Ok(Applied::Ignored),
        }
    }
}

#[cfg(test)]
mod tests;

/// Dispatch and the delivery status follow the same orders through different eyes; whatever
/// arrives, in whatever order, they must agree on where each order is, or an order gets
/// stuck (planned by one and refused by the other).
#[cfg(test)]
mod agreement;
