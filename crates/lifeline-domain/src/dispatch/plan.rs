//! The planner: which waiting orders ride which free tricycle. Pure and deterministic: the
//! same checkpoint always gives the same loads.
//!
//! It sees a community's checkpoint the way the store keeps it: the free tricycles, read
//! one at a time as the planner needs them, one queue per building (loaded only when the
//! planner reaches that building), and the rank of each building's most urgent waiting
//! order. The cost of a plan grows with the orders it loads, the tricycles it fills and
//! the buildings it visits, not with everything waiting at the checkpoint or the fleet.

use std::collections::{BTreeMap, BTreeSet};

use lifeline_events::{Priority, Stop};
use serde::{Deserialize, Serialize};

use super::route::{Point, leg_m};
use crate::Rejection;

/// Queue order: urgent first, then earlier arrivals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rank {
    pub priority: Priority,
    /// Queue position: earlier arrivals first within a priority.
    pub seq: u64,
}

impl Rank {
    fn key(&self) -> (std::cmp::Reverse<Priority>, u64) {
        (std::cmp::Reverse(self.priority), self.seq)
    }
}

impl Ord for Rank {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.key().cmp(&other.key())
    }
}

impl PartialOrd for Rank {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueuedOrder {
    pub order: String,
    pub building: String,
    pub unit: String,
    pub household: String,
    pub weight_g: u32,
    pub rank: Rank,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tricycle {
    pub capacity_g: u32,
    /// The run it is on; `None` when it is free at the checkpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<String>,
}

/// How many waiting orders of one building the planner reads at a time.
pub const WINDOW: usize = 64;

/// How many waiting orders of one building a tricycle looks past (too heavy for what room
/// is left, or on the other side of a seal) before it moves on to the next building. It
/// bounds the work of one plan whatever waits at the checkpoint.
pub const LOOK_PAST: usize = 32;

/// Part of a building's queue, read from the store: up to [`WINDOW`] orders in rank order
/// and whether more may wait behind them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Window {
    pub orders: Vec<QueuedOrder>,
    pub more: bool,
}

/// Where a window of a building's queue starts: at its head (a rank no later than its
/// first order, so the read never walks over the rows of orders gone before it), or after
/// the last order read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    At(Rank),
    After(Rank),
}

/// Reads a window of a building's queue.
pub type LoadQueue<'a> = dyn FnMut(&str, Start) -> Result<Window, Rejection> + 'a;

/// The community's next free tricycle and its capacity: the largest first (ties by id),
/// each once per plan, `None` when no other is free.
pub type NextFree<'a> = dyn FnMut() -> Result<Option<(String, u32)>, Rejection> + 'a;

/// The free tricycles of `fleet`, one at a time, in the order [`NextFree`] promises
/// (callers with the fleet in memory: tests and examples).
pub fn free_in(
    fleet: &BTreeMap<String, Tricycle>,
) -> impl FnMut() -> Result<Option<(String, u32)>, Rejection> + use<> {
    let mut free: Vec<(String, u32)> = fleet
        .iter()
        .filter(|(_, tricycle)| tricycle.run.is_none())
        .map(|(id, tricycle)| (id.clone(), tricycle.capacity_g))
        .collect();
    // Popped from the back: smallest capacity first, ties by id descending.
    free.sort_by(|(id_a, a), (id_b, b)| a.cmp(b).then(id_b.cmp(id_a)));
    move || Ok(free.pop())
}

/// A community's checkpoint as the planner sees it. `queues` holds what was read so far of
/// each building's queue (sorted by rank; `partial` names the buildings with more behind
/// what was read, and the last rank read); `waiting` names every building with a waiting
/// order and the rank of its first one, read or not.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Checkpoint {
    pub waiting: BTreeMap<String, Rank>,
    pub queues: BTreeMap<String, Vec<QueuedOrder>>,
    pub partial: BTreeMap<String, Rank>,
    /// The seals that change planning: sealed buildings and sealed units. A run goes
    /// either wholly behind seals or nowhere behind one, so the door-to-door group rides
    /// the sealed runs and every other courier can take the rest.
    pub seals: Seals,
    /// Where the waiting buildings are, when the map is known: a run then fills up from
    /// the buildings nearest the one it loaded last (see [`plan_loads`]). Empty: rank order.
    pub places: BTreeMap<String, Point>,
}

