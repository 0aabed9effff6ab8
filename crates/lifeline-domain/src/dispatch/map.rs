//! The community's map as dispatch keeps it: where the checkpoint and each building are
//! (from `community.registered.v1` and `building.registered.v1`), read when a plan needs
//! them, and the route each planned run takes over it ([`super::route`]).

use std::collections::BTreeMap;

use super::{Community, PLACES, PlannedLoad, fleet, route, stops_for};
use crate::{Rejection, StateTx, StateTxExt};

pub(super) fn place_key(community: &str, building: &str) -> String {
    format!("{community}/{building}")
}

/// Reads where the waiting buildings are, when a free tricycle may take them and the
/// community's map is known (a few rows: one per building with an order waiting).
pub(super) fn load_places(state: &dyn StateTx, community: &mut Community) -> Result<(), Rejection> {
    if community.gate.is_none() || !fleet::any_free(state, &community.id) {
        return Ok(());
    }
    let checkpoint = &mut community.checkpoint;
    for building in checkpoint.waiting.keys() {
        if let Some(place) = state.get_json(PLACES, &place_key(&community.id, building))? {
            checkpoint.places.insert(building.clone(), place);
        }
    }
    Ok(())
}

/// A load's stops along a route from the checkpoint over the buildings' places
/// ([`route::route_stops`]), and its length; the planner's order when the map is not known.
pub(super) fn routed_stops(
    state: &dyn StateTx,
    community: &Community,
    load: &PlannedLoad,
) -> Result<(Vec<lifeline_events::Stop>, Option<u32>), Rejection> {
    let stops = stops_for(load);
    if community.gate.is_none() {
        return Ok((stops, None));
    }
    let mut places: BTreeMap<&str, Option<route::Point>> = BTreeMap::new();
    for order in &load.orders {
        if !places.contains_key(order.building.as_str()) {
            let place = state.get_json(PLACES, &place_key(&community.id, &order.building))?;
            places.insert(&order.building, place);
        }
    }
    let priority = |stop: &lifeline_events::Stop| {
        load.orders
            .iter()
            .filter(|order| order.household == stop.household)
            .map(|order| order.rank.priority)
            .max()
            .unwrap_or_default()
    };
    Ok(route::route_stops(
        community.gate,
        stops,
        |building| places.get(building).copied().flatten(),
        priority,
    ))
}
