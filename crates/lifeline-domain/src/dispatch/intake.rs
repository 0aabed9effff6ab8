//! Orders that reach the checkpoint without a partner's pick: parcels recorded there, and
//! medicine errands a volunteer collects (to the checkpoint queue, or straight to the door
//! as the errand's own run).

use lifeline_events::{
    Envelope, ErrandAccepted, ErrandCollected, ErrandRequested, ErrandRoute, ParcelReceived,
    Priority,
};

use super::{Community, DispatchOrder, ORDERS, load_order, plan_and_emit, step};
use crate::order::{OrderStatus, Step};
use crate::{Applied, Reason, Rejection, StateTx, StateTxExt};

/// Where an order goes: community, building, unit, household.
struct OrderPlace<'a> {
    community: &'a str,
    building: &'a str,
    unit: &'a str,
    household: &'a str,
}

/// A parcel's or errand's row, refused when the id is taken.
fn new_order(
    state: &dyn StateTx,
    id: &str,
    place: OrderPlace<'_>,
    priority: Priority,
    weight_g: u32,
    status: OrderStatus,
) -> Result<DispatchOrder, Rejection> {
    if state.get(ORDERS, id).is_some() {
        return Err(Rejection::new(Reason::DuplicateOrder, id.to_owned()));
    }
    Ok(DispatchOrder {
        community: place.community.to_owned(),
        building: place.building.to_owned(),
        unit: place.unit.to_owned(),
        household: place.household.to_owned(),
        priority,
        weight_g,
        status,
        run: None,
        queued: None,
        lines: Vec::new(),
        errand: false,
    })
}

/// The errand's row, refused when the order is not an errand.
fn load_errand(state: &dyn StateTx, id: &str) -> Result<DispatchOrder, Rejection> {
    let order = load_order(state, id)?;
    if !order.errand {
        return Err(Rejection::new(
            Reason::ImpossibleTransition,
            format!("order {id} is not an errand"),
        ));
    }
    Ok(order)
}

pub(super) fn parcel(
    state: &mut dyn StateTx,
    envelope: &Envelope,
    parcel: &ParcelReceived,
    emit: Option<&mut Vec<Envelope>>,
    routes: bool,
) -> Result<Applied, Rejection> {
    let mut order = new_order(
        state,
        &parcel.order,
        OrderPlace {
            community: &parcel.community,
            building: &parcel.building,
            unit: &parcel.unit,
            household: &parcel.household,
        },
        parcel.priority,
        parcel.weight_g,
        OrderStatus::received(),
    )?;
    let mut community = Community::load(state, &parcel.community)?;
    community.enqueue(state, &parcel.order, &mut order)?;
    plan_and_emit(state, envelope, community, emit, routes)?;
    Ok(Applied::Changed)
}

pub(super) fn errand_requested(
    state: &mut dyn StateTx,
    errand: &ErrandRequested,
) -> Result<Applied, Rejection> {
    let mut order = new_order(
        state,
        &errand.order,
        OrderPlace {
            community: &errand.community,
            building: &errand.building,
            unit: &errand.unit,
            household: &errand.household,
        },
        errand.priority,
        0,
        OrderStatus::placed(),
    )?;
    order.errand = true;
    state.put_json(ORDERS, &errand.order, &order);
    Ok(Applied::Changed)
}

pub(super) fn errand_accepted(
    state: &mut dyn StateTx,
    accepted: &ErrandAccepted,
) -> Result<Applied, Rejection> {
    let mut order = load_errand(state, &accepted.order)?;
    step(&accepted.order, &mut order, Step::Accept)?;
    state.put_json(ORDERS, &accepted.order, &order);
    Ok(Applied::Changed)
}

pub(super) fn errand_collected(
    state: &mut dyn StateTx,
    envelope: &Envelope,
    collected: &ErrandCollected,
    emit: Option<&mut Vec<Envelope>>,
    routes: bool,
) -> Result<Applied, Rejection> {
    let mut order = load_errand(state, &collected.order)?;
    let to_door = collected.route == ErrandRoute::Door;
    step(&collected.order, &mut order, Step::Collect { to_door })?;
    order.weight_g = collected.weight_g;
    if to_door {
        // The volunteer carries it: the errand is its own run.
        order.run = Some(collected.order.clone());
        state.put_json(ORDERS, &collected.order, &order);
        return Ok(Applied::Changed);
    }
    let mut community = Community::load(state, &collected.community)?;
    community.enqueue(state, &collected.order, &mut order)?;
    plan_and_emit(state, envelope, community, emit, routes)?;
    Ok(Applied::Changed)
}
