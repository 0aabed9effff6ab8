//! Parcels and medicine errands, as staff and volunteers meet them: a parcel handed in at
//! the checkpoint rides a run and is at the door the same day; a prescription is accepted
//! by one volunteer, collected, and taken to the door or left for a tricycle.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parcel_goes_out_the_same_day() {
    let world = World::start().await;
    let c = &world.client;
    let parcel = json!({"household": HOUSEHOLD, "carrier": "SF Express", "tracking": "SF1234567", "weight_g": 1200});
    let (status, received) = c
        .post("/v1/communities/tianlun/parcels", STAFF, parcel.clone())
        .await;
    assert_eq!(status, 202, "{received}");
    let order = received["order"].as_str().expect("order id").to_owned();
    assert_eq!(received["household"], HOUSEHOLD);

    // No pick, no arrival: dispatch puts it on a run at once.
    let on_run = world.stage_of(&order, "on_run").await;
    assert_eq!(on_run["kind"], "parcel");
    assert_eq!(on_run["priority"], "priority");
    assert_eq!(on_run["parcel"]["tracking"], "SF1234567");
    let run = on_run["run"].as_str().expect("run").to_owned();
    world.courier_departs(&run).await;
    let (status, manifest) = c.get(&format!("/v1/runs/{run}/manifest"), COURIER).await;
    assert_eq!(status, 200, "{manifest}");
    let items = &manifest["stops"][0]["orders"][0]["items"];
    assert_eq!(items[0]["item"], "parcel", "{manifest}");
    assert_eq!(items[0]["name"], "parcel SF1234567 (SF Express)");

    let drop = json!({"order": order, "outcome": "delivered", "proof": {"code": "4821"}});
    let (status, body) = c
        .call(
            "POST",
            &format!("/v1/runs/{run}/drops"),
            Some(COURIER),
            Some(drop),
            Some("parcel-drop-1"),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    let delivered = world.stage_of(&order, "delivered").await;
    let history = delivered["history"].as_array().expect("history");
    let day = |at: &Value| at.as_str().expect("time")[..10].to_owned();
    assert_eq!(
        day(&history[0]["at"]),
        day(&history[history.len() - 1]["at"]),
        "received and delivered the same day: {delivered}"
    );

    world
        .refuses(vec![
            refused(
                "a resident does not record parcels",
                Some(RESIDENT),
                "/v1/communities/tianlun/parcels",
                parcel.clone(),
                403,
                "forbidden",
            ),
            refused(
                "an unknown household",
                Some(STAFF),
                "/v1/communities/tianlun/parcels",
                json!({"household": "nobody", "carrier": "SF", "tracking": "SF1", "weight_g": 100}),
                422,
                "unknown_household",
            ),
            refused(
                "a household of another community",
                Some(STAFF),
                "/v1/communities/tianlun/parcels",
                json!({"household": "huangtugang-bungalow-east-l01-0001", "carrier": "SF", "tracking": "SF1", "weight_g": 100}),
                422,
                "unknown_household",
            ),
            refused(
                "no weight",
                Some(STAFF),
                "/v1/communities/tianlun/parcels",
                json!({"household": HOUSEHOLD, "carrier": "SF", "tracking": "SF1", "weight_g": 0}),
                422,
                "weight_out_of_range",
            ),
            refused(
                "an empty tracking number",
                Some(STAFF),
                "/v1/communities/tianlun/parcels",
                json!({"household": HOUSEHOLD, "carrier": "SF", "tracking": " ", "weight_g": 100}),
                422,
                "invalid_text",
            ),
            refused(
                "staff of another community",
                Some(STAFF),
                "/v1/communities/huangtugang/parcels",
                parcel,
                403,
                "forbidden",
            ),
        ])
        .await;
}

/// A resident asks for insulin from the hospital; returns the errand's id once it is placed.
async fn request_insulin(world: &World) -> String {
    let (status, body) = world
        .client
        .post(
            "/v1/errands",
            RESIDENT,
            json!({"household": HOUSEHOLD, "place": "Tongji Hospital", "medicine": "insulin glargine"}),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    let order = body["order"].as_str().expect("order id").to_owned();
    let placed = world.stage_of(&order, "placed").await;
    assert_eq!(placed["kind"], "errand");
    assert_eq!(placed["priority"], "urgent");
    order
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_medicine_errand_is_run_by_one_volunteer_to_the_door_or_the_checkpoint() {
    let world = World::start().await;
    let c = &world.client;
    let errand = request_insulin(&world).await;
    let accept = format!("/v1/errands/{errand}/accept");
    let collect = format!("/v1/errands/{errand}/collect");
    world
        .refuses(vec![refused(
            "collected before anyone accepted it",
            Some(COURIER),
            collect.clone(),
            json!({"route": "door", "weight_g": 300}),
            409,
            "errand_not_open",
        )])
        .await;
    assert_eq!(c.post(&accept, COURIER, json!({})).await.0, 202);
    world.stage_of(&errand, "accepted").await;
    world
        .refuses(vec![
            refused(
                "a second volunteer",
                Some(OTHER_COURIER),
                accept.clone(),
                json!({}),
                409,
                "errand_not_open",
            ),
            refused(
                "collected by another volunteer",
                Some(OTHER_COURIER),
                collect.clone(),
                json!({"route": "door", "weight_g": 300}),
                403,
                "not_your_errand",
            ),
            refused(
                "a resident does not run errands",
                Some(RESIDENT),
                accept.clone(),
                json!({}),
                403,
                "forbidden",
            ),
            refused(
                "an empty prescription",
                Some(RESIDENT),
                "/v1/errands",
                json!({"household": HOUSEHOLD, "place": "Tongji", "medicine": ""}),
                422,
                "invalid_text",
            ),
        ])
        .await;

    // To the door: the errand is its own run, and the volunteer posts its drop.
    let (status, body) = c
        .post(&collect, COURIER, json!({"route": "door", "weight_g": 300}))
        .await;
    assert_eq!(status, 202, "{body}");
    let on_way = world.stage_of(&errand, "on_run").await;
    assert_eq!(on_way["run"], errand.as_str());
    let drops = format!("/v1/errands/{errand}/drops");
    let delivered = json!({"outcome": "delivered", "proof": {"code": "1234"}});
    let (status, body) = c
        .call(
            "POST",
            &drops,
            Some(OTHER_COURIER),
            Some(delivered.clone()),
            Some("e-drop-x"),
        )
        .await;
    assert_eq!((status, &body["error"]["code"]), (403, &json!("forbidden")));
    let (status, body) = c
        .call(
            "POST",
            &drops,
            Some(COURIER),
            Some(delivered),
            Some("e-drop-1"),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    world.stage_of(&errand, "delivered").await;

    // To the checkpoint: it joins a tricycle run like an arrived order.
    let second = request_insulin(&world).await;
    assert_eq!(
        c.post(&format!("/v1/errands/{second}/accept"), COURIER, json!({}))
            .await
            .0,
        202
    );
    world.stage_of(&second, "accepted").await;
    let (status, body) = c
        .post(
            &format!("/v1/errands/{second}/collect"),
            COURIER,
            json!({"route": "checkpoint", "weight_g": 300}),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    let riding = world.stage_of(&second, "on_run").await;
    assert_ne!(riding["run"], second.as_str(), "{riding}");
    assert!(riding["run"].as_str().expect("run").starts_with("run-"));
}
