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
//! queued order, per tricycle (and one per free tricycle, in the order the planner takes
//! them), and one per community with the head of each building's queue and its seals.

mod community;
mod fleet;
mod intake;
mod map;
mod plan;
mod priority;
pub mod route;

use std::collections::BTreeMap;

use lifeline_events::{
    Actor, Envelope, Event, OrderLine, Priority, RunPlanned, SealScope, deterministic_event_id,
};
use serde::{Deserialize, Serialize};

use crate::delivery::{RunState, RunStep};
use crate::order::{OrderStatus, Step};
use crate::{Applied, Handler, Reason, Rejection, StateTx, StateTxExt};
use community::Community;

pub use plan::{
    Checkpoint, LOOK_PAST, LoadQueue, NextFree, PlannedLoad, QueuedOrder, Rank, Seals, Start,
    Tricycle, WINDOW, Window, free_in, plan_loads, stops_for,
};

pub const NAME: &str = "dispatch";
pub const ORDERS: &str = "orders";
pub const COMMUNITIES: &str = "communities";
/// One row per order waiting at a checkpoint, keyed `community/building/` and its rank, so
/// a building's rows read in queue order.
pub const QUEUES: &str = "queues";
/// `community/tricycle`: each tricycle's capacity and the run it is on.
pub const FLEET: &str = "fleet";
/// `community/<capacity inverted>/tricycle`, one row per free tricycle, largest first.
pub const FREE_TRICYCLES: &str = "free_tricycles";
pub const RUNS: &str = "runs";
/// Where each building is on its community's grid (`community/building`), for routes.
pub const PLACES: &str = "places";
/// `household/order`, one row per order placed: whose open orders to raise when a
/// household becomes vulnerable.
pub const HOUSEHOLD_ORDERS: &str = "household_orders";

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

/// The head of each building's queue and the seals of a community; the queues and the
/// fleet are rows of their own ([`QUEUES`], [`FLEET`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommunityDispatch {
    /// The fleet, only in rows written before it had rows of its own: moved to [`FLEET`]
    /// the first time such a row is loaded, and never written here again.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tricycles: BTreeMap<String, Tricycle>,
    pub waiting: BTreeMap<String, Rank>,
    pub next_seq: u64,
    #[serde(default)]
    pub seals: Seals,
    /// Where the checkpoint is: every run starts and ends there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gate: Option<route::Point>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DispatchRun {
    pub community: String,
    pub tricycle: String,
    /// In driving order, as the `run.planned` event lists them.
    pub orders: Vec<String>,
    pub state: RunState,
}

#[derive(Debug)]
pub struct Dispatch {
    /// Whether runs are routed over the map ([`route`]); off only to measure what routes
    /// save (`lifeline demo --no-routes`): the stops then keep the planner's order.
    routes: bool,
}

impl Default for Dispatch {
    fn default() -> Self {
        Dispatch { routes: true }
    }
}

impl Dispatch {
    /// Dispatch that keeps the planner's order of buildings (for comparison only).
    pub fn without_routes() -> Self {
        Dispatch { routes: false }
    }
}

/// The prefix of a building's queue rows: `community/building/`.
fn queue_prefix(community: &str, building: &str) -> String {
    let mut prefix = String::with_capacity(community.len() + building.len() + 2);
    prefix.push_str(community);
    prefix.push('/');
    prefix.push_str(building);
    prefix.push('/');
    prefix
}

/// One queued order's row: its building's prefix, then its rank so the rows sort in queue
/// order (urgent first, then earlier arrivals).
fn queue_key(community: &str, building: &str, rank: Rank) -> String {
    use std::fmt::Write;
    let mut key = queue_prefix(community, building);
    key.push(rank.priority.queue_char());
    let _ = write!(key, "{:020}", rank.seq);
    key
}

