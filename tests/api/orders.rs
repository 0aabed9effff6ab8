//! Residents and staff: placing, reading and cancelling orders within their scope.

use super::*;

/// Every way an order can be refused, by rule: the status, the rule's code, and nothing
/// appended. Nothing logs a token, though every request carried one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn order_rejections_name_their_rule_and_append_nothing() {
    let world = World::start().await;
    let order = |body: Value| body;
    let line = |item: &str, quantity: i64| json!([{"item": item, "quantity": quantity}]);
    world
        .refuses(vec![
            refused("no token", None, "/v1/orders", veg_order(), 401, "unauthorized"),
            refused("unknown token", Some("not-a-token"), "/v1/orders", veg_order(), 401, "unauthorized"),
            refused("malformed JSON", Some(RESIDENT), "/v1/orders", raw("{\"household\": "), 400, "bad_request"),
            refused(
                "a body over 64 KiB",
                Some(RESIDENT),
                "/v1/orders",
                order(json!({"household": HOUSEHOLD, "partner": "yonghui", "lines": line(&"x".repeat(70_000), 1)})),
                413,
                "payload_too_large",
            ),
            refused("no lines field", Some(RESIDENT), "/v1/orders", json!({"household": HOUSEHOLD, "partner": "yonghui"}), 422, "unprocessable"),
            refused("no lines", Some(RESIDENT), "/v1/orders", json!({"household": HOUSEHOLD, "partner": "yonghui", "lines": []}), 422, "empty_order"),
            refused(
                "unknown household",
                Some(STAFF),
                "/v1/orders",
                json!({"household": "tianlun-b99-u1-0101", "partner": "yonghui", "lines": line("veg-pack", 1)}),
                422,
                "unknown_household",
            ),
            refused("unknown item", Some(RESIDENT), "/v1/orders", json!({"household": HOUSEHOLD, "partner": "yonghui", "lines": line("caviar", 1)}), 422, "unknown_item"),
            refused("quantity 0", Some(RESIDENT), "/v1/orders", json!({"household": HOUSEHOLD, "partner": "yonghui", "lines": line("veg-pack", 0)}), 422, "quantity_out_of_range"),
            refused("quantity 101", Some(RESIDENT), "/v1/orders", json!({"household": HOUSEHOLD, "partner": "yonghui", "lines": line("veg-pack", 101)}), 422, "quantity_out_of_range"),
            refused(
                "an item twice",
                Some(RESIDENT),
                "/v1/orders",
                json!({"household": HOUSEHOLD, "partner": "yonghui", "lines": [{"item": "veg-pack", "quantity": 1}, {"item": "veg-pack", "quantity": 2}]}),
                422,
                "duplicate_line",
            ),
            refused("unknown partner", Some(RESIDENT), "/v1/orders", json!({"household": HOUSEHOLD, "partner": "carrefour", "lines": line("veg-pack", 1)}), 422, "unknown_partner"),
            refused(
                "a resident ordering for a neighbour",
                Some(RESIDENT),
                "/v1/orders",
                json!({"household": "tianlun-b07-u8-0302", "partner": "yonghui", "lines": line("veg-pack", 1)}),
                403,
                "forbidden",
            ),
            refused("a partner ordering", Some(YONGHUI), "/v1/orders", veg_order(), 403, "forbidden"),
        ])
        .await;
    let log = std::fs::read_to_string(&world.up.log).expect("log");
    for token in [RESIDENT, STAFF, YONGHUI, "not-a-token"] {
        assert!(!log.contains(token), "token {token} in the log");
    }
}

/// A resident's order retried with the same idempotency key: one order, the first answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_order_is_placed_once() {
    let world = World::start().await;
    let c = &world.client;
    let before = world.harness.head().await;
    let place = || {
        c.call(
            "POST",
            "/v1/orders",
            Some(RESIDENT),
            Some(veg_order()),
            Some("resident-order-1"),
        )
    };
    let (status, first) = place().await;
    assert_eq!(status, 202, "{first}");
    let (status, retry) = place().await;
    assert_eq!(status, 202);
    assert_eq!(retry, first, "a retry returns the first answer");
    assert_eq!(
        world.harness.head().await,
        before + 1,
        "exactly one event appended"
    );
    assert_eq!(first["household"], HOUSEHOLD);
    assert_eq!(first["priority"], "routine");
    let log = std::fs::read_to_string(&world.up.log).expect("log");
    assert!(log.contains("command appended"), "the gateway logs at info");
    assert!(!log.contains(RESIDENT), "no token in the log");
}

