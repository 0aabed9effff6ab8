//! Couriers: the manifest of their own run, each drop once (from the API and from the
//! offline phone page), races between two phones, and retries after a lost answer.

use super::*;

/// A run out with the courier: o on it, the courier's own.
async fn departed_run(world: &World) -> (String, String) {
    let (run, orders) = world.run_for(&[HOUSEHOLD]).await;
    let (status, body) = world
        .client
        .post(
            &format!("/v1/runs/{run}/depart"),
            STAFF,
            json!({"courier": "vol-tianlun-007"}),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    world
        .until(
            "run departed",
            |b| b["state"] == "departed",
            &format!("/v1/runs/{run}/manifest"),
            STAFF,
        )
        .await;
    (run, orders[0].clone())
}

/// The courier's manifest: stops with doors and item names; another courier's run is not
/// theirs to see.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_courier_reads_the_manifest_of_their_own_run() {
    let world = World::start().await;
    let (run, _) = departed_run(&world).await;
    let (status, manifest) = world
        .client
        .get(&format!("/v1/runs/{run}/manifest"), COURIER)
        .await;
    assert_eq!(status, 200, "{manifest}");
    let stop = &manifest["stops"][0];
    assert_eq!(stop["household"], HOUSEHOLD);
    assert_eq!(stop["door"], "301");
    assert_eq!(stop["orders"][0]["items"][0]["name"], "Vegetable package");
    // Names in both languages, from the registry, and the route's length.
    assert_eq!(stop["orders"][0]["items"][0]["name_zh"], "蔬菜套餐");
    assert_eq!(
        (&stop["building_name"], &stop["building_name_zh"]),
        (&json!("Building 7"), &json!("7号楼"))
    );
    assert_eq!(
        (&stop["unit_name"], &stop["unit_name_zh"]),
        (&json!("Unit 8"), &json!("8单元"))
    );
    // Building 7 (388, 162) is 898 m from the railway checkpoint (1080, -410): there and
    // back.
    assert_eq!(manifest["distance_m"], 1796, "{manifest}");
    let (status, body) = world
        .client
        .get(&format!("/v1/runs/{run}/manifest"), OTHER_COURIER)
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("forbidden"))
    );
}

/// Every way a drop can be refused, by rule.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drop_rejections_name_their_rule_and_append_nothing() {
    let world = World::start().await;
    let (run, order) = departed_run(&world).await;
    let drops = format!("/v1/runs/{run}/drops");
    let delivered = json!({"order": order, "outcome": "delivered", "proof": {"code": "4711"}});
    let keyed = |rule, token, body, key, status, code| Refused {
        key,
        ..refused(rule, Some(token), drops.clone(), body, status, code)
    };
    world
        .refuses(vec![
            keyed(
                "another courier's run",
                OTHER_COURIER,
                delivered.clone(),
                Some("ack-x"),
                403,
                "forbidden",
            ),
            keyed(
                "no Idempotency-Key",
                COURIER,
                delivered.clone(),
                None,
                400,
                "bad_request",
            ),
            keyed(
                "an unknown order",
                COURIER,
                json!({"order": "someone-else", "outcome": "delivered"}),
                Some("ack-y"),
                422,
                "unknown_order",
            ),
            keyed(
                "a failure without a reason",
                COURIER,
                json!({"order": order, "outcome": "failed"}),
                Some("ack-z"),
                422,
                "failure_needs_reason",
            ),
            Refused {
                path: "/v1/runs/run-nope/drops".into(),
                ..keyed(
                    "an unknown run",
                    COURIER,
                    delivered,
                    Some("ack-w"),
                    404,
                    "not_found",
                )
            },
        ])
        .await;
}

