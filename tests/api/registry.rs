//! Staff keep the registry and run their desk from the staff console; partners pick from
//! pick sheets and vehicles carry them to the checkpoint whole.

use super::*;

const OTHER_STAFF: &str = "dev-staff-huangtugang";

impl Client {
    async fn put(&self, path: &str, token: &str, body: Value) -> (u16, Value) {
        self.call("PUT", path, Some(token), Some(body), None).await
    }
}

/// A staff member opens the console in headless Chromium, flags a household found
/// vulnerable and gives its phone: the household's open order is raised to `priority`,
/// and the phone shows only to staff of the community. Drives tests/browser/staff.mjs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staff_flag_a_household_in_the_console_and_its_open_order_is_raised() {
    let world = World::start().await;
    let c = &world.client;
    let household = "tianlun-b07-u1-0102";
    let (status, placed) = c
        .post(
            "/v1/orders",
            STAFF,
            json!({"household": household, "partner": "yonghui", "lines": [{"item": "veg-pack", "quantity": 1}]}),
        )
        .await;
    assert_eq!(status, 202, "{placed}");
    let order = placed["order"].as_str().expect("id").to_owned();
    assert_eq!(
        world.stage_of(&order, "placed").await["priority"],
        "routine"
    );

    let driver = workspace_path("tests/browser/staff.mjs");
    let base = c.base.clone();
    let id = order.clone();
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new("node")
            .arg(driver)
            .args([
                base.as_str(),
                STAFF,
                "tianlun",
                "tianlun-b07",
                household,
                &id,
            ])
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
    assert_eq!(result["priority_after"], "priority", "{result}");

    // The projection agrees, and the stream holds the registration and one raise.
    let record = world.stage_of(&order, "placed").await;
    assert_eq!(record["priority"], "priority", "{record}");
    let (status, list) = c
        .get(
            "/v1/communities/tianlun/households?building=tianlun-b07",
            STAFF,
        )
        .await;
    assert_eq!(status, 200);
    let row = list["households"]
        .as_array()
        .expect("list")
        .iter()
        .find(|h| h["household"] == household)
        .cloned()
        .expect("listed");
    assert_eq!(row["phone"], "13800138000", "{row}");
    assert!(!row["vulnerabilities"].as_array().expect("flags").is_empty());
    // Personal data stays in its community: other staff and couriers are refused.
    for token in [OTHER_STAFF, COURIER, YONGHUI] {
        let (status, _) = c
            .get(
                "/v1/communities/tianlun/households?building=tianlun-b07",
                token,
            )
            .await;
        assert_eq!(status, 403, "{token}");
    }
}

