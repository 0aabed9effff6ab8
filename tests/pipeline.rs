//! Orders placed for a few households go through all four stages (order, pick, run, drop)
//! and both projections show the right stock and status.

mod common;

use common::*;
use lifeline_domain::order::Stage;
use lifeline_events::{PickLine, PickOutcome, Priority, Substitute};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_flow_through_all_four_stages() {
    let harness = Harness::start().await;
    let inventory = start_consumer(&harness, INVENTORY, &harness.store_dir("inventory"));
    let delivery = start_consumer(&harness, DELIVERY, &harness.store_dir("delivery"));
    let dispatch = start_consumer(&harness, DISPATCH, &harness.store_dir("dispatch"));

    harness
        .publish(&[
            stock("yonghui", "veg-pack", 10),
            stock("yonghui", "eggs", 1),
            stock("yonghui", "watermelon", 5),
            tricycle("tri-13", 100_000),
            order("o1", 1, 7, "yonghui", &[("veg-pack", 2)], Priority::Routine),
            order(
                "o2",
                2,
                7,
                "yonghui",
                &[("veg-pack", 1), ("eggs", 2)],
                Priority::Priority,
            ),
            order("o3", 3, 8, "yonghui", &[("veg-pack", 1)], Priority::Urgent),
        ])
        .await;
    inventory.wait_for(harness.head().await).await;

    // o2 asked for two eggs; only one was there to reserve.
    let reservation = lifeline_readmodel::inventory::reservation(&inventory.store, "o2")
        .expect("read")
        .expect("reserved");
    assert_eq!(reservation.lines[1].reserved, 1);
    assert!(reservation.is_short());

    harness
        .publish(&[
            pick("o1", "yonghui", vec![picked_in_full("veg-pack", 2)]),
            pick(
                "o2",
                "yonghui",
                vec![picked_in_full("veg-pack", 1), picked_short("eggs", 2, 1)],
            ),
            pick(
                "o3",
                "yonghui",
                vec![PickLine {
                    item: "veg-pack".into(),
                    ordered: 1,
                    outcome: PickOutcome::Substituted,
                    picked: 0,
                    substitute: Some(Substitute {
                        item: "watermelon".into(),
                        quantity: 1,
                    }),
                }],
            ),
            arrival("yonghui", &["o1", "o2", "o3"]),
        ])
        .await;
    let head = harness.head().await;
    dispatch.wait_for(head).await;

    // One tricycle, room for all: one run, the urgent order's building first.
    let runs = planned_runs(&harness).await;
    assert_eq!(runs.len(), 1, "{runs:?}");
    let run = runs[0].1.clone();
    assert_eq!(run.tricycle, "tri-13");
    let first_stop = &run.stops[0];
    assert_eq!(
        first_stop.orders,
        vec!["o3".to_owned()],
        "urgent order is the first stop"
    );
    assert_eq!(run.orders().count(), 3);

    let mut drops = vec![departed(&run.run, "tri-13")];
    for stop in &run.stops {
        for order in &stop.orders {
            drops.push(delivered(order, &run.run, &stop.household));
        }
    }
    drops.push(returned(&run.run, "tri-13"));
    harness.publish(&drops).await;
    let head = harness.head().await;
    delivery.wait_for(head).await;
    inventory.wait_for(head).await;

    for order in ["o1", "o2", "o3"] {
        let record = lifeline_readmodel::delivery::order(&delivery.store, order)
            .expect("read")
            .expect("known");
        assert_eq!(record.status.stage, Stage::Delivered, "{order}");
        assert!(record.is_final);
        let stages: Vec<Stage> = record.history.iter().map(|t| t.stage).collect();
        assert_eq!(
            stages,
            [
                Stage::Placed,
                Stage::Picked,
                Stage::AtCheckpoint,
                Stage::OnRun,
                Stage::Delivered
            ],
            "{order}"
        );
    }
    let by_household =
        lifeline_readmodel::delivery::orders_of_household(&delivery.store, "tianlun-b07-u1-0002")
            .expect("read");
    assert_eq!(by_household.len(), 1);
    assert_eq!(
        lifeline_readmodel::delivery::orders_in_building(&delivery.store, "tianlun-b07")
            .expect("read")
            .len(),
        2
    );
    let run_record = lifeline_readmodel::delivery::run(&delivery.store, &run.run)
        .expect("read")
        .expect("run");
    assert_eq!(run_record.orders.len(), 3);

    // veg-pack: 10 - 2 (o1) - 1 (o2) = 7, o3's veg-pack reservation released for a
    // watermelon; eggs: 1 picked of 1; watermelon: 5 - 1.
    let stock =
        lifeline_readmodel::inventory::stock(&inventory.store, Some("yonghui")).expect("read");
    let level = |item: &str| {
        let row = stock.iter().find(|row| row.item == item).expect("row");
        (row.on_hand, row.reserved, row.available)
    };
    assert_eq!(level("veg-pack"), (7, 0, 7));
    assert_eq!(level("eggs"), (0, 0, 0));
    assert_eq!(level("watermelon"), (4, 0, 4));

    inventory.stop().await;
    delivery.stop().await;
    dispatch.stop().await;
}
