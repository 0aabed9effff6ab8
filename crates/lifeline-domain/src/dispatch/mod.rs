//! Dispatch, a process manager: orders that were picked and reached the checkpoint are
//! batched into tricycle runs, grouped by building, within a tricycle's capacity, priority
//! orders first.
//!
//! Planning happens after each event that can make a run possible (goods arrive, a tricycle
//! is registered or comes back), from state alone, and the emitted `run.planned` event's id
//! is derived from the causing event. Re-processing the same input after a crash therefore
//! plans the same runs with the same ids, and JetStream drops the second publish.
//!
//! Where each order is comes from the one order state machine ([`OrderStatus`]), the same
//! one the delivery status follows; dispatch adds only what it needs to plan: whether the
//! order waits in a checkpoint queue, and on which run it rides.
//!
//! Runs are facts. A `run.planned` read back from the stream is applied as it was written:
//! when dispatch planned it itself the run is already recorded and nothing changes; when
//! it was not (a replay, or a run planned by another instance) the run is recorded from the
//! event. A replay ([`Handler::replay`]) never plans: it rebuilds which orders ride which
//! run from the `run.planned` facts, so a changed planner decides only new runs and never
//! rewrites history.
//!
//! State is kept in rows that stay small as the day grows: one row per order, per run, per
//! building queue, and one per community with its fleet and the head of each building's
//! queue.

mod intake;
mod plan;

use std::collections::BTreeMap;

use lifeline_events::{
    Actor, Envelope, Event, OrderLine, Priority, RunPlanned, SealScope, deterministic_event_id,
};
use serde::{Deserialize, Serialize};

use crate::delivery::{RunState, RunStep};
use crate::order::{OrderStatus, Step};
use crate::{Applied, Handler, Reason, Rejection, StateTx, StateTxExt};

pub use plan::{
    Checkpoint, PlannedLoad, QueuedOrder, Rank, Seals, Tricycle, plan_loads, stops_for,
};

pub const NAME: &str = "dispatch";
pub const ORDERS: &str = "orders";
pub const COMMUNITIES: &str = "communities";
/// One row per building with waiting orders, keyed `community/building`.
pub const QUEUES: &str = "queues";
pub const RUNS: &str = "runs";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DispatchOrder {
    pub community: String,
    pub building: String,
    pub unit: String,
    pub household: String,
    pub priority: Priority,
    pub weight_g: u32,
    pub status: OrderStatus,
    /// The run it is on, or was last on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<String>,
    /// Its place in the checkpoint queue while it waits there for a tricycle.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queued: Option<Rank>,
    /// The ordered lines, until the pick: a pick is checked against them by the same rule
    /// as delivery and inventory, so all three park the same picks.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lines: Vec<OrderLine>,
    /// A medicine errand: accepted and collected by a volunteer instead of picked.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub errand: bool,
}

/// A community's fleet and the head of each building's queue; the queues themselves are
/// rows of their own.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommunityDispatch {
    pub tricycles: BTreeMap<String, Tricycle>,
    pub waiting: BTreeMap<String, Rank>,
    pub next_seq: u64,
    #[serde(default)]
    pub seals: Seals,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DispatchRun {
    pub community: String,
    pub tricycle: String,
    /// In driving order, as the `run.planned` event lists them.
    pub orders: Vec<String>,
    pub state: RunState,
}

#[derive(Debug, Default)]
pub struct Dispatch;

fn queue_key(community: &str, building: &str) -> String {
    format!("{community}/{building}")
}

fn load_order(state: &dyn StateTx, order: &str) -> Result<DispatchOrder, Rejection> {
    state
        .get_json::<DispatchOrder>(ORDERS, order)?
        .ok_or_else(|| Rejection::new(Reason::UnknownOrder, order.to_owned()))
}

fn load_run(state: &dyn StateTx, run: &str) -> Result<Option<DispatchRun>, Rejection> {
    state.get_json::<DispatchRun>(RUNS, run)
}

fn step(order_id: &str, order: &mut DispatchOrder, step: Step) -> Result<(), Rejection> {
    order.status = order.status.next(step).map_err(|error| {
        Rejection::new(
            Reason::ImpossibleTransition,
            format!("order {order_id}: {error}"),
        )
    })?;
    Ok(())
}

/// One community's checkpoint for the duration of an event: loaded from its rows, changed
/// in memory, written back by [`Community::save`] (only the queues it touched).
struct Community {
    id: String,
    next_seq: u64,
    checkpoint: Checkpoint,
}

