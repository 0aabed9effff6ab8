//! One community's checkpoint while dispatch applies an event: its row (queue heads, seals,
//! the checkpoint's place), the queue rows it reads and writes, and the heads it writes
//! back. The fleet has rows of its own ([`super::fleet`]).

use std::collections::BTreeMap;

use super::{
    COMMUNITIES, Checkpoint, CommunityDispatch, DispatchOrder, ORDERS, QUEUES, QueuedOrder, Rank,
    Start, fleet, plan, queue_key, read_queue, route,
};
use crate::{Rejection, StateTx, StateTxExt};

/// One community's checkpoint for the duration of an event: its row loaded, queue rows
/// read a window at a time and written one per order as orders join and leave, the row
/// written back by [`Community::save`] with the head of each building it touched.
pub(super) struct Community {
    pub(super) id: String,
    pub(super) next_seq: u64,
    pub(super) gate: Option<route::Point>,
    pub(super) checkpoint: Checkpoint,
    /// Buildings whose queue rows changed in this event, and a rank no later than the
    /// first order of each (its head when the event began, or an order queued ahead of it).
    pub(super) touched: BTreeMap<String, Option<Rank>>,
}

impl Community {
    pub(super) fn load(state: &mut dyn StateTx, id: &str) -> Result<Self, Rejection> {
        let mut row = state
            .get_json::<CommunityDispatch>(COMMUNITIES, id)?
            .unwrap_or_default();
        // A row written before the fleet had rows of its own: moved now, and the row
        // saved at the end of this event no longer carries it.
        fleet::adopt(state, id, std::mem::take(&mut row.tricycles));
        Ok(Community {
            id: id.to_owned(),
            next_seq: row.next_seq,
            gate: row.gate,
            checkpoint: Checkpoint {
                waiting: row.waiting,
                seals: row.seals,
                ..Default::default()
            },
            touched: BTreeMap::new(),
        })
    }

    /// Queues an order at the checkpoint behind everything already there of its priority.
    pub(super) fn enqueue(
        &mut self,
        state: &mut dyn StateTx,
        order_id: &str,
        order: &mut DispatchOrder,
    ) -> Result<(), Rejection> {
        let rank = Rank {
            priority: order.priority,
            seq: self.next_seq,
        };
        self.next_seq += 1;
        let queued = QueuedOrder {
            order: order_id.to_owned(),
            building: order.building.clone(),
            unit: order.unit.clone(),
            household: order.household.clone(),
            weight_g: order.weight_g,
            rank,
        };
        state.put_json(QUEUES, &queue_key(&self.id, &order.building, rank), &queued);
        self.touch(&order.building);
        self.checkpoint.enqueue(queued);
        order.queued = Some(rank);
        state.put_json(ORDERS, order_id, order);
        Ok(())
    }

    /// Takes an order's row out of its building's queue.
    pub(super) fn dequeue(
        &mut self,
        state: &mut dyn StateTx,
        order_id: &str,
        building: &str,
        rank: Rank,
    ) {
        self.touch(building);
        state.delete(QUEUES, &queue_key(&self.id, building, rank));
        self.checkpoint.dequeue(building, order_id);
    }

    /// Remembers that `building`'s rows change, with its head before they do.
    pub(super) fn touch(&mut self, building: &str) {
        if !self.touched.contains_key(building) {
            let head = self.checkpoint.waiting.get(building).copied();
            self.touched.insert(building.to_owned(), head);
        }
    }

    pub(super) fn save(mut self, state: &mut dyn StateTx) -> Result<(), Rejection> {
        for (building, before) in std::mem::take(&mut self.touched) {
            // No order queued in this event sorts before the lower of the old head and the
            // head now in memory (which counts what this event queued).
            let floor = match (before, self.checkpoint.waiting.get(&building)) {
                (Some(before), Some(now)) => Some(before.min(*now)),
                (before, now) => before.or(now.copied()),
            };
            let first = match floor {
                Some(floor) => read_queue(state, &self.id, &building, Start::At(floor), 1)?,
                None => plan::Window::default(),
            };
            match first.orders.first() {
                Some(head) => self.checkpoint.waiting.insert(building, head.rank),
                None => self.checkpoint.waiting.remove(&building),
            };
        }
        let Checkpoint { waiting, seals, .. } = self.checkpoint;
        let row = CommunityDispatch {
            tricycles: BTreeMap::new(),
            waiting,
            next_seq: self.next_seq,
            seals,
            gate: self.gate,
        };
        state.put_json(COMMUNITIES, &self.id, &row);
        Ok(())
    }
}