/// A read after a write through the same replica sees it, at once. A read may also ask to
/// reflect a write at least as new as a sequence (a command answered through another
/// replica): a sequence this replica has applied answers at once; one beyond the stream's
/// head, or one that is not a number, is 400.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_not_older_than_a_sequence() {
    let world = World::start().await;
    // Read-your-writes on the replica that took the write: read at once, no retry.
    for _ in 0..20 {
        let (status, placed) = world.client.post("/v1/orders", RESIDENT, veg_order()).await;
        assert_eq!(status, 202, "{placed}");
        let order = placed["order"].as_str().expect("id");
        let (status, read) = world
            .client
            .get(&format!("/v1/orders/{order}"), RESIDENT)
            .await;
        assert_eq!((status, &read["order"]), (200, &placed["order"]), "{read}");
    }
    let (status, placed) = world.client.post("/v1/orders", RESIDENT, veg_order()).await;
    assert_eq!(status, 202, "{placed}");
    let order = placed["order"].as_str().expect("id");
    let sequence = placed["stream_sequence"].as_u64().expect("stream_sequence");
    let read = |hint: String| {
        reqwest::Client::new()
            .get(format!("{}/v1/orders/{order}", world.up.http))
            .bearer_auth(RESIDENT)
            .header("Lifeline-Min-Sequence", hint)
            .send()
    };
    let response = read(sequence.to_string()).await.expect("GET");
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["order"], order, "the write is visible: {body}");
    for (hint, why) in [
        (
            (sequence + 1_000_000).to_string(),
            "beyond the stream's head",
        ),
        ("soon".to_owned(), "not a number"),
        ("-1".to_owned(), "negative"),
    ] {
        let response = read(hint.clone()).await.expect("GET");
        assert_eq!(response.status(), 400, "{why}: {hint}");
        let body: Value = response.json().await.expect("json");
        assert_eq!(body["error"]["code"], "bad_request", "{why}: {body}");
    }
}

/// Staff order medicine for a neighbour who cannot: urgent, recorded on their behalf.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staff_order_medicine_for_a_neighbour_urgently_on_their_behalf() {
    let world = World::start().await;
    let (status, staff_order) = world
        .client
        .post("/v1/orders", STAFF, json!({"household": "tianlun-b07-u8-0302", "partner": "yonghui", "lines": [{"item": "med-insulin", "quantity": 1}]}))
        .await;
    assert_eq!(status, 202, "{staff_order}");
    assert_eq!(staff_order["priority"], "urgent");
    let id = staff_order["order"].as_str().expect("id").to_owned();
    let record = world.stage_of(&id, "placed").await;
    assert_eq!(
        record["history"][0]["detail"],
        "placed by staff staff-tianlun-hotline"
    );
}

/// Reading: one's own order and household yes, a neighbour's no, unknown ids 404.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_are_read_within_the_callers_scope() {
    let world = World::start().await;
    let c = &world.client;
    let (_, mine) = c.post("/v1/orders", RESIDENT, veg_order()).await;
    let order = mine["order"].as_str().expect("id").to_owned();
    let (_, theirs) = c
        .post("/v1/orders", STAFF, json!({"household": "tianlun-b07-u8-0302", "partner": "yonghui", "lines": [{"item": "veg-pack", "quantity": 1}]}))
        .await;
    let neighbour = theirs["order"].as_str().expect("id").to_owned();
    let record = world.stage_of(&order, "placed").await;
    assert_eq!(record["items"][0]["item"], "veg-pack");
    world.stage_of(&neighbour, "placed").await;
    let (status, body) = c.get(&format!("/v1/orders/{order}"), RESIDENT).await;
    assert_eq!(status, 200, "{body}");
    let (status, listed) = c
        .get(&format!("/v1/households/{HOUSEHOLD}/orders"), RESIDENT)
        .await;
    assert_eq!(status, 200);
    assert_eq!(listed["orders"].as_array().expect("list").len(), 1);
    world
        .refuses(vec![
            refused_get(
                "a neighbour's order",
                RESIDENT,
                format!("/v1/orders/{neighbour}"),
                403,
                "forbidden",
            ),
            refused_get(
                "an unknown order",
                STAFF,
                "/v1/orders/no-such-order",
                404,
                "not_found",
            ),
            refused_get(
                "a neighbour's household",
                RESIDENT,
                "/v1/households/tianlun-b07-u8-0302/orders",
                403,
                "forbidden",
            ),
            refused_get(
                "an unknown household",
                STAFF,
                "/v1/households/nowhere/orders",
                404,
                "not_found",
            ),
        ])
        .await;
}

