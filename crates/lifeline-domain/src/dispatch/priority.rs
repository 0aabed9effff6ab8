//! Raising the priority of a household's open orders when its registration makes it
//! vulnerable: dispatch finds them (its `household_orders` rows) and publishes one
//! `order.reprioritized.v1` each; every projection moves the order when it reads one.

use lifeline_events::{
    Actor, Envelope, Event, HouseholdRegistered, OrderReprioritized, Priority,
    deterministic_event_id,
};

use super::{
    Community, HOUSEHOLD_ORDERS, NAME, ORDERS, QUEUES, QueuedOrder, Rank, load_order, queue_key,
};
use crate::{Applied, Rejection, StateTx, StateTxExt};

/// A household registered as vulnerable: each of its open orders below the priority its
/// registration now gives (`command::priority_floor`) is raised, one
/// `order.reprioritized.v1` each, with ids derived from the registration. Orders are never
/// lowered: a flag taken off leaves what is already waiting where it is. In a replay
/// (`emit` is `None`) nothing is emitted: the raises are facts in the stream.
pub(super) fn raise_open_orders(
    state: &dyn StateTx,
    cause: &Envelope,
    household: &HouseholdRegistered,
    emit: Option<&mut Vec<Envelope>>,
) -> Result<Applied, Rejection> {
    let Some(emit) = emit else {
        return Ok(Applied::Ignored);
    };
    let floor = crate::command::priority_floor(false, household);
    if floor == Priority::Routine {
        return Ok(Applied::Ignored);
    }
    let prefix = format!("{}/", household.household);
    for (key, _) in state.scan_prefix(HOUSEHOLD_ORDERS, &prefix) {
        let order_id = &key[prefix.len()..];
        let order = load_order(state, order_id)?;
        if order.status.is_final() || order.priority >= floor {
            continue;
        }
        let id = deterministic_event_id(
            cause.unix_millis(),
            NAME,
            &[&cause.id.to_string(), "reprioritized", order_id],
        );
        let flags: Vec<&str> = household
            .vulnerabilities
            .iter()
            .map(lifeline_events::wire_name)
            .collect();
        let raised = OrderReprioritized {
            order: order_id.to_owned(),
            community: order.community.clone(),
            household: household.household.clone(),
            priority: floor,
            reason: format!("household registered as {}", flags.join(", ")),
        };
        let meta = cause.follow_up("lifeline-dispatch", Actor::system(NAME), cause.time);
        emit.push(Envelope::with_id(
            id,
            Event::OrderReprioritized(raised),
            meta,
        ));
    }
    Ok(Applied::Changed)
}

/// An order's priority raised: its row, and its place in the checkpoint queue when it waits
/// there (the same queue number, in the higher priority's part of the queue).
pub(super) fn reprioritize(
    state: &mut dyn StateTx,
    raised: &OrderReprioritized,
) -> Result<Applied, Rejection> {
    let mut order = load_order(state, &raised.order)?;
    // Already that high, or done with (a cancel can land between the raise's decision and
    // the raise): nothing to move, as in delivery.
    if raised.priority <= order.priority || order.status.is_final() {
        return Ok(Applied::Ignored);
    }
    order.priority = raised.priority;
    if let Some(rank) = order.queued {
        let mut community = Community::load(state, &order.community)?;
        let building = order.building.clone();
        community.dequeue(state, &raised.order, &building, rank);
        let raised_rank = Rank {
            priority: raised.priority,
            seq: rank.seq,
        };
        let queued = QueuedOrder {
            order: raised.order.clone(),
            building: building.clone(),
            unit: order.unit.clone(),
            household: order.household.clone(),
            weight_g: order.weight_g,
            rank: raised_rank,
        };
        state.put_json(
            QUEUES,
            &queue_key(&community.id, &building, raised_rank),
            &queued,
        );
        community.checkpoint.enqueue(queued);
        order.queued = Some(raised_rank);
        community.save(state)?;
    }
    state.put_json(ORDERS, &raised.order, &order);
    Ok(Applied::Changed)
}
