//! Escalations, as staff meet them: a dialysis kit whose three drops failed waits on the
//! community's escalation list, and the alert's metric counts it, until staff close it
//! with an outcome; only an escalated order can be closed, and only by its staff.

use super::*;

/// The courier takes `run` out, the drop of `order` fails, the run comes back.
async fn failed_round(world: &World, run: &str, order: &str, attempt: u32) {
    let c = &world.client;
    world.courier_departs(run).await;
    let failed = json!({"order": order, "outcome": "failed", "reason": "no_answer"});
    let (status, body) = c
        .call(
            "POST",
            &format!("/v1/runs/{run}/drops"),
            Some(COURIER),
            Some(failed),
            Some(&format!("kit-drop-{attempt}")),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    let (status, body) = c
        .post(&format!("/v1/runs/{run}/return"), COURIER, json!({}))
        .await;
    assert_eq!(status, 202, "{body}");
}

/// The gauge's value for one label set, from `/metrics`.
async fn escalations_metric(world: &World, priority: &str, reason: &str) -> Option<f64> {
    let (_, text) = world.up.get("/metrics").await?;
    let wanted = format!(
        "lifeline_delivery_escalations_open{{community=\"tianlun\",priority=\"{priority}\",reason=\"{reason}\"}} "
    );
    text.lines()
        .find_map(|line| line.strip_prefix(&wanted))
        .and_then(|value| value.trim().parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kit_that_fails_three_drops_waits_for_staff_until_closed() {
    let world = World::start().await;
    let c = &world.client;
    // Staff order a dialysis kit for the household: medicine, so urgent.
    let (status, placed) = c
        .post(
            "/v1/orders",
            STAFF,
            json!({"household": HOUSEHOLD, "partner": "yonghui", "lines": [{"item": "med-dialysis-kit", "quantity": 1}]}),
        )
        .await;
    assert_eq!(status, 202, "{placed}");
    let kit = placed["order"].as_str().expect("order id").to_owned();
    world.stage_of(&kit, "placed").await;
    let pick = json!({"order": kit, "lines": [{"item": "med-dialysis-kit", "ordered": 1, "outcome": "picked", "picked": 1}]});
    assert_eq!(
        c.post("/v1/partners/yonghui/picks", YONGHUI, pick).await.0,
        202
    );
    world.stage_of(&kit, "picked").await;
    let arrival = json!({"partner": "yonghui", "orders": [kit]});
    assert_eq!(
        c.post("/v1/communities/tianlun/arrivals", STAFF, arrival)
            .await
            .0,
        202
    );
    // While it is on its way it is not escalated, and cannot be closed.
    let on_run = world.stage_of(&kit, "on_run").await;
    let close = format!("/v1/orders/{kit}/escalation/close");
    world
        .refuses(vec![refused(
            "an order in progress",
            Some(STAFF),
            close.clone(),
            json!({"outcome": "delivered_by_hand"}),
            409,
            "not_escalated",
        )])
        .await;
    let mut run = on_run["run"].as_str().expect("run").to_owned();
    for attempt in 1..=3 {
        failed_round(&world, &run, &kit, attempt).await;
        if attempt < 3 {
            let again = world
                .until(
                    "the kit rides again",
                    |b| b["status"]["stage"] == "on_run" && b["run"] != run.as_str(),
                    &format!("/v1/orders/{kit}"),
                    OPERATOR,
                )
                .await;
            run = again["run"].as_str().expect("run").to_owned();
        }
    }
    let failed = world
        .until(
            "the kit failed for good",
            |b| b["is_final"] == true,
            &format!("/v1/orders/{kit}"),
            OPERATOR,
        )
        .await;
    assert_eq!(failed["status"]["failed_drops"], 3);
    assert_eq!(failed["escalation"]["reason"], "drops_failed");

    // On the staff's list, and counted for the alert.
    let (status, list) = c.get("/v1/communities/tianlun/escalations", STAFF).await;
    assert_eq!(status, 200, "{list}");
    let escalations = list["escalations"].as_array().expect("list");
    assert_eq!(escalations.len(), 1, "{list}");
    assert_eq!(escalations[0]["order"], kit.as_str());
    assert_eq!(escalations[0]["reason"], "drops_failed");
    assert_eq!(escalations[0]["priority"], "urgent");
    assert_eq!(escalations[0]["household"], HOUSEHOLD);
    assert_eq!(
        escalations_metric(&world, "urgent", "drops_failed").await,
        Some(1.0)
    );
    let (status, other) = c
        .get("/v1/communities/huangtugang/escalations", STAFF)
        .await;
    assert_eq!(
        (status, &other["error"]["code"]),
        (403, &json!("forbidden"))
    );

    world
        .refuses(vec![
            refused(
                "an operator reads but does not close",
                Some(OPERATOR),
                close.clone(),
                json!({"outcome": "delivered_by_hand"}),
                403,
                "forbidden",
            ),
            refused(
                "an outcome not in the list",
                Some(STAFF),
                close.clone(),
                json!({"outcome": "forgotten"}),
                422,
                "unprocessable",
            ),
            refused(
                "a note too long",
                Some(STAFF),
                close.clone(),
                json!({"outcome": "refused", "note": "x".repeat(501)}),
                422,
                "note_too_long",
            ),
            refused(
                "an unknown order",
                Some(STAFF),
                "/v1/orders/no-such-order/escalation/close",
                json!({"outcome": "refused"}),
                404,
                "not_found",
            ),
        ])
        .await;

    let (status, closed) = c
        .post(
            &close,
            STAFF,
            json!({"outcome": "delivered_by_hand", "note": "grid volunteer took it to the door"}),
        )
        .await;
    assert_eq!(status, 202, "{closed}");
    let record = world
        .until(
            "the escalation is closed",
            |b| b["escalation"]["closed"]["outcome"] == "delivered_by_hand",
            &format!("/v1/orders/{kit}"),
            OPERATOR,
        )
        .await;
    assert_eq!(
        record["escalation"]["closed"]["by"],
        "staff-tianlun-hotline"
    );
    let (_, list) = c.get("/v1/communities/tianlun/escalations", STAFF).await;
    assert_eq!(list["escalations"], json!([]), "{list}");
    assert_eq!(
        escalations_metric(&world, "urgent", "drops_failed").await,
        Some(0.0)
    );
    world
        .refuses(vec![refused(
            "an escalation closed already",
            Some(STAFF),
            close,
            json!({"outcome": "refused"}),
            409,
            "not_escalated",
        )])
        .await;
}

/// The coverage ledger: before anything is delivered every Tianlun household is unserved,
/// vulnerable ones first and nobody has ordered; after one delivery that household is off
/// the list and the others stay; a replay of the day reads exactly the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_coverage_ledger_lists_who_was_not_served_vulnerable_first() {
    let world = World::start().await;
    let c = &world.client;
    let path = "/v1/communities/tianlun/coverage?hours=24";
    let (status, before) = c.get(path, STAFF).await;
    assert_eq!(status, 200, "{before}");
    let unserved = before["unserved"].as_array().expect("list");
    assert_eq!(unserved.len(), 3314, "every household, before any delivery");
    assert_eq!(before["never_ordered"], 3314);
    let first_routine = unserved
        .iter()
        .position(|h| h["vulnerable"] == false)
        .expect("routine households");
    assert!(first_routine > 0, "vulnerable households come first");
    assert!(
        unserved[first_routine..]
            .iter()
            .all(|h| h["vulnerable"] == false),
        "all vulnerable before any other"
    );

    let (run, orders) = world.run_for(&[HOUSEHOLD]).await;
    world.courier_departs(&run).await;
    let drop = json!({"order": orders[0], "outcome": "delivered", "proof": {"code": "1"}});
    let (status, body) = c
        .call(
            "POST",
            &format!("/v1/runs/{run}/drops"),
            Some(COURIER),
            Some(drop),
            Some("coverage-1"),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    let after = world
        .until(
            "the served household leaves the ledger",
            |b| b["unserved"].as_array().map(Vec::len) == Some(3313),
            path,
            STAFF,
        )
        .await;
    assert!(
        after["unserved"]
            .as_array()
            .expect("list")
            .iter()
            .all(|h| h["household"] != HOUSEHOLD)
    );
    let (status, body) = c.get(path, RESIDENT).await;
    assert_eq!((status, &body["error"]["code"]), (403, &json!("forbidden")));

    // The day replayed: `lifeline replay delivery` rebuilds the ledger from the stream, and
    // the view reads the same (event time, not the wall clock).
    let mut world = world;
    let up = std::mem::replace(&mut world.up, Up::placeholder());
    assert_eq!(up.terminate(), 0);
    let output = std::process::Command::new(LIFELINE)
        .args([
            "replay",
            "delivery",
            "--nats-url",
            world.harness.server.url(),
        ])
        .arg("--data-dir")
        .arg(world._data.path())
        .output()
        .expect("run replay");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    world.up = Up::start_with_args(
        &world.harness,
        world._data.path(),
        &["--access", &workspace_path("deploy/access.example.toml")],
    );
    world.client.base = world.up.http.clone();
    world.up.wait_ready().await;
    let (status, replayed) = world.client.get(path, STAFF).await;
    assert_eq!(status, 200, "{replayed}");
    assert_eq!(
        replayed, after,
        "the replayed day's coverage is the live one"
    );
}