/// Cancel before the pick, once; a second cancel, or a partner's, is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_is_cancelled_before_its_pick_once() {
    let world = World::start().await;
    let c = &world.client;
    let (_, placed) = c.post("/v1/orders", RESIDENT, veg_order()).await;
    let order = placed["order"].as_str().expect("id").to_owned();
    world.stage_of(&order, "placed").await;
    let (status, cancelled) = c
        .post(
            &format!("/v1/orders/{order}/cancel"),
            RESIDENT,
            json!({"reason": "a neighbour shared"}),
        )
        .await;
    assert_eq!(status, 202, "{cancelled}");
    assert_eq!(cancelled["order"], order.as_str());
    world.stage_of(&order, "cancelled").await;
    let cancel = format!("/v1/orders/{order}/cancel");
    world
        .refuses(vec![
            refused(
                "a second cancel",
                Some(RESIDENT),
                cancel.clone(),
                json!({}),
                409,
                "not_cancellable",
            ),
            refused(
                "a partner cancelling",
                Some(YONGHUI),
                cancel,
                json!({}),
                403,
                "forbidden",
            ),
        ])
        .await;
}
/// Fourteen staff orders for insulin with 12 in stock, sent at once through the API: the
/// gateway validates them concurrently against the same projections, and stock still never
/// goes below zero; the unreservable ones are recorded short, and every order exists.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_api_orders_on_scarce_stock_never_drive_available_below_zero() {
    let world = World::start().await;
    let stock_of_insulin = |body: &Value| {
        body["stock"]
            .as_array()
            .and_then(|rows| rows.iter().find(|row| row["item"] == "med-insulin"))
            .map(|row| {
                (
                    row["on_hand"].as_u64().unwrap_or(0),
                    row["reserved"].as_u64().unwrap_or(0),
                    row["available"].as_u64().unwrap_or(0),
                )
            })
    };
    let (_, before) = world
        .client
        .get("/v1/partners/yonghui/stock", YONGHUI)
        .await;
    assert_eq!(stock_of_insulin(&before), Some((12, 0, 12)));

    let households: Vec<String> = lifeline_seeds::Seeds::embedded()
        .expect("seeds")
        .households
        .into_iter()
        .filter(|h| h.community == "tianlun")
        .take(14)
        .map(|h| h.household)
        .collect();
    let requests = households.iter().map(|household| {
        let body = json!({
            "household": household,
            "partner": "yonghui",
            "lines": [{"item": "med-insulin", "quantity": 1}],
        });
        world.client.post("/v1/orders", STAFF, body)
    });
    let answers = futures::future::join_all(requests).await;
    let mut orders = Vec::new();
    for (status, body) in &answers {
        assert_eq!(*status, 202, "{body}");
        assert_eq!(body["priority"], "urgent", "medicine is urgent: {body}");
        orders.push(body["order"].as_str().expect("order id").to_owned());
    }

    let head = world.harness.head().await;
    assert!(
        eventually(WAIT, || async {
            let (_, body) = world
                .client
                .get("/v1/partners/yonghui/stock", YONGHUI)
                .await;
            stock_of_insulin(&body).is_some_and(|(_, reserved, _)| reserved == 12)
                && world.harness.head().await == head
        })
        .await,
        "inventory applied every order"
    );
    let (_, after) = world
        .client
        .get("/v1/partners/yonghui/stock", YONGHUI)
        .await;
    assert_eq!(
        stock_of_insulin(&after),
        Some((12, 12, 0)),
        "all 12 reserved, none below zero"
    );
    // Every order is recorded (delivery may trail inventory by a batch: wait for each).
    for order in &orders {
        world.stage_of(order, "placed").await;
    }
}