/// A drop retried with its key gets the first answer and appends once; a second, different
/// acknowledgement is a conflict; the delivered order can no longer be cancelled; the
/// courier brings the run back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drop_is_recorded_once_and_the_run_comes_back() {
    let world = World::start().await;
    let c = &world.client;
    let (run, order) = departed_run(&world).await;
    let drops = format!("/v1/runs/{run}/drops");
    let drop = json!({"order": order, "outcome": "delivered", "proof": {"code": "4711"}});
    let before = world.harness.head().await;
    let acknowledge = || {
        c.call(
            "POST",
            &drops,
            Some(COURIER),
            Some(drop.clone()),
            Some("ack-1"),
        )
    };
    let (status, first) = acknowledge().await;
    assert_eq!(status, 202, "{first}");
    assert_eq!(first["outcome"], "delivered");
    let (status, again) = acknowledge().await;
    assert_eq!(
        (status, &again),
        (202, &first),
        "a retry returns the first answer"
    );
    assert_eq!(
        world.harness.head().await,
        before + 1,
        "and appends nothing"
    );
    world.stage_of(&order, "delivered").await;
    world
        .refuses(vec![
            Refused {
                key: Some("ack-2"),
                ..refused(
                    "a second acknowledgement",
                    Some(COURIER),
                    drops,
                    drop,
                    409,
                    "not_on_run",
                )
            },
            refused(
                "cancelling a delivered order",
                Some(RESIDENT),
                format!("/v1/orders/{order}/cancel"),
                json!({}),
                409,
                "not_cancellable",
            ),
        ])
        .await;
    let (status, _) = c
        .post(&format!("/v1/runs/{run}/return"), COURIER, json!({}))
        .await;
    assert_eq!(status, 202);
    world
        .until(
            "run returned",
            |b| b["state"] == "returned",
            &format!("/v1/runs/{run}/manifest"),
            STAFF,
        )
        .await;
}

/// A courier opens the page on a phone, goes offline, marks every drop, comes back: the
/// delivery projection then shows each drop exactly once, and the stream holds one drop
/// event per order. Drives Debian's Chromium with playwright-core (tests/browser).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn courier_page_works_offline_and_every_drop_lands_exactly_once() {
    let world = World::start().await;
    let c = &world.client;
    let (run, orders) = world
        .run_for(&[
            "tianlun-b07-u8-0301",
            "tianlun-b07-u8-0302",
            "tianlun-b07-u1-0101",
        ])
        .await;

    world.courier_departs(&run).await;

    let screenshot = std::env::temp_dir().join("lifeline-courier-page.png");
    let driver = workspace_path("tests/browser/courier.mjs");
    let base = c.base.clone();
    let run_id = run.clone();
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new("node")
            .arg(driver)
            .args([base.as_str(), COURIER, run_id.as_str()])
            .arg(&screenshot)
            .output()
            .expect("node is installed (scripts/setup.sh)")
    })
    .await
    .expect("join");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "browser driver failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let result: Value = serde_json::from_str(stdout.lines().last().unwrap_or_default())
        .expect("driver prints JSON");
    assert_eq!(
        result["orders"].as_array().expect("orders").len(),
        orders.len()
    );

    // The projection shows each drop once: the delivered ones delivered, the failed one
    // failed with its reason, each with exactly one drop transition.
    for order in &orders {
        let delivered = result["delivered"]
            .as_array()
            .expect("list")
            .iter()
            .any(|o| o == order.as_str());
        let stage = if delivered { "delivered" } else { "failed" };
        let record = world.stage_of(order, stage).await;
        let drops = record["history"]
            .as_array()
            .expect("history")
            .iter()
            .filter(|t| t["stage"] == "delivered" || t["stage"] == "failed")
            .count();
        assert_eq!(drops, 1, "order {order}: {record}");
    }
    // And the stream holds exactly one drop event per order.
    let mut reader = lifeline_bus::EventReader::open(
        &world.harness.jetstream,
        lifeline_events::EVENT_STREAM,
        0,
        1024,
    )
    .await
    .expect("reader");
    let head = world.harness.head().await;
    let mut drop_events: std::collections::BTreeMap<String, usize> = Default::default();
    let mut codes: std::collections::BTreeMap<String, Option<String>> = Default::default();
    let mut seen = 0;
    while seen < head {
        for message in reader.next_batch().await.expect("open").expect("batch") {
            seen = message.sequence;
            if let Ok(envelope) = lifeline_events::Envelope::decode(&message.payload)
                && matches!(
                    envelope.event,
                    lifeline_events::Event::DropDelivered(_)
                        | lifeline_events::Event::DropFailed(_)
                )
            {
                *drop_events
                    .entry(envelope.event.order_id().unwrap_or_default().to_owned())
                    .or_default() += 1;
                if let lifeline_events::Event::DropDelivered(delivered) = &envelope.event {
                    codes.insert(delivered.order.clone(), delivered.proof.code.clone());
                }
            }
        }
    }
    for order in &orders {
        assert_eq!(
            drop_events.get(order),
            Some(&1),
            "one drop event for {order}: {drop_events:?}"
        );
    }
    // The proof codes typed offline travelled with the drops (the driver gives each
    // delivered order a code).
    let delivered = result["delivered"].as_array().expect("list");
    assert!(!delivered.is_empty());
    for order in delivered {
        let order = order.as_str().expect("id");
        assert!(
            codes.get(order).is_some_and(|code| code.is_some()),
            "proof code of {order}: {codes:?}"
        );
    }
}

