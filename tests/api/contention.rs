//! Two commands on one order at the same moment: a cancel and a pick land on different
//! subjects, yet exactly one of them wins and the other gets 409; the same for two picks
//! or two cancels; nothing is parked.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_and_a_pick_of_one_order_at_once_exactly_one_wins() {
    let world = World::start().await;
    let c = &world.client;
    let mut orders = Vec::new();
    for _ in 0..12 {
        let (status, placed) = c.post("/v1/orders", STAFF, veg_order()).await;
        assert_eq!(status, 202, "{placed}");
        orders.push(placed["order"].as_str().expect("id").to_owned());
    }
    for order in &orders {
        world.stage_of(order, "placed").await;
    }
    let mut cancels_won = 0;
    for (n, order) in orders.iter().enumerate() {
        let cancel_path = format!("/v1/orders/{order}/cancel");
        // Staggered, so that sometimes the pick gets there first and sometimes the cancel.
        let cancel = async {
            if n % 2 == 1 {
                tokio::time::sleep(Duration::from_millis(3)).await;
            }
            c.post(&cancel_path, STAFF, json!({"reason": "changed mind"}))
                .await
        };
        let pick = json!({"order": order, "lines": [{"item": "veg-pack", "ordered": 1, "outcome": "picked", "picked": 1}]});
        let pick = c.post("/v1/partners/yonghui/picks", YONGHUI, pick);
        let ((cancel_status, cancel_body), (pick_status, pick_body)) = tokio::join!(cancel, pick);
        let statuses = (cancel_status, pick_status);
        assert!(
            statuses == (202, 409) || statuses == (409, 202),
            "{order}: cancel {cancel_status} {cancel_body}, pick {pick_status} {pick_body}"
        );
        if cancel_status == 202 {
            cancels_won += 1;
            world.stage_of(order, "cancelled").await;
        } else {
            world.stage_of(order, "picked").await;
        }
    }
    eprintln!("cancels won {cancels_won} of {}", orders.len());
    let (status, parked) = c.get("/v1/dead-letters", OPERATOR).await;
    assert_eq!(status, 200, "{parked}");
    assert_eq!(
        parked["dead_letters"].as_array().map(Vec::len),
        Some(0),
        "the loser was refused, not appended and parked: {parked}"
    );
}

/// Two picks of one order, and two cancels of one order, sent at the same moment: the
/// first is appended, the second decides on it and is refused (409); nothing is parked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_picks_or_two_cancels_of_one_order_at_once_append_one() {
    let world = World::start().await;
    let c = &world.client;
    let mut orders = Vec::new();
    for _ in 0..12 {
        let (status, placed) = c.post("/v1/orders", STAFF, veg_order()).await;
        assert_eq!(status, 202, "{placed}");
        orders.push(placed["order"].as_str().expect("id").to_owned());
    }
    for order in &orders {
        world.stage_of(order, "placed").await;
    }
    for (n, order) in orders.iter().enumerate() {
        let (first, second) = if n % 2 == 0 {
            // Different keys: two phones, not one retry.
            let pick = json!({"order": order, "lines": [{"item": "veg-pack", "ordered": 1, "outcome": "picked", "picked": 1}]});
            tokio::join!(
                c.post("/v1/partners/yonghui/picks", YONGHUI, pick.clone()),
                c.post("/v1/partners/yonghui/picks", YONGHUI, pick)
            )
        } else {
            let path = format!("/v1/orders/{order}/cancel");
            tokio::join!(
                c.post(&path, STAFF, json!({"reason": "one phone"})),
                c.post(&path, STAFF, json!({"reason": "the other phone"}))
            )
        };
        let mut statuses = [first.0, second.0];
        statuses.sort_unstable();
        assert_eq!(
            statuses,
            [202, 409],
            "{order} (#{n}): {} {}, {} {}",
            first.0,
            first.1,
            second.0,
            second.1
        );
        let refused = if first.0 == 409 { &first.1 } else { &second.1 };
        assert!(refused["error"]["code"].is_string(), "{refused}");
        world
            .stage_of(order, if n % 2 == 0 { "picked" } else { "cancelled" })
            .await;
    }
    let (status, parked) = c.get("/v1/dead-letters", OPERATOR).await;
    assert_eq!(status, 200, "{parked}");
    assert_eq!(
        parked["dead_letters"].as_array().map(Vec::len),
        Some(0),
        "the second was refused, not appended and parked: {parked}"
    );
}

/// Read your writes: an order placed a moment ago is found at once, by a GET and by a
/// cancel, never 404 because the projection has not applied it yet.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_just_placed_is_found_at_once() {
    let world = World::start().await;
    let c = &world.client;
    for n in 0..30 {
        let (status, placed) = c.post("/v1/orders", STAFF, veg_order()).await;
        assert_eq!(status, 202, "{placed}");
        let order = placed["order"].as_str().expect("id");
        if n % 2 == 0 {
            let (status, body) = c.get(&format!("/v1/orders/{order}"), RESIDENT).await;
            assert_eq!(status, 200, "order {n} read back: {body}");
        } else {
            let (status, body) = c
                .post(&format!("/v1/orders/{order}/cancel"), STAFF, json!({}))
                .await;
            assert_eq!(status, 202, "order {n} cancelled at once: {body}");
        }
    }
    let (status, body) = c.get("/v1/orders/no-such-order", OPERATOR).await;
    assert_eq!((status, &body["error"]["code"]), (404, &json!("not_found")));
}