/// Sealed buildings and units of one community (a community seal changes nothing here:
/// supplies stop at the checkpoint, which is how every delivery goes).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seals {
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub buildings: BTreeSet<String>,
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub units: BTreeSet<String>,
}

impl Seals {
    /// Whether a courier must be cleared for seals to take this order to its door.
    pub fn behind(&self, order: &QueuedOrder) -> bool {
        self.buildings.contains(&order.building) || self.units.contains(&order.unit)
    }
}

/// A run the planner chose, before it becomes an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedLoad {
    pub tricycle: String,
    pub orders: Vec<QueuedOrder>,
    pub load_g: u32,
}

impl Checkpoint {
    /// A checkpoint with every queue in memory (tests, and callers that have them all).
    pub fn with_queue(orders: Vec<QueuedOrder>) -> Self {
        let mut checkpoint = Checkpoint::default();
        for order in orders {
            checkpoint.enqueue(order);
        }
        checkpoint
    }

    /// Puts an order in its building's queue at its rank: in memory when it falls within
    /// what was read of the queue (or the queue is all in memory), and as the building's
    /// head when it comes first.
    pub fn enqueue(&mut self, order: QueuedOrder) {
        let building = order.building.clone();
        let rank = order.rank;
        let read = self.queues.contains_key(&building) || !self.waiting.contains_key(&building);
        let within = self.partial.get(&building).is_none_or(|last| rank < *last);
        if read && within {
            let queue = self.queues.entry(building.clone()).or_default();
            let at = queue.partition_point(|queued| queued.rank <= rank);
            queue.insert(at, order);
        }
        let head = self.waiting.entry(building).or_insert(rank);
        *head = (*head).min(rank);
    }

    /// Takes an order out of its building's queue as far as it is in memory; false when
    /// it was not there. The caller sets the building's head from the store afterwards.
    pub fn dequeue(&mut self, building: &str, order: &str) -> bool {
        let Some(queue) = self.queues.get_mut(building) else {
            return false;
        };
        let Some(at) = queue.iter().position(|queued| queued.order == order) else {
            return false;
        };
        queue.remove(at);
        if !self.partial.contains_key(building) {
            self.refresh_head(building);
        }
        true
    }

    fn refresh_head(&mut self, building: &str) {
        match self.queues.get(building).and_then(|queue| queue.first()) {
            Some(first) => self.waiting.insert(building.to_owned(), first.rank),
            None => self.waiting.remove(building),
        };
    }

    /// Reads the first window of a building's queue unless it is in memory already.
    fn read(&mut self, building: &str, load: &mut LoadQueue<'_>) -> Result<(), Rejection> {
        if self.queues.contains_key(building) {
            return Ok(());
        }
        let Some(head) = self.waiting.get(building).copied() else {
            return Ok(());
        };
        let window = load(building, Start::At(head))?;
        self.take_window(building, window);
        Ok(())
    }

    /// Reads the next window of a building's queue; false when nothing more waits.
    fn read_more(&mut self, building: &str, load: &mut LoadQueue<'_>) -> Result<bool, Rejection> {
        let Some(last) = self.partial.get(building).copied() else {
            return Ok(false);
        };
        let window = load(building, Start::After(last))?;
        let found = !window.orders.is_empty();
        self.take_window(building, window);
        Ok(found)
    }

    fn take_window(&mut self, building: &str, window: Window) {
        match (window.more, window.orders.last()) {
            (true, Some(last)) => self.partial.insert(building.to_owned(), last.rank),
            _ => self.partial.remove(building),
        };
        self.queues
            .entry(building.to_owned())
            .or_default()
            .extend(window.orders);
    }

    /// The building's head after the planner took orders: the next window is read when
    /// the one in memory ran out.
    fn settle_head(&mut self, building: &str, load: &mut LoadQueue<'_>) -> Result<(), Rejection> {
        while self.queues.get(building).is_some_and(Vec::is_empty) {
            if !self.read_more(building, load)? {
                break;
            }
        }
        self.refresh_head(building);
        Ok(())
    }