/// Every registration through the API, by kind, and the refusals that name their rule.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staff_register_and_correct_the_registry() {
    let world = World::start().await;
    let c = &world.client;
    let registrations = [
        (
            "/v1/communities/tianlun/vehicles/tianlun-car-1",
            json!({"name": "Lent car 1", "name_zh": "爱心车1号", "plate": "京A12345"}),
        ),
        (
            "/v1/communities/tianlun/buildings/tianlun-b17",
            json!({"name": "Building 17", "name_zh": "17号楼", "x_m": 620, "y_m": 420}),
        ),
        (
            "/v1/communities/tianlun/units/tianlun-b17-u1",
            json!({"building": "tianlun-b17", "name": "Unit 1", "name_zh": "1单元"}),
        ),
        (
            "/v1/communities/tianlun/households/tianlun-b17-u1-0101",
            json!({"building": "tianlun-b17", "unit": "tianlun-b17-u1", "door": "101", "head_count": 2, "vulnerabilities": ["pregnant"]}),
        ),
        (
            "/v1/communities/tianlun/volunteers/vol-tianlun-101",
            json!({"name": "Volunteer 101", "group": "medicine_runs"}),
        ),
        (
            "/v1/communities/tianlun/tricycles/tri-31",
            json!({"capacity_g": 150000}),
        ),
    ];
    for (path, body) in registrations {
        // Each waits for the one before it (a unit needs its building).
        let (status, answer) = loop {
            let (status, answer) = c.put(path, STAFF, body.clone()).await;
            if status != 422 {
                break (status, answer);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert_eq!(status, 202, "{path}: {answer}");
        assert!(
            path.ends_with(answer["id"].as_str().expect("id")),
            "{answer}"
        );
    }
    let buildings = world
        .until(
            "the new building is listed with its unit",
            |b| {
                b["buildings"].as_array().is_some_and(|all| {
                    all.iter().any(|b| {
                        b["building"] == "tianlun-b17" && b["units"][0]["name_zh"] == "1单元"
                    })
                })
            },
            "/v1/communities/tianlun/buildings",
            STAFF,
        )
        .await;
    assert!(buildings["buildings"].as_array().expect("list").len() >= 17);
    world
        .refuses(vec![
            refused(
                "a household in a unit of another building",
                Some(STAFF),
                "/v1/communities/tianlun/households/tianlun-b17-u1-0102",
                json!({"building": "tianlun-b07", "unit": "tianlun-b17-u1", "door": "102", "head_count": 2}),
                422,
                "unknown_unit",
            ),
            refused(
                "nobody lives there",
                Some(STAFF),
                "/v1/communities/tianlun/households/tianlun-b17-u1-0102",
                json!({"building": "tianlun-b17", "unit": "tianlun-b17-u1", "door": "102", "head_count": 0}),
                422,
                "out_of_range",
            ),
            refused(
                "a work group the story does not have",
                Some(STAFF),
                "/v1/communities/tianlun/volunteers/vol-tianlun-102",
                json!({"name": "Volunteer 102", "group": "karaoke"}),
                422,
                "unknown_group",
            ),
            refused(
                "a phone that is not one",
                Some(STAFF),
                "/v1/communities/tianlun/households/tianlun-b07-u8-0301/contact",
                json!({"phone": "call me"}),
                422,
                "invalid_phone",
            ),
            refused(
                "another community's registry",
                Some(OTHER_STAFF),
                "/v1/communities/tianlun/tricycles/tri-32",
                json!({"capacity_g": 150000}),
                403,
                "forbidden",
            ),
            refused(
                "operators read, they do not register",
                Some(OPERATOR),
                "/v1/communities/tianlun/tricycles/tri-32",
                json!({"capacity_g": 150000}),
                403,
                "forbidden",
            ),
        ]
        .into_iter()
        .map(|case| Refused {
            method: "PUT",
            ..case
        })
        .collect())
        .await;
}

/// Yonghui's pick sheet for building 7 lists the orders by unit with totals equal to their
/// lines (JSON, CSV and a printable page); picks posted from it, and one arrival of a lent
/// car carrying the sheet, move every order on it to the checkpoint.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pick_sheet_is_picked_and_carried_to_the_checkpoint_as_one_batch() {
    let world = World::start().await;
    let c = &world.client;
    let (status, answer) = c
        .put(
            "/v1/communities/tianlun/vehicles/tianlun-car-2",
            STAFF,
            json!({"name": "Lent car 2", "name_zh": "爱心车2号"}),
        )
        .await;
    assert_eq!(status, 202, "{answer}");
    let households = [
        "tianlun-b07-u8-0301",
        "tianlun-b07-u8-0302",
        "tianlun-b07-u1-0101",
    ];
    let mut orders = Vec::new();
    for (n, household) in households.iter().enumerate() {
        let lines =
            json!([{"item": "veg-pack", "quantity": 1 + n}, {"item": "fruit-pack", "quantity": 1}]);
        let (status, placed) = c
            .post(
                "/v1/orders",
                STAFF,
                json!({"household": household, "partner": "yonghui", "lines": lines}),
            )
            .await;
        assert_eq!(status, 202, "{placed}");
        orders.push(placed["order"].as_str().expect("id").to_owned());
    }
    for order in &orders {
        world.stage_of(order, "placed").await;
    }
    let path = "/v1/partners/yonghui/pick-sheet?community=tianlun&building=tianlun-b07";
    let (status, sheet) = c.get(path, YONGHUI).await;
    assert_eq!(status, 200, "{sheet}");
    assert_eq!(sheet["orders"], 3, "{sheet}");
    assert_eq!(sheet["buildings"][0]["building"], "tianlun-b07");
    let units: Vec<&str> = sheet["buildings"][0]["units"]
        .as_array()
        .expect("units")
        .iter()
        .map(|u| u["unit"].as_str().expect("unit"))
        .collect();
    assert_eq!(units, ["tianlun-b07-u1", "tianlun-b07-u8"]);
    assert_eq!(
        sheet["totals"],
        json!([{"item": "fruit-pack", "quantity": 3}, {"item": "veg-pack", "quantity": 6}])
    );
    assert_eq!(sheet["names"]["tianlun-b07"]["name_zh"], "7号楼");
    let batch = sheet["batch"].as_str().expect("batch").to_owned();
    for (format, kind, needle) in [
        ("csv", "text/csv", "tianlun-b07-u8-0302"),
        ("html", "text/html", "7号楼"),
    ] {
        let response = reqwest::Client::new()
            .get(format!("{}{path}&format={format}", c.base))
            .bearer_auth(YONGHUI)
            .send()
            .await
            .expect("http");
        let content_type = response.headers()[reqwest::header::CONTENT_TYPE]
            .to_str()
            .unwrap_or_default()
            .to_owned();
        let text = response.text().await.expect("body");
        assert!(content_type.starts_with(kind), "{content_type}");
        assert!(text.contains(needle) && text.contains(&batch), "{text}");
    }
    // A resident may not read it.
    assert_eq!(c.get(path, RESIDENT).await.0, 403);

    for (n, order) in orders.iter().enumerate() {
        let pick = json!({"order": order, "batch": batch, "lines": [
            {"item": "veg-pack", "ordered": 1 + n, "outcome": "picked", "picked": 1 + n},
            {"item": "fruit-pack", "ordered": 1, "outcome": "picked", "picked": 1}]});
        let (status, body) = c.post("/v1/partners/yonghui/picks", YONGHUI, pick).await;
        assert_eq!(status, 202, "{body}");
    }
    for order in &orders {
        world.stage_of(order, "picked").await;
    }
    // Nothing waits for a pick any more: the sheet is empty.
    let (_, after) = c.get(path, YONGHUI).await;
    assert_eq!(after["orders"], 0, "{after}");

    let arrival = json!({"partner": "yonghui", "vehicle": "tianlun-car-2", "driver": "Mr Wang", "batches": [batch]});
    let (status, body) = c
        .post("/v1/communities/tianlun/arrivals", STAFF, arrival)
        .await;
    assert_eq!(status, 202, "{body}");
    // Each came with the car (dispatch may have put it on a run already).
    for order in &orders {
        world
            .until(
                "the order came to the checkpoint with the car",
                |record| {
                    record["vehicle"] == "tianlun-car-2"
                        && record["history"]
                            .as_array()
                            .is_some_and(|h| h.iter().any(|t| t["stage"] == "at_checkpoint"))
                },
                &format!("/v1/orders/{order}"),
                OPERATOR,
            )
            .await;
    }
    let unknown = json!({"partner": "yonghui", "vehicle": "tianlun-car-9", "batches": [batch]});
    let (status, body) = c
        .post("/v1/communities/tianlun/arrivals", STAFF, unknown)
        .await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (422, &json!("unknown_vehicle"))
    );
}

/// Operators register a new partner; from then on households may order from it (what it
/// cannot supply waits in its shortfall line until it restocks). Staff may not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operators_register_a_partner_that_households_can_then_order_from() {
    let world = World::start().await;
    let c = &world.client;
    let wumart = json!({"name": "Wumart", "name_zh": "物美", "communities": ["tianlun"]});
    let (status, body) = c.put("/v1/partners/wumart", STAFF, wumart.clone()).await;
    assert_eq!((status, &body["error"]["code"]), (403, &json!("forbidden")));
    let order = json!({"household": HOUSEHOLD, "partner": "wumart", "lines": [{"item": "veg-pack", "quantity": 1}]});
    let (status, body) = c.post("/v1/orders", STAFF, order.clone()).await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (422, &json!("unknown_partner"))
    );
    let (status, body) = c.put("/v1/partners/wumart", OPERATOR, wumart).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["id"], "wumart");
    let (status, body) = c
        .put(
            "/v1/partners/wumart",
            OPERATOR,
            json!({"name": "Wumart", "communities": ["atlantis"]}),
        )
        .await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (422, &json!("unknown_community"))
    );
    let (status, placed) = c.post("/v1/orders", STAFF, order).await;
    assert_eq!(status, 202, "{placed}");
}