impl Community {
    fn load(state: &dyn StateTx, id: &str) -> Result<Self, Rejection> {
        let row = state
            .get_json::<CommunityDispatch>(COMMUNITIES, id)?
            .unwrap_or_default();
        Ok(Community {
            id: id.to_owned(),
            next_seq: row.next_seq,
            checkpoint: Checkpoint {
                tricycles: row.tricycles,
                waiting: row.waiting,
                queues: BTreeMap::new(),
                seals: row.seals,
            },
        })
    }

    fn load_queue(&mut self, state: &dyn StateTx, building: &str) -> Result<(), Rejection> {
        if !self.checkpoint.queues.contains_key(building) {
            let queue = state
                .get_json::<Vec<QueuedOrder>>(QUEUES, &queue_key(&self.id, building))?
                .unwrap_or_default();
            self.checkpoint.queues.insert(building.to_owned(), queue);
        }
        Ok(())
    }

    /// Queues an order at the checkpoint behind everything already there of its priority.
    fn enqueue(
        &mut self,
        state: &mut dyn StateTx,
        order_id: &str,
        order: &mut DispatchOrder,
    ) -> Result<(), Rejection> {
        self.load_queue(state, &order.building)?;
        let rank = Rank {
            priority: order.priority,
            seq: self.next_seq,
        };
        self.next_seq += 1;
        self.checkpoint.enqueue(QueuedOrder {
            order: order_id.to_owned(),
            building: order.building.clone(),
            unit: order.unit.clone(),
            household: order.household.clone(),
            weight_g: order.weight_g,
            rank,
        });
        order.queued = Some(rank);
        state.put_json(ORDERS, order_id, order);
        Ok(())
    }

    fn save(self, state: &mut dyn StateTx) {
        let Checkpoint {
            tricycles,
            waiting,
            queues,
            seals,
        } = self.checkpoint;
        for (building, queue) in queues {
            let key = queue_key(&self.id, &building);
            if queue.is_empty() {
                state.delete(QUEUES, &key);
            } else {
                state.put_json(QUEUES, &key, &queue);
            }
        }
        let row = CommunityDispatch {
            tricycles,
            waiting,
            next_seq: self.next_seq,
            seals,
        };
        state.put_json(COMMUNITIES, &self.id, &row);
    }
}

/// Where a run's orders are when it is recorded: still in their queues (a fact read back),
/// or already taken out by the planner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    Fact,
    Planner,
}

/// Puts `run` on `tricycle` and its orders on the run: the same rows whether dispatch
/// planned the run just now or reads it back from the stream.
fn record_run(
    state: &mut dyn StateTx,
    community: &mut Community,
    run: &str,
    tricycle: &str,
    orders: Vec<String>,
    source: Source,
) -> Result<(), Rejection> {
    let Some(busy) = community.checkpoint.tricycles.get_mut(tricycle) else {
        return Err(Rejection::new(
            Reason::ImpossibleTransition,
            format!(
                "run {run} planned on tricycle {tricycle}, unknown in {}",
                community.id
            ),
        ));
    };
    if source == Source::Fact && busy.run.is_some() {
        return Err(Rejection::new(
            Reason::ImpossibleTransition,
            format!("run {run} planned on tricycle {tricycle}, which is out on another run"),
        ));
    }
    busy.run = Some(run.to_owned());
    for order_id in &orders {
        let mut order = load_order(state, order_id)?;
        if order.queued.take().is_none() {
            return Err(Rejection::new(
                Reason::ImpossibleTransition,
                format!(
                    "run {run} carries order {order_id}, which is not waiting at the checkpoint"
                ),
            ));
        }
        if source == Source::Fact {
            community.load_queue(state, &order.building)?;
            community.checkpoint.dequeue(&order.building, order_id);
        }
        step(order_id, &mut order, Step::PlanOnRun)?;
        order.run = Some(run.to_owned());
        state.put_json(ORDERS, order_id, &order);
    }
    let record = DispatchRun {
        community: community.id.clone(),
        tricycle: tricycle.to_owned(),
        orders,
        state: RunState::Planned,
    };
    state.put_json(RUNS, run, &record);
    Ok(())
}