/// A W3C `traceparent` on the request becomes the events' correlation id and travels on as
/// the `traceparent` header of the NATS message, so one order can be followed through every
/// consumer's logs.
/// Two phones acknowledge the same drop at the same moment with different keys: one is
/// recorded, the other gets 409, and the stream holds one drop.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_acknowledgements_of_one_drop_record_one() {
    let world = World::start().await;
    let c = &world.client;
    let (run, orders) = world.run_for(&[HOUSEHOLD]).await;
    world.courier_departs(&run).await;
    let before = world.harness.head().await;
    let path = format!("/v1/runs/{run}/drops");
    let delivered = json!({"order": orders[0], "outcome": "delivered"});
    let failed = json!({"order": orders[0], "outcome": "failed", "reason": "no_answer"});
    let (first, second) = tokio::join!(
        c.call(
            "POST",
            &path,
            Some(COURIER),
            Some(delivered),
            Some("phone-a")
        ),
        c.call("POST", &path, Some(COURIER), Some(failed), Some("phone-b")),
    );
    let mut statuses = [first.0, second.0];
    statuses.sort_unstable();
    assert_eq!(statuses, [202, 409], "{first:?} {second:?}");
    assert_eq!(world.harness.head().await, before + 1, "one drop appended");
}

/// The courier's first attempt was stored but its acknowledgement never reached the
/// gateway (the phone saw an error and retries). The retry, even after the drop is applied
/// and JetStream's duplicate window has passed, finds the stored event and returns it: no
/// 409 for a drop that happened, and nothing appended twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_after_a_lost_acknowledgement_returns_the_stored_drop() {
    let mut world = World::start().await;
    let (run, orders) = world.run_for(&[HOUSEHOLD]).await;
    assert_eq!(
        world
            .client
            .post(&format!("/v1/runs/{run}/depart"), COURIER, json!({}))
            .await
            .0,
        202
    );
    world
        .until(
            "run departed",
            |b| b["state"] == "departed",
            &format!("/v1/runs/{run}/manifest"),
            COURIER,
        )
        .await;

    // What the gateway had done before the acknowledgement was lost: chosen the id and
    // published the drop.
    let event_id = lifeline_events::new_event_id();
    let drop = lifeline_events::Envelope::with_id(
        event_id,
        lifeline_events::Event::DropDelivered(lifeline_events::DropDelivered {
            order: orders[0].clone(),
            run: run.clone(),
            community: "tianlun".into(),
            household: HOUSEHOLD.into(),
            proof: Default::default(),
        }),
        meta(lifeline_events::Actor::new(
            lifeline_events::ActorKind::Courier,
            "vol-tianlun-007",
        )),
    );
    world.harness.publish(std::slice::from_ref(&drop)).await;
    world.stage_of(&orders[0], "delivered").await;

    // Restart the gateway with that attempt pending in its idempotency table.
    let up = std::mem::replace(&mut world.up, Up::placeholder());
    assert_eq!(up.terminate(), 0);
    {
        let bucket = world
            .harness
            .jetstream
            .get_key_value(lifeline_bus::IDEMPOTENCY_BUCKET)
            .await
            .expect("the idempotency bucket");
        bucket
            .put(
                lifeline_gateway::idempotency::bucket_key("vol-tianlun-007", "lost-ack"),
                serde_json::to_vec(&json!({"state": "pending", "event_id": event_id}))
                    .expect("json")
                    .into(),
            )
            .await
            .expect("put");
    }
    world.up = Up::start_with_args(
        &world.harness,
        world._data.path(),
        &["--access", &workspace_path("deploy/access.example.toml")],
    );
    world.client.base = world.up.http.clone();
    world.up.wait_ready().await;

    let before = world.harness.head().await;
    let (status, answer) = world
        .client
        .call(
            "POST",
            &format!("/v1/runs/{run}/drops"),
            Some(COURIER),
            Some(json!({"order": orders[0], "outcome": "delivered"})),
            Some("lost-ack"),
        )
        .await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(
        answer["event_id"],
        event_id.to_string(),
        "the stored drop is the answer"
    );
    assert_eq!(world.harness.head().await, before, "nothing appended");
}

