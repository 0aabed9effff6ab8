//! The dispatch planner and process manager: table tests and properties (conservation,
//! capacity, deterministic ids).

use super::*;
use proptest::prelude::*;
use std::collections::BTreeSet;

fn queued(order: usize, building: usize, priority: Priority, weight_g: u32) -> QueuedOrder {
    QueuedOrder {
        order: format!("o{order}"),
        building: format!("b{building}"),
        unit: "u1".into(),
        household: format!("h{order}"),
        weight_g,
        rank: Rank {
            priority,
            seq: order as u64,
        },
    }
}

/// Plans with every queue already in memory.
fn plan(checkpoint: &mut Checkpoint, fleet: &BTreeMap<String, Tricycle>) -> Vec<PlannedLoad> {
    plan_loads(
        checkpoint,
        &mut |building, _| panic!("queue of {building} not loaded"),
        &mut free_in(fleet),
    )
    .expect("plans")
}

fn fleet(capacities: &[u32]) -> BTreeMap<String, Tricycle> {
    capacities
        .iter()
        .enumerate()
        .map(|(i, capacity_g)| {
            (
                format!("t{i:02}"),
                Tricycle {
                    capacity_g: *capacity_g,
                    run: None,
                },
            )
        })
        .collect()
}

#[test]
fn priority_orders_go_first_and_buildings_stay_together() {
    let mut dispatch = Checkpoint::with_queue(vec![
        queued(0, 1, Priority::Routine, 4_000),
        queued(1, 2, Priority::Routine, 4_000),
        queued(2, 2, Priority::Urgent, 4_000),
        queued(3, 1, Priority::Routine, 4_000),
    ]);
    let loads = plan(&mut dispatch, &fleet(&[10_000]));
    assert_eq!(loads.len(), 1);
    let orders: Vec<&str> = loads[0].orders.iter().map(|o| o.order.as_str()).collect();
    assert_eq!(
        orders,
        ["o2", "o1"],
        "urgent order's building first, filled with its neighbour"
    );
    assert_eq!(loads[0].load_g, 8_000);
    assert_eq!(dispatch.waiting_orders().count(), 2);
    assert_eq!(
        dispatch.waiting.keys().collect::<Vec<_>>(),
        ["b1"],
        "only building 1 still waits"
    );
}

#[test]
fn oversize_order_rides_alone() {
    let mut dispatch = Checkpoint::with_queue(vec![
        queued(0, 1, Priority::Routine, 5_000),
        queued(1, 1, Priority::Routine, 10),
    ]);
    let loads = plan(&mut dispatch, &fleet(&[1_000]));
    assert_eq!(loads.len(), 1);
    assert_eq!(loads[0].orders.len(), 1);
}

proptest! {
    /// Every planned order is planned once, no load exceeds capacity unless it is a
    /// single oversize order, and no tricycle gets two runs.
    #[test]
    fn planning_conserves_orders_and_respects_capacity(
        capacities in prop::collection::vec(1_000u32..20_000, 1..6),
        orders in prop::collection::vec((0usize..5, 0u8..3, 100u32..8_000), 0..60),
        sealed in prop::collection::btree_set(0usize..5, 0..3),
    ) {
        planning_conserves_orders_and_respects_capacity_holds(capacities, orders, sealed)?;
    }
}

/// The property's body, outside the macro so rustfmt formats it.
fn planning_conserves_orders_and_respects_capacity_holds(
    capacities: Vec<u32>,
    orders: Vec<(usize, u8, u32)>,
    sealed: BTreeSet<usize>,
) -> Result<(), TestCaseError> {
    let queue: Vec<QueuedOrder> = orders
        .iter()
        .enumerate()
        .map(|(i, (building, priority, weight))| {
            let priority = Priority::ALL[*priority as usize];
            queued(i, *building, priority, *weight)
        })
        .collect();
    let fleet = fleet(&capacities);
    let mut dispatch = Checkpoint::with_queue(queue.clone());
    // Sealed buildings: a run goes wholly behind seals or nowhere behind one.
    dispatch.seals.buildings = sealed
        .iter()
        .map(|b| queued(0, *b, Priority::Routine, 0).building)
        .collect();
    let loads = plan(&mut dispatch, &fleet);
    let mut seen = BTreeSet::new();
    let mut tricycles = BTreeSet::new();
    for load in &loads {
        prop_assert!(tricycles.insert(load.tricycle.clone()));
        let capacity = fleet[&load.tricycle].capacity_g;
        prop_assert!(load.load_g <= capacity || load.orders.len() == 1);
        prop_assert_eq!(
            load.load_g,
            load.orders.iter().map(|o| o.weight_g).sum::<u32>()
        );
        for order in &load.orders {
            prop_assert!(seen.insert(order.order.clone()));
            prop_assert_eq!(
                dispatch.seals.behind(order),
                dispatch.seals.behind(&load.orders[0]),
                "a run crosses a seal line"
            );
        }
        let stops = stops_for(load);
        prop_assert_eq!(
            stops.iter().map(|s| s.orders.len()).sum::<usize>(),
            load.orders.len()
        );
    }
    for order in dispatch.waiting_orders() {
        prop_assert!(seen.insert(order.order.clone()));
    }
    prop_assert_eq!(seen.len(), queue.len());
    // The largest free tricycle rides first (ties: the smallest id).
    let mut by_size: Vec<(&String, u32)> = fleet
        .iter()
        .map(|(id, tricycle)| (id, tricycle.capacity_g))
        .collect();
    by_size.sort_by(|(id_a, a), (id_b, b)| b.cmp(a).then(id_a.cmp(id_b)));
    for (load, (id, _)) in loads.iter().zip(&by_size) {
        prop_assert_eq!(&load.tricycle, *id);
    }
    if dispatch.waiting_orders().next().is_some() {
        prop_assert_eq!(
            loads.len(),
            capacities.len(),
            "orders left while a tricycle is free"
        );
    }
    Ok(())
}