/// Plans what can be planned, records it and emits one `run.planned` per run. In a replay
/// (`emit` is `None`) nothing is planned: the runs are read back from the stream instead.
fn plan_and_emit(
    state: &mut dyn StateTx,
    cause: &Envelope,
    mut community: Community,
    emit: Option<&mut Vec<Envelope>>,
) -> Result<(), Rejection> {
    let Some(emit) = emit else {
        community.save(state);
        return Ok(());
    };
    let loads = {
        let id = community.id.clone();
        let mut load_queue = |building: &str| -> Result<Vec<QueuedOrder>, Rejection> {
            Ok(state
                .get_json::<Vec<QueuedOrder>>(QUEUES, &queue_key(&id, building))?
                .unwrap_or_default())
        };
        plan_loads(&mut community.checkpoint, &mut load_queue)?
    };
    for (index, load) in loads.iter().enumerate() {
        let id = deterministic_event_id(
            cause.unix_millis(),
            NAME,
            &[&cause.id.to_string(), &index.to_string()],
        );
        let run = format!("run-{}", id.simple());
        let stops = stops_for(load);
        let orders = stops.iter().flat_map(|stop| stop.orders.clone()).collect();
        record_run(
            state,
            &mut community,
            &run,
            &load.tricycle,
            orders,
            Source::Planner,
        )?;
        let planned = RunPlanned {
            run,
            community: community.id.clone(),
            tricycle: load.tricycle.clone(),
            stops,
            load_g: load.load_g,
        };
        let meta = cause.follow_up("lifeline-dispatch", Actor::system(NAME), cause.time);
        emit.push(Envelope::with_id(id, Event::RunPlanned(planned), meta));
    }
    community.save(state);
    Ok(())
}

impl Dispatch {
    fn handle(
        &self,
        state: &mut dyn StateTx,
        envelope: &Envelope,
        emit: Option<&mut Vec<Envelope>>,
    ) -> Result<Applied, Rejection> {
        match &envelope.event {
            Event::TricycleRegistered(registered) => {
                let mut community = Community::load(state, &registered.community)?;
                community
                    .checkpoint
                    .tricycles
                    .entry(registered.tricycle.clone())
                    .or_insert(Tricycle {
                        capacity_g: registered.capacity_g,
                        run: None,
                    })
                    .capacity_g = registered.capacity_g;
                plan_and_emit(state, envelope, community, emit)?;
                Ok(Applied::Changed)
            }
            Event::SealChanged(changed) => {
                let mut community = Community::load(state, &changed.community)?;
                let seals = &mut community.checkpoint.seals;
                let (set, id) = match &changed.scope {
                    SealScope::Community => return Ok(Applied::Ignored),
                    SealScope::Building { building } => (&mut seals.buildings, building),
                    SealScope::Unit { unit, .. } => (&mut seals.units, unit),
                };
                if changed.sealed {
                    set.insert(id.clone());
                } else {
                    set.remove(id);
                }
                // A lifted seal may let waiting orders share a run again.
                plan_and_emit(state, envelope, community, emit)?;
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
                    status: OrderStatus::placed(),
                    run: None,
                    queued: None,
                    lines: placed.lines.clone(),
                    errand: false,
                };
                state.put_json(ORDERS, &placed.order, &order);
                Ok(Applied::Changed)
            }
            Event::ParcelReceived(parcel) => intake::parcel(state, envelope, parcel, emit),
            Event::ErrandRequested(errand) => intake::errand_requested(state, errand),
            Event::ErrandAccepted(accepted) => intake::errand_accepted(state, accepted),
            Event::ErrandCollected(collected) => {
                intake::errand_collected(state, envelope, collected, emit)
            }
            Event::OrderCancelled(cancelled) => {
                let mut order = load_order(state, &cancelled.order)?;
                step(&cancelled.order, &mut order, Step::Cancel)?;
                state.put_json(ORDERS, &cancelled.order, &order);
                Ok(Applied::Changed)
            }
            Event::OrderPicked(picked) => {
                let mut order = load_order(state, &picked.order)?;
                let anything_picked = crate::delivery::anything_picked(picked);
                step(&picked.order, &mut order, Step::Pick { anything_picked })?;
                crate::command::check_pick_lines(&order.lines, &picked.lines)
                    .map_err(|error| Rejection::new(Reason::InvalidPick, error.to_string()))?;
                order.lines = Vec::new();
                state.put_json(ORDERS, &picked.order, &order);
                Ok(Applied::Changed)
            }
            Event::ArrivedAtCheckpoint(arrival) => {
                let mut community = Community::load(state, &arrival.community)?;
                for order_id in &arrival.orders {
                    let mut order = load_order(state, order_id)?;
                    step(order_id, &mut order, Step::ArriveAtCheckpoint)?;
                    community.enqueue(state, order_id, &mut order)?;
                }
                plan_and_emit(state, envelope, community, emit)?;
                Ok(Applied::Changed)
            }
            Event::RunPlanned(planned) => {
                if load_run(state, &planned.run)?.is_some() {
                    // Planned here, read back: already recorded.
                    return Ok(Applied::Ignored);
                }
                let mut community = Community::load(state, &planned.community)?;
                let orders = planned
                    .stops
                    .iter()
                    .flat_map(|stop| stop.orders.clone())
                    .collect();
                record_run(
                    state,
                    &mut community,
                    &planned.run,
                    &planned.tricycle,
                    orders,
                    Source::Fact,
                )?;
                community.save(state);
                Ok(Applied::Changed)
            }
            Event::DropDelivered(delivered) => {
                let mut order = load_order(state, &delivered.order)?;
                check_on_run(&delivered.order, &order, &delivered.run)?;
                step(&delivered.order, &mut order, Step::Deliver)?;
                state.put_json(ORDERS, &delivered.order, &order);
                Ok(Applied::Changed)
            }
            Event::DropFailed(failed) => {
                let mut order = load_order(state, &failed.order)?;
                check_on_run(&failed.order, &order, &failed.run)?;
                step(&failed.order, &mut order, Step::FailDrop)?;
                state.put_json(ORDERS, &failed.order, &order);
                // An errand that failed at the door in its volunteer's hands has no run to
                // come back with: it waits at the checkpoint for a tricycle at once.
                if order.run.as_deref() == Some(failed.order.as_str())
                    && order.status.waits_for_run()
                {
                    let mut community = Community::load(state, &failed.community)?;
                    community.enqueue(state, &failed.order, &mut order)?;
                    plan_and_emit(state, envelope, community, emit)?;
                }
                Ok(Applied::Changed)
            }
            Event::RunDeparted(departed) => {
                let mut run = run_for_step(state, &departed.run, RunStep::Depart)?;
                run.state = RunState::Departed;
                state.put_json(RUNS, &departed.run, &run);
                Ok(Applied::Changed)
            }
            Event::RunReturned(returned) => {
                let mut run = run_for_step(state, &returned.run, RunStep::Return)?;
                run.state = RunState::Returned;
                state.put_json(RUNS, &returned.run, &run);
                let mut community = Community::load(state, &run.community)?;
                // The tricycle that took this run, whatever the event says.
                for tricycle in community.checkpoint.tricycles.values_mut() {
                    if tricycle.run.as_deref() == Some(returned.run.as_str()) {
                        tricycle.run = None;
                    }
                }
                for order_id in &run.orders {
                    let mut order = load_order(state, order_id)?;
                    if order.run.as_deref() != Some(returned.run.as_str()) {
                        continue;
                    }
                    // Undropped orders come back to the checkpoint; a failed drop that was
                    // not the last rides again; delivered and final ones stay where they are.
                    if let Ok(back) = order.status.next(Step::ReturnUndropped) {
                        order.status = back;
                    }
                    if order.status.waits_for_run() {
                        community.enqueue(state, order_id, &mut order)?;
                    }
                }
                plan_and_emit(state, envelope, community, emit)?;
                Ok(Applied::Changed)
            }
            _ => Ok(Applied::Ignored),
        }
    }
}

