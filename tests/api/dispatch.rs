//! Staff at the checkpoint: arrivals, the runs dispatch plans, departures and returns.

use super::*;

/// An arrival of orders not yet picked, or by someone who is not staff, is refused; an
/// arrival of picked orders puts them on a run dispatch plans.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn picked_orders_arrive_and_dispatch_plans_their_run() {
    let world = World::start().await;
    let c = &world.client;
    let (_, placed) = c.post("/v1/orders", RESIDENT, veg_order()).await;
    let waiting = placed["order"].as_str().expect("id").to_owned();
    world.stage_of(&waiting, "placed").await;
    let arrivals = "/v1/communities/tianlun/arrivals";
    world
        .refuses(vec![
            refused(
                "an order not picked yet",
                Some(STAFF),
                arrivals,
                json!({"partner": "yonghui", "orders": [waiting]}),
                409,
                "not_picked",
            ),
            refused(
                "a courier recording an arrival",
                Some(COURIER),
                arrivals,
                json!({"partner": "yonghui", "orders": [waiting]}),
                403,
                "forbidden",
            ),
            refused(
                "an empty vehicle",
                Some(STAFF),
                arrivals,
                json!({"partner": "yonghui", "orders": []}),
                422,
                "arrival_size",
            ),
            refused(
                "an order twice",
                Some(STAFF),
                arrivals,
                json!({"partner": "yonghui", "orders": [waiting, waiting]}),
                422,
                "duplicate_order",
            ),
            refused(
                "another partner's order",
                Some(STAFF),
                arrivals,
                json!({"partner": "shuocheng", "orders": [waiting]}),
                422,
                "order_elsewhere",
            ),
            refused(
                "an unknown order",
                Some(STAFF),
                arrivals,
                json!({"partner": "yonghui", "orders": ["nope"]}),
                422,
                "unknown_order",
            ),
        ])
        .await;
    let (run, orders) = world.run_for(&[HOUSEHOLD]).await;
    let (status, runs) = c.get("/v1/communities/tianlun/runs", STAFF).await;
    assert_eq!(status, 200);
    let listed = runs["runs"].as_array().expect("runs");
    let planned = listed
        .iter()
        .find(|r| r["run"] == run.as_str())
        .expect("the run is listed");
    assert_eq!(planned["orders"][0], orders[0].as_str());
    let (status, ready) = c.get("/v1/communities/tianlun/ready", STAFF).await;
    assert_eq!(status, 200, "{ready}");
    assert!(ready["orders"].is_array());
    let (status, body) = c.get("/v1/communities/tianlun/runs", YONGHUI).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("forbidden"))
    );
}

/// Staff send a planned run out with a courier of their community, once; it cannot return
/// before it left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_planned_run_departs_with_a_courier_of_its_community() {
    let world = World::start().await;
    let c = &world.client;
    let (run, _) = world.run_for(&[HOUSEHOLD]).await;
    let depart = format!("/v1/runs/{run}/depart");
    world
        .refuses(vec![
            refused(
                "an unknown run",
                Some(STAFF),
                "/v1/runs/run-nope/depart",
                json!({"courier": "vol-tianlun-007"}),
                404,
                "not_found",
            ),
            refused(
                "a courier of another community",
                Some(STAFF),
                depart.clone(),
                json!({"courier": "vol-huangtugang-001"}),
                422,
                "unknown_courier",
            ),
            refused(
                "a return before departure",
                Some(STAFF),
                format!("/v1/runs/{run}/return"),
                json!({}),
                409,
                "run_not_out",
            ),
            refused(
                "a partner sending it out",
                Some(YONGHUI),
                depart.clone(),
                json!({"courier": "vol-tianlun-007"}),
                403,
                "forbidden",
            ),
        ])
        .await;
    let (status, departed) = c
        .post(&depart, STAFF, json!({"courier": "vol-tianlun-007"}))
        .await;
    assert_eq!(status, 202, "{departed}");
    assert_eq!(departed["courier"], "vol-tianlun-007");
    world
        .until(
            "run departed",
            |b| b["state"] == "departed",
            &format!("/v1/runs/{run}/manifest"),
            STAFF,
        )
        .await;
    world
        .refuses(vec![refused(
            "a second departure",
            Some(STAFF),
            depart,
            json!({"courier": "vol-tianlun-007"}),
            409,
            "run_not_planned",
        )])
        .await;
}

/// Two staff at the checkpoint record the same vehicle at once, with different keys: one
/// arrival is recorded, the other is refused (409), and the stream holds one arrival.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_scans_of_one_vehicle_record_one_arrival() {
    let world = World::start().await;
    let c = &world.client;
    let (_, placed) = c.post("/v1/orders", RESIDENT, veg_order()).await;
    let order = placed["order"].as_str().expect("id").to_owned();
    world.stage_of(&order, "placed").await;
    let pick = json!({"order": order, "lines": [{"item": "veg-pack", "ordered": 1, "outcome": "picked", "picked": 1}]});
    assert_eq!(
        c.post("/v1/partners/yonghui/picks", YONGHUI, pick).await.0,
        202
    );
    world.stage_of(&order, "picked").await;
    let before = world.harness.head().await;
    let arrival = json!({"partner": "yonghui", "orders": [order]});
    let path = "/v1/communities/tianlun/arrivals";
    let (first, second) = tokio::join!(
        c.call(
            "POST",
            path,
            Some(STAFF),
            Some(arrival.clone()),
            Some("scan-a")
        ),
        c.call("POST", path, Some(STAFF), Some(arrival), Some("scan-b")),
    );
    let mut statuses = [first.0, second.0];
    statuses.sort_unstable();
    assert_eq!(statuses, [202, 409], "{first:?} {second:?}");
    // The arrival is one event; dispatch then plans the run (more events may follow).
    let arrivals = world.harness.head().await - before;
    assert!(arrivals >= 1, "the arrival was appended");
    world.stage_of(&order, "on_run").await;
}