/// The story's last sealed unit, building 7 unit 8: staff seal it; a courier outside the
/// door-to-door group may not take the run there, and the drop at the door needs a proof
/// code; every refusal names its rule and appends nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sealed_unit_gets_door_to_door_couriers_and_proven_drops() {
    let world = World::start().await;
    let c = &world.client;
    let seal = json!({"scope": {"level": "unit", "building": "tianlun-b07", "unit": "tianlun-b07-u8"}, "sealed": true});
    world
        .refuses(vec![
            refused(
                "a resident may not seal",
                Some(RESIDENT),
                "/v1/communities/tianlun/seals",
                seal.clone(),
                403,
                "forbidden",
            ),
            refused(
                "a building of another community",
                Some(STAFF),
                "/v1/communities/tianlun/seals",
                json!({"scope": {"level": "building", "building": "hg-yl1-b01"}, "sealed": true}),
                422,
                "unknown_building",
            ),
        ])
        .await;
    let (status, body) = c.post("/v1/communities/tianlun/seals", STAFF, seal).await;
    assert_eq!(status, 202, "{body}");
    let (run, orders) = world.run_for(&[HOUSEHOLD]).await;
    let depart = format!("/v1/runs/{run}/depart");
    world
        .refuses(vec![refused(
            "a supplies volunteer into a sealed unit",
            Some(STAFF),
            depart.clone(),
            json!({"courier": "vol-tianlun-008"}),
            422,
            "courier_not_cleared",
        )])
        .await;
    world.courier_departs(&run).await;
    let drops = format!("/v1/runs/{run}/drops");
    let keyed = |rule, body, key| Refused {
        key: Some(key),
        ..refused(
            rule,
            Some(COURIER),
            drops.clone(),
            body,
            422,
            "proof_required",
        )
    };
    world
        .refuses(vec![keyed(
            "a drop behind the seal without a proof",
            json!({"order": orders[0], "outcome": "delivered"}),
            "sealed-1",
        )])
        .await;
    let (status, body) = c
        .call(
            "POST",
            &drops,
            Some(COURIER),
            Some(json!({"order": orders[0], "outcome": "delivered", "proof": {"code": "0813"}})),
            Some("sealed-2"),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    world.stage_of(&orders[0], "delivered").await;
}
