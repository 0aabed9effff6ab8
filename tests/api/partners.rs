//! Supermarket partners: their own waiting orders, picks, and stock.

use super::*;

fn pick_of(order: &str, item: &str, outcome: &str, picked: u32) -> Value {
    json!({"order": order, "lines": [{"item": item, "ordered": 1, "outcome": outcome, "picked": picked}]})
}

/// A partner sees only its own waiting orders, and picks only its own orders, with lines
/// that answer the order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partner_sees_and_picks_only_its_own_orders() {
    let world = World::start().await;
    let c = &world.client;
    let (status, placed) = c.post("/v1/orders", RESIDENT, veg_order()).await;
    assert_eq!(status, 202, "{placed}");
    let order = placed["order"].as_str().expect("id").to_owned();
    world.stage_of(&order, "placed").await;
    let waiting = world
        .until(
            "yonghui sees the order",
            |b| {
                b["orders"]
                    .as_array()
                    .is_some_and(|o| o.iter().any(|x| x["order"] == order.as_str()))
            },
            "/v1/partners/yonghui/orders",
            YONGHUI,
        )
        .await;
    assert!(
        waiting["orders"]
            .as_array()
            .expect("list")
            .iter()
            .all(|o| o["partner"] == "yonghui")
    );
    let good = pick_of(&order, "veg-pack", "picked", 1);
    world
        .refuses(vec![
            refused_get(
                "another partner's order list",
                SHUOCHENG,
                "/v1/partners/yonghui/orders",
                403,
                "forbidden",
            ),
            refused_get(
                "another partner's stock",
                SHUOCHENG,
                "/v1/partners/yonghui/stock",
                403,
                "forbidden",
            ),
            refused_get(
                "an unknown stage",
                YONGHUI,
                "/v1/partners/yonghui/orders?stage=teleported",
                400,
                "bad_request",
            ),
            refused(
                "picking on another partner's path",
                Some(SHUOCHENG),
                "/v1/partners/yonghui/picks",
                good.clone(),
                403,
                "forbidden",
            ),
            refused(
                "picking another partner's order",
                Some(SHUOCHENG),
                "/v1/partners/shuocheng/picks",
                good.clone(),
                403,
                "wrong_partner",
            ),
            refused(
                "a line inconsistent with its outcome",
                Some(YONGHUI),
                "/v1/partners/yonghui/picks",
                pick_of(&order, "veg-pack", "short", 1),
                422,
                "invalid_pick",
            ),
            refused(
                "a line for an item not ordered",
                Some(YONGHUI),
                "/v1/partners/yonghui/picks",
                pick_of(&order, "eggs", "picked", 1),
                422,
                "pick_lines_mismatch",
            ),
            refused(
                "an unknown order",
                Some(YONGHUI),
                "/v1/partners/yonghui/picks",
                pick_of("no-such-order", "veg-pack", "picked", 1),
                422,
                "unknown_order",
            ),
        ])
        .await;
}

/// A pick retried with its key after it was applied gets the first answer and appends
/// nothing; a second, different pick is a conflict.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pick_is_recorded_once() {
    let world = World::start().await;
    let c = &world.client;
    let (_, placed) = c.post("/v1/orders", RESIDENT, veg_order()).await;
    let order = placed["order"].as_str().expect("id").to_owned();
    world.stage_of(&order, "placed").await;
    let good = pick_of(&order, "veg-pack", "picked", 1);
    let pick = || {
        c.call(
            "POST",
            "/v1/partners/yonghui/picks",
            Some(YONGHUI),
            Some(good.clone()),
            Some("pick-1"),
        )
    };
    let (status, picked) = pick().await;
    assert_eq!(status, 202, "{picked}");
    assert_eq!(picked["order"], order.as_str());
    world.stage_of(&order, "picked").await;
    let before = world.harness.head().await;
    let (status, retried) = pick().await;
    assert_eq!(
        (status, &retried),
        (202, &picked),
        "a retry after the pick was applied gets the first answer"
    );
    assert_eq!(world.harness.head().await, before, "and appends nothing");
    world
        .refuses(vec![refused(
            "a second pick",
            Some(YONGHUI),
            "/v1/partners/yonghui/picks",
            good,
            409,
            "not_waiting_for_pick",
        )])
        .await;
}