/// Reads up to `limit` orders of a building's queue from its rows, from `start` on.
fn read_queue(
    state: &dyn StateTx,
    community: &str,
    building: &str,
    start: Start,
    limit: usize,
) -> Result<plan::Window, Rejection> {
    let prefix = queue_prefix(community, building);
    let from = match start {
        Start::At(rank) => queue_key(community, building, rank),
        // The smallest key after the last one read.
        Start::After(rank) => queue_key(community, building, rank) + "\0",
    };
    let rows = state.scan_prefix_from(QUEUES, &prefix, &from, limit + 1);
    let more = rows.len() > limit;
    let orders = rows
        .iter()
        .take(limit)
        .map(|(key, row)| {
            serde_json::from_slice::<QueuedOrder>(row).map_err(|error| {
                Rejection::new(Reason::CorruptState, format!("{QUEUES}/{key}: {error}"))
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(plan::Window { orders, more })
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
    let Some(before) = fleet::load(state, &community.id, tricycle)? else {
        return Err(Rejection::new(
            Reason::ImpossibleTransition,
            format!(
                "run {run} planned on tricycle {tricycle}, unknown in {}",
                community.id
            ),
        ));
    };
    if source == Source::Fact && before.run.is_some() {
        return Err(Rejection::new(
            Reason::ImpossibleTransition,
            format!("run {run} planned on tricycle {tricycle}, which is out on another run"),
        ));
    }
    let busy = Tricycle {
        capacity_g: before.capacity_g,
        run: Some(run.to_owned()),
    };
    fleet::save(state, &community.id, tricycle, Some(&before), &busy);
    for order_id in &orders {
        let mut order = load_order(state, order_id)?;
        let Some(rank) = order.queued.take() else {
            return Err(Rejection::new(
                Reason::ImpossibleTransition,
                format!(
                    "run {run} carries order {order_id}, which is not waiting at the checkpoint"
                ),
            ));
        };
        // The planner took it out of the queue in memory already; a fact read back takes
        // it out here. Either way its row goes.
        community.dequeue(state, order_id, &order.building, rank);
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
    routes: bool,
) -> Result<(), Rejection> {
    let Some(emit) = emit else {
        return community.save(state);
    };
    if routes {
        map::load_places(state, &mut community)?;
    }
    let loads = {
        let id = community.id.clone();
        let state: &dyn StateTx = state;
        let mut load = |building: &str, start: Start| -> Result<plan::Window, Rejection> {
            read_queue(state, &id, building, start, plan::WINDOW)
        };
        let mut free = fleet::FreeCursor::new(&id);
        let mut next_free = || free.next(state);
        plan_loads(&mut community.checkpoint, &mut load, &mut next_free)?
    };
    for (index, load) in loads.iter().enumerate() {
        let id = deterministic_event_id(
            cause.unix_millis(),
            NAME,
            &[&cause.id.to_string(), &index.to_string()],
        );
        let run = format!("run-{}", id.simple());
        let (stops, distance_m) = if routes {
            map::routed_stops(state, &community, load)?
        } else {
            (stops_for(load), None)
        };
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
            distance_m,
        };
        let meta = cause.follow_up("lifeline-dispatch", Actor::system(NAME), cause.time);
        emit.push(Envelope::with_id(id, Event::RunPlanned(planned), meta));
    }
    community.save(state)
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
                let community = Community::load(state, &registered.community)?;
                let before = fleet::load(state, &registered.community, &registered.tricycle)?;
                let now = Tricycle {
                    capacity_g: registered.capacity_g,
                    run: before.as_ref().and_then(|before| before.run.clone()),
                };
                fleet::save(
                    state,
                    &registered.community,
                    &registered.tricycle,
                    before.as_ref(),
                    &now,
                );
                plan_and_emit(state, envelope, community, emit, self.routes)?;
                Ok(Applied::Changed)
            }
            Event::CommunityRegistered(registered) => {
                let gate = match (registered.checkpoint_x_m, registered.checkpoint_y_m) {
                    (Some(x_m), Some(y_m)) => Some(route::Point { x_m, y_m }),
                    _ => None,
                };
                let mut community = Community::load(state, &registered.community)?;
                // A registration without the checkpoint's place keeps the one known.
                community.gate = gate.or(community.gate);
                community.save(state)?;
                Ok(Applied::Changed)
            }
            Event::BuildingRegistered(registered) => {
                let place = route::Point {
                    x_m: registered.x_m,
                    y_m: registered.y_m,
                };
                let key = map::place_key(&registered.community, &registered.building);
                state.put_json(PLACES, &key, &place);
                Ok(Applied::Changed)
            }
            Event::HouseholdRegistered(household) => {
                priority::raise_open_orders(state, envelope, household, emit)
            }
            Event::OrderReprioritized(raised) => priority::reprioritize(state, raised),
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
                plan_and_emit(state, envelope, community, emit, self.routes)?;
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
                let index = format!("{}/{}", placed.household, placed.order);
                state.put_json(HOUSEHOLD_ORDERS, &index, &true);
                Ok(Applied::Changed)
            }
            Event::ParcelReceived(parcel) => {
                intake::parcel(state, envelope, parcel, emit, self.routes)
            }
            Event::ErrandRequested(errand) => intake::errand_requested(state, errand),
            Event::ErrandAccepted(accepted) => intake::errand_accepted(state, accepted),
            Event::ErrandCollected(collected) => {
                intake::errand_collected(state, envelope, collected, emit, self.routes)
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
                plan_and_emit(state, envelope, community, emit, self.routes)?;
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
                community.save(state)?;
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
                    plan_and_emit(state, envelope, community, emit, self.routes)?;
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
                if let Some(before) = fleet::load(state, &run.community, &run.tricycle)?
                    && before.run.as_deref() == Some(returned.run.as_str())
                {
                    let free = Tricycle {
                        capacity_g: before.capacity_g,
                        run: None,
                    };
                    fleet::save(state, &run.community, &run.tricycle, Some(&before), &free);
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
                plan_and_emit(state, envelope, community, emit, self.routes)?;
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
        &[
            ORDERS,
            COMMUNITIES,
            QUEUES,
            RUNS,
            PLACES,
            HOUSEHOLD_ORDERS,
            FLEET,
            FREE_TRICYCLES,
        ]
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
