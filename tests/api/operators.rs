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

/// A pick that reached the stream before its order is parked by every consumer that needs
/// the order; once the order is there, an operator re-drives each dead letter: the pick is
/// applied once (same event id, new causation), the view shows who re-drove what, a second
/// re-drive is 409, and only operators may do it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_redrives_a_dead_letter_once_its_cause_is_fixed() {
    let world = World::start().await;
    let c = &world.client;
    let early = pick(
        "early-order",
        "yonghui",
        vec![picked_in_full("veg-pack", 1)],
    );
    world.harness.publish(std::slice::from_ref(&early)).await;
    world
        .harness
        .publish(&[order(
            "early-order",
            1,
            1,
            "yonghui",
            &[("veg-pack", 1)],
            lifeline_events::Priority::Routine,
        )])
        .await;
    world.stage_of("early-order", "placed").await;
    // Every consumer has seen both, so every one that parks the pick has parked it.
    let head = world.harness.head().await;
    world
        .until(
            "every consumer reaches the head",
            |ready| {
                ready["consumers"].as_object().is_some_and(|consumers| {
                    consumers
                        .values()
                        .all(|c| c["position"].as_u64() >= Some(head))
                })
            },
            "/readyz",
            OPERATOR,
        )
        .await;
    let (_, body) = c.get("/v1/dead-letters", OPERATOR).await;
    let parked = body["dead_letters"].as_array().cloned().unwrap_or_default();
    assert!(!parked.is_empty(), "the early pick was parked: {body}");
    assert!(
        parked
            .iter()
            .all(|l| l["reason"] == "unknown_order" && l["original_subject"] == early.subject),
        "{body}"
    );

    let (status, body) = c
        .post(
            &format!("/v1/dead-letters/{}/redrive", parked[0]["sequence"]),
            STAFF,
            json!({}),
        )
        .await;
    assert_eq!((status, &body["error"]["code"]), (403, &json!("forbidden")));
    for letter in &parked {
        let path = format!("/v1/dead-letters/{}/redrive", letter["sequence"]);
        let (status, redriven) = c.post(&path, OPERATOR, json!({})).await;
        assert_eq!(status, 202, "{letter}: {redriven}");
        assert_eq!(redriven["by"], "operator-district", "{redriven}");
        let (status, again) = c.post(&path, OPERATOR, json!({})).await;
        assert_eq!(
            (status, &again["error"]["code"]),
            (409, &json!("conflict")),
            "{again}"
        );
    }
    world.stage_of("early-order", "picked").await;

    // Same id, new causation, once per consumer that parked it; nobody parks it again.
    let stream = envelopes(&world.harness).await;
    let copies: Vec<&lifeline_events::Envelope> = stream
        .iter()
        .map(|(_, envelope)| envelope)
        .filter(|e| e.id == early.id)
        .collect();
    assert_eq!(
        copies.len(),
        1 + parked.len(),
        "the original and one re-drive per letter"
    );
    assert!(copies[1..].iter().all(|e| e.causation_id.is_some()
        && e.causation_id != early.causation_id
        && e.correlation_id == early.correlation_id));
    let (_, body) = c.get("/v1/dead-letters", OPERATOR).await;
    let letters = body["dead_letters"].as_array().cloned().unwrap_or_default();
    assert_eq!(letters.len(), parked.len(), "nothing parked again: {body}");
    for letter in &letters {
        assert_eq!(letter["redriven"]["by"], "operator-district", "{letter}");
        assert!(letter["redriven"]["stream_sequence"].as_u64() > Some(0));
    }
    let (status, body) = c
        .post("/v1/dead-letters/999999/redrive", OPERATOR, json!({}))
        .await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (404, &json!("not_found")),
        "{body}"
    );
}
