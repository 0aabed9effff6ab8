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