/// Restocking adds to the shelf; unknown items and silly quantities are refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restocks_add_to_the_partners_stock() {
    let world = World::start().await;
    let c = &world.client;
    let stock_of = |body: &Value, item: &str| {
        body["stock"].as_array().and_then(|rows| {
            rows.iter()
                .find(|r| r["item"] == item)
                .map(|r| r["on_hand"].as_u64().unwrap_or(0))
        })
    };
    let (_, before) = c.get("/v1/partners/yonghui/stock", YONGHUI).await;
    let eggs_before = stock_of(&before, "eggs").expect("eggs row");
    let (status, _) = c
        .post(
            "/v1/partners/yonghui/stock",
            YONGHUI,
            json!({"item": "eggs", "quantity": 30}),
        )
        .await;
    assert_eq!(status, 202);
    world
        .until(
            "restock applied",
            |b| stock_of(&b, "eggs") == Some(eggs_before + 30),
            "/v1/partners/yonghui/stock",
            YONGHUI,
        )
        .await;
    let stock = "/v1/partners/yonghui/stock";
    world
        .refuses(vec![
            refused(
                "an unknown item",
                Some(YONGHUI),
                stock,
                json!({"item": "caviar", "quantity": 1}),
                422,
                "unknown_item",
            ),
            refused(
                "quantity 0",
                Some(YONGHUI),
                stock,
                json!({"item": "eggs", "quantity": 0}),
                422,
                "quantity_out_of_range",
            ),
            refused(
                "another partner's shelf",
                Some(SHUOCHENG),
                stock,
                json!({"item": "eggs", "quantity": 1}),
                403,
                "forbidden",
            ),
        ])
        .await;
}

/// A pick follows its order in the trace: the order's correlation id, caused by its
/// `order.placed` (docs/events.md); and a resident acts as their household.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pick_continues_the_trace_of_its_order() {
    let world = World::start().await;
    let c = &world.client;
    let (status, placed) = c.post("/v1/orders", RESIDENT, veg_order()).await;
    assert_eq!(status, 202, "{placed}");
    let order = placed["order"].as_str().expect("order").to_owned();
    let placed_id =
        uuid::Uuid::try_parse(placed["event_id"].as_str().expect("event id")).expect("uuid");
    let order_subject = lifeline_events::order_subject("tianlun", &order);
    let (_, placed_event) =
        lifeline_bus::find_event_on_subject(&world.harness.jetstream, &order_subject, placed_id)
            .await
            .expect("read")
            .expect("stored");
    assert_eq!(
        placed_event.actor.id, HOUSEHOLD,
        "a resident acts as their household"
    );
    world.stage_of(&order, "placed").await;
    let pick = json!({"order": order, "lines": [{"item": "veg-pack", "ordered": 1, "outcome": "picked", "picked": 1}]});
    let (status, picked) = c.post("/v1/partners/yonghui/picks", YONGHUI, pick).await;
    assert_eq!(status, 202, "{picked}");
    let pick_id =
        uuid::Uuid::try_parse(picked["event_id"].as_str().expect("event id")).expect("uuid");
    let pick_subject = lifeline_events::pick_subject("tianlun", "yonghui", &order);
    let (_, pick_event) =
        lifeline_bus::find_event_on_subject(&world.harness.jetstream, &pick_subject, pick_id)
            .await
            .expect("read")
            .expect("stored");
    assert_eq!(pick_event.correlation_id, placed_event.correlation_id);
    assert_eq!(pick_event.causation_id, Some(placed_event.id));
}