    /// Every order waiting, in rank order, as far as it is in memory (tests and views).
    pub fn waiting_orders(&self) -> impl Iterator<Item = &QueuedOrder> {
        let mut all: Vec<&QueuedOrder> = self.queues.values().flatten().collect();
        all.sort_by_key(|queued| queued.rank);
        all.into_iter()
    }
}

/// Fills free tricycles from the queues until either runs out: the largest free tricycle
/// first; it starts at the building whose first waiting order comes first (most urgent,
/// then longest waiting) and fills up from the buildings whose first order is of the most
/// urgent priority still waiting, nearest to the building it loaded last (by rank when the
/// map is not known, or for a tie); each building's orders in rank order while they fit
/// (an order heavier than the tricycle still goes, alone). So the order at the head of the
/// checkpoint always rides next, and the rest of its tricycle comes from next door rather
/// than from across the estate.
/// The run's first order decides whether it goes behind seals; orders on the other side
/// of that line wait for another run. A tricycle looks past at most [`LOOK_PAST`] orders of
/// one building that it cannot take before it moves on.
/// `load` reads a building's queue a [`Window`] at a time, when the planner reaches it.
pub fn plan_loads(
    checkpoint: &mut Checkpoint,
    load: &mut LoadQueue<'_>,
    next_free: &mut NextFree<'_>,
) -> Result<Vec<PlannedLoad>, Rejection> {
    let mut loads = Vec::new();
    loop {
        if checkpoint.waiting.is_empty() {
            return Ok(loads);
        }
        let Some((tricycle, capacity_g)) = next_free()? else {
            return Ok(loads);
        };
        let mut buildings: Vec<(Rank, String)> = checkpoint
            .waiting
            .iter()
            .map(|(building, rank)| (*rank, building.clone()))
            .collect();
        buildings.sort();
        let mut orders: Vec<QueuedOrder> = Vec::new();
        let mut load_g: u32 = 0;
        let mut last: Option<Point> = None;
        while !buildings.is_empty() {
            let next = next_building(&buildings, last, &checkpoint.places);
            let (_, building) = buildings.remove(next);
            last = checkpoint.places.get(&building).copied();
            checkpoint.read(&building, load)?;
            let (mut index, mut passed) = (0, 0);
            while load_g < capacity_g && passed < LOOK_PAST {
                let in_memory = checkpoint.queues.get(&building).map_or(0, Vec::len);
                if index >= in_memory {
                    if checkpoint.read_more(&building, load)? {
                        continue;
                    }
                    break;
                }
                let Checkpoint { queues, seals, .. } = &mut *checkpoint;
                let queue = queues.entry(building.clone()).or_default();
                let weight_g = queue[index].weight_g;
                let same_side = orders
                    .first()
                    .is_none_or(|first| seals.behind(first) == seals.behind(&queue[index]));
                if same_side && (load_g.saturating_add(weight_g) <= capacity_g || orders.is_empty())
                {
                    load_g = load_g.saturating_add(weight_g);
                    orders.push(queue.remove(index));
                } else {
                    index += 1;
                    passed += 1;
                }
            }
            checkpoint.settle_head(&building, load)?;
            if load_g >= capacity_g {
                break;
            }
        }
        if orders.is_empty() {
            // Every building's first orders were looked past (seals): nothing to ride.
            return Ok(loads);
        }
        // `next_free` never offers it again in this plan; the caller records the run.
        loads.push(PlannedLoad {
            tricycle,
            orders,
            load_g,
        });
    }
}

/// Which of `buildings` (sorted by rank) a run loads next: the first when nothing is
/// loaded yet or the map is not known; otherwise, of those whose first waiting order is of
/// the most urgent priority among them, the nearest to `last` (ties, and buildings off the
/// map, by rank).
fn next_building(
    buildings: &[(Rank, String)],
    last: Option<Point>,
    places: &BTreeMap<String, Point>,
) -> usize {
    let Some(last) = last else {
        return 0;
    };
    let most_urgent = buildings[0].0.priority;
    buildings
        .iter()
        .enumerate()
        .take_while(|(_, (rank, _))| rank.priority == most_urgent)
        .min_by_key(|(index, (_, building))| {
            let metres = places
                .get(building)
                .map_or(u64::MAX, |place| leg_m(last, *place));
            (metres, *index)
        })
        .map_or(0, |(index, _)| index)
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
