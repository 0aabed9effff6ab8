//! Operators (and staff of a community): the board, stuck orders, dead letters, stock.

use super::*;

/// After one delivery the board counts it by stage and building, lists the vulnerable
/// households not served, has no late orders; operators' views are theirs and the
/// community's staff's only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operators_read_the_board_after_a_delivery() {
    let world = World::start().await;
    let c = &world.client;
    let (run, orders) = world.run_for(&[HOUSEHOLD]).await;
    world.courier_departs(&run).await;
    let drop = json!({"order": orders[0], "outcome": "delivered"});
    let (status, body) = c
        .call(
            "POST",
            &format!("/v1/runs/{run}/drops"),
            Some(COURIER),
            Some(drop),
            Some("ack-1"),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    let summary = world
        .until(
            "summary counts the delivery",
            |b| b["orders_by_stage"]["delivered"] == 1,
            "/v1/communities/tianlun/summary",
            OPERATOR,
        )
        .await;
    assert_eq!(summary["orders_by_building"]["tianlun-b07"]["delivered"], 1);
    let unserved = summary["vulnerable_households_unserved_today"]
        .as_array()
        .expect("list")
        .len();
    assert!(unserved > 100, "{unserved}");
    assert!(summary["late_orders"].as_array().expect("list").is_empty());
    let (status, stuck) = c.get("/v1/stuck?minutes=0", OPERATOR).await;
    assert_eq!(status, 200, "{stuck}");
    assert!(stuck["orders"].is_array());
    let (status, letters) = c.get("/v1/dead-letters", OPERATOR).await;
    assert_eq!(status, 200);
    assert!(letters["dead_letters"].is_array());
    let (status, stock) = c.get("/v1/stock", OPERATOR).await;
    assert_eq!(status, 200);
    assert!(stock["stock"].as_array().expect("rows").len() > 10);
    world
        .refuses(vec![
            refused_get(
                "a malformed minutes",
                OPERATOR,
                "/v1/stuck?minutes=soon",
                400,
                "bad_request",
            ),
            refused_get(
                "a partner reading the board",
                YONGHUI,
                "/v1/communities/tianlun/summary",
                403,
                "forbidden",
            ),
            refused_get(
                "a courier reading dead letters",
                COURIER,
                "/v1/dead-letters",
                403,
                "forbidden",
            ),
            refused_get(
                "staff reading another community",
                STAFF,
                "/v1/communities/huangtugang/summary",
                403,
                "forbidden",
            ),
        ])
        .await;
}

/// "An operator reads everything" (deploy/access.example.toml), and acts for nobody: every
/// command with the operator's token is refused, and nothing is appended.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_reads_but_does_not_act() {
    let world = World::start().await;
    let (run, orders) = world.run_for(&[HOUSEHOLD]).await;
    let (status, placed) = world.client.post("/v1/orders", STAFF, veg_order()).await;
    assert_eq!(status, 202, "{placed}");
    let waiting = placed["order"].as_str().expect("order").to_owned();
    let forbidden = |rule, path: String, body: Value| {
        refused(rule, Some(OPERATOR), path, body, 403, "forbidden")
    };
    world
        .refuses(vec![
            forbidden("place an order", "/v1/orders".into(), veg_order()),
            forbidden(
                "cancel a household's order",
                format!("/v1/orders/{waiting}/cancel"),
                json!({}),
            ),
            forbidden(
                "post a partner's pick",
                "/v1/partners/yonghui/picks".into(),
                json!({"order": waiting, "lines": [{"item": "veg-pack", "ordered": 1, "outcome": "picked", "picked": 1}]}),
            ),
            forbidden(
                "restock a partner",
                "/v1/partners/yonghui/stock".into(),
                json!({"item": "veg-pack", "quantity": 5}),
            ),
            forbidden(
                "record an arrival",
                "/v1/communities/tianlun/arrivals".into(),
                json!({"partner": "yonghui", "orders": [orders[0]]}),
            ),
            forbidden(
                "send a run out",
                format!("/v1/runs/{run}/depart"),
                json!({"courier": "vol-tianlun-007"}),
            ),
            forbidden("bring a run back", format!("/v1/runs/{run}/return"), json!({})),
        ])
        .await;
    // And reads everything.
    for path in [
        format!("/v1/orders/{waiting}"),
        "/v1/partners/yonghui/stock".to_owned(),
        format!("/v1/runs/{run}/manifest"),
        "/v1/communities/tianlun/ready".to_owned(),
    ] {
        let (status, body) = world.client.get(&path, OPERATOR).await;
        assert_eq!(status, 200, "{path}: {body}");
    }
}
