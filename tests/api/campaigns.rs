//! Campaigns through the API: staff start a broadcast for one building, the orders appear
//! per household, the progress view counts them per building; a campaign that breaks a
//! rule is refused by name and appends nothing.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staff_start_a_melon_for_one_building_and_follow_it() {
    let world = World::start().await;
    let c = &world.client;
    let path = "/v1/communities/tianlun/campaigns";
    let melon = json!({
        "name": "A free melon for building 7",
        "partner": "shuocheng",
        "lines": [{"item": "watermelon", "quantity": 1}],
        "scope": {"buildings": ["tianlun-b07"]}
    });
    world
        .refuses(vec![
            refused(
                "a resident may not",
                Some(RESIDENT),
                path,
                melon.clone(),
                403,
                "forbidden",
            ),
            refused(
                "a building of another community",
                Some(STAFF),
                path,
                json!({"name": "x", "partner": "shuocheng", "lines": [{"item": "watermelon", "quantity": 1}], "scope": {"buildings": ["nowhere"]}}),
                422,
                "unknown_building",
            ),
            refused(
                "no name",
                Some(STAFF),
                path,
                json!({"name": "", "partner": "shuocheng", "lines": [{"item": "watermelon", "quantity": 1}]}),
                422,
                "campaign_name",
            ),
            refused(
                "an unknown item",
                Some(STAFF),
                path,
                json!({"name": "x", "partner": "shuocheng", "lines": [{"item": "caviar", "quantity": 1}]}),
                422,
                "unknown_item",
            ),
        ])
        .await;
    let (status, started) = c.post(path, STAFF, melon).await;
    assert_eq!(status, 202, "{started}");
    let campaign = started["campaign"]
        .as_str()
        .expect("campaign id")
        .to_owned();
    let households = lifeline_seeds::Seeds::embedded()
        .expect("seeds")
        .households
        .iter()
        .filter(|h| h.building == "tianlun-b07")
        .count() as u64;
    assert!(households > 0);
    let progress = world
        .until(
            "every household of building 7 has its melon order",
            |b| b["ordered"] == households,
            &format!("{path}/{campaign}"),
            STAFF,
        )
        .await;
    assert_eq!(progress["buildings"].as_array().map(Vec::len), Some(1));
    assert_eq!(progress["buildings"][0]["building"], "tianlun-b07");
    assert_eq!(progress["delivered"], 0);
    // The household's own order list shows its melon, placed by the campaign.
    let (status, orders) = c
        .get(&format!("/v1/households/{HOUSEHOLD}/orders"), STAFF)
        .await;
    assert_eq!(status, 200, "{orders}");
    let melons: Vec<&Value> = orders["orders"]
        .as_array()
        .expect("orders")
        .iter()
        .filter(|o| o["campaign"] == campaign.as_str())
        .collect();
    assert_eq!(melons.len(), 1, "{orders}");
    assert_eq!(melons[0]["items"][0]["item"], "watermelon");
    let (status, body) = c.get(&format!("{path}/{campaign}"), RESIDENT).await;
    assert_eq!((status, &body["error"]["code"]), (403, &json!("forbidden")));
}

/// A group buy: nothing is sent until households sign up; each household once, before the
/// cutoff, inside the scope; progress counts the sign-ups per building.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_buy_takes_sign_ups_until_its_cutoff() {
    let world = World::start().await;
    let c = &world.client;
    let cutoff = (time::OffsetDateTime::now_utc() + time::Duration::hours(2))
        .format(&time::format_description::well_known::Rfc3339)
        .expect("time");
    let (status, started) = c
        .post(
            "/v1/communities/tianlun/campaigns",
            STAFF,
            json!({"name": "Vegetable packs at cost", "partner": "yonghui",
                   "lines": [{"item": "veg-pack", "quantity": 1}],
                   "scope": {"buildings": ["tianlun-b07"]}, "signup_until": cutoff}),
        )
        .await;
    assert_eq!(status, 202, "{started}");
    let campaign = started["campaign"].as_str().expect("id").to_owned();
    let join = format!("/v1/campaigns/{campaign}/join");
    // Before anyone signs up, nothing was ordered for anyone.
    let before = world.harness.head().await;
    let (status, joined) = c
        .post(&join, RESIDENT, json!({"household": HOUSEHOLD}))
        .await;
    assert_eq!(status, 202, "{joined}");
    assert_eq!(
        world.harness.head().await,
        before + 1,
        "the sign-up is one order; the campaign fanned out nothing"
    );
    let order = joined["order"].as_str().expect("order").to_owned();
    let placed = world.stage_of(&order, "placed").await;
    assert_eq!(placed["campaign"], campaign.as_str());
    let progress = world
        .until(
            "the sign-up counts",
            |b| b["ordered"] == 1,
            &format!("/v1/communities/tianlun/campaigns/{campaign}"),
            STAFF,
        )
        .await;
    assert_eq!(progress["buildings"][0]["building"], "tianlun-b07");

    world
        .refuses(vec![
            refused(
                "a second sign-up of the household",
                Some(STAFF),
                join.clone(),
                json!({"household": HOUSEHOLD}),
                409,
                "conflict",
            ),
            refused(
                "a household outside the scope",
                Some(STAFF),
                join.clone(),
                json!({"household": "tianlun-b01-u1-0101"}),
                422,
                "not_in_scope",
            ),
            refused(
                "a campaign that does not exist",
                Some(STAFF),
                "/v1/campaigns/no-such-campaign/join",
                json!({"household": HOUSEHOLD}),
                404,
                "unknown_campaign",
            ),
            refused(
                "a courier does not sign up",
                Some(COURIER),
                join,
                json!({"household": HOUSEHOLD}),
                403,
                "forbidden",
            ),
        ])
        .await;
}