/// A drop is for the run the order is on.
fn check_on_run(order_id: &str, order: &DispatchOrder, run: &str) -> Result<(), Rejection> {
    if order.run.as_deref() == Some(run) {
        return Ok(());
    }
    Err(Rejection::new(
        Reason::ImpossibleTransition,
        format!(
            "drop of order {order_id} on run {run}, but it is on {}",
            order.run.as_deref().unwrap_or("no run")
        ),
    ))
}

fn run_for_step(
    state: &dyn StateTx,
    run_id: &str,
    run_step: RunStep,
) -> Result<DispatchRun, Rejection> {
    let Some(run) = load_run(state, run_id)? else {
        return Err(Rejection::new(Reason::UnknownRun, run_id.to_owned()));
    };
    if run.state.next(run_step).is_none() {
        return Err(Rejection::new(
            Reason::ImpossibleTransition,
            format!(
                "run {run_id} cannot {run_step:?} while {}",
                run.state.as_str()
            ),
        ));
    }
    Ok(run)
}

impl Handler for Dispatch {
    fn name(&self) -> &'static str {
        NAME
    }

    fn tables(&self) -> &'static [&'static str] {
        &[ORDERS, COMMUNITIES, QUEUES, RUNS]
    }

    fn apply(
        &self,
        state: &mut dyn StateTx,
        envelope: &Envelope,
        emit: &mut Vec<Envelope>,
    ) -> Result<Applied, Rejection> {
        self.handle(state, envelope, Some(emit))
    }

    fn replay(&self, state: &mut dyn StateTx, envelope: &Envelope) -> Result<Applied, Rejection> {
        self.handle(state, envelope, None)
    }
}

#[cfg(test)]
mod examples;
#[cfg(test)]
mod tests;

/// Dispatch and the delivery status follow the same orders through different eyes; whatever
/// arrives, in whatever order, they must agree on where each order is, and a replay from
/// the facts must rebuild what the live run decided.
#[cfg(test)]
mod agreement;
