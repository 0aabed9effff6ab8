//! The /v1 API over real HTTP against `lifeline up`, a real nats-server and RocksDB: every
//! endpoint, every kind of rejection (each leaves the stream untouched), idempotent
//! retries and the scope rules.

mod common;

use std::time::Duration;

use common::*;
use lifeline_testkit::eventually;
use serde_json::{Value, json};

const RESIDENT: &str = "dev-resident-0301";
const STAFF: &str = "dev-staff-tianlun";
const YONGHUI: &str = "dev-partner-yonghui";
const SHUOCHENG: &str = "dev-partner-shuocheng";
const COURIER: &str = "dev-courier-007";
const OTHER_COURIER: &str = "dev-courier-008";
const OPERATOR: &str = "dev-operator";
const HOUSEHOLD: &str = "tianlun-b07-u8-0301";

struct Client {
    http: reqwest::Client,
    base: String,
}

impl Client {
    async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
        key: Option<&str>,
    ) -> (u16, Value) {
        let mut request = self.http.request(
            method.parse().expect("method"),
            format!("{}{path}", self.base),
        );
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(key) = key {
            request = request.header("Idempotency-Key", key);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("http");
        let status = response.status().as_u16();
        let text = response.text().await.expect("body");
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn get(&self, path: &str, token: &str) -> (u16, Value) {
        self.call("GET", path, Some(token), None, None).await
    }

    async fn post(&self, path: &str, token: &str, body: Value) -> (u16, Value) {
        self.call("POST", path, Some(token), Some(body), None).await
    }
}

struct World {
    harness: Harness,
    _data: tempfile::TempDir,
    up: Up,
    client: Client,
}

impl World {
    async fn start() -> World {
        let harness = Harness::start().await;
        let seeds =
            lifeline_seeds::Seeds::load(&lifeline_seeds::default_directory()).expect("seeds");
        harness
            .publish(&seeds.events(time::OffsetDateTime::now_utc()))
            .await;
        let data = tempfile::tempdir().expect("tempdir");
        let up = Up::start_with_args(
            &harness,
            data.path(),
            &["--access", &workspace_path("deploy/access.example.toml")],
        );
        let client = Client {
            http: reqwest::Client::new(),
            base: up.http.clone(),
        };
        let head = harness.head().await;
        assert!(
            eventually(Duration::from_secs(30), || async {
                let Some((_, body)) = up.get("/readyz").await else {
                    return false;
                };
                let json: Value = serde_json::from_str(&body).unwrap_or_default();
                ["registry", "inventory", "delivery"]
                    .iter()
                    .all(|c| json["consumers"][c]["position"].as_u64() >= Some(head))
            })
            .await,
            "lifeline up loaded the seeds"
        );
        World {
            harness,
            _data: data,
            up,
            client,
        }
    }

    /// Runs `request`, asserts its status and the JSON error shape, and that nothing was
    /// appended to the stream.
    async fn rejected(
        &self,
        expected: u16,
        request: impl std::future::Future<Output = (u16, Value)>,
    ) -> Value {
        let before = self.harness.head().await;
        let (status, body) = request.await;
        assert_eq!(status, expected, "{body}");
        assert!(
            body["error"]["code"].is_string() && body["error"]["message"].is_string(),
            "JSON error body: {body}"
        );
        assert_eq!(
            self.harness.head().await,
            before,
            "a rejected command appended nothing"
        );
        body
    }

    async fn until(
        &self,
        what: &str,
        check: impl Fn(Value) -> bool,
        path: &str,
        token: &str,
    ) -> Value {
        let mut last = Value::Null;
        for _ in 0..400 {
            let (status, body) = self.client.get(path, token).await;
            if status == 200 && check(body.clone()) {
                return body;
            }
            last = body;
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("{what}: last answer {last}");
    }

    async fn stage_of(&self, order: &str, stage: &str) -> Value {
        self.until(
            &format!("order {order} reaches {stage}"),
            |b| b["status"]["stage"] == stage,
            &format!("/v1/orders/{order}"),
            OPERATOR,
        )
        .await
    }
}

fn workspace_path(relative: &str) -> String {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(relative)
        .display()
        .to_string()
}

fn veg_order() -> Value {
    json!({"household": HOUSEHOLD, "partner": "yonghui", "lines": [{"item": "veg-pack", "quantity": 1}]})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn residents_and_staff_order_read_and_cancel_within_their_scope() {
    let world = World::start().await;
    let c = &world.client;

    // Authentication.
    world
        .rejected(
            401,
            c.call("POST", "/v1/orders", None, Some(veg_order()), None),
        )
        .await;
    world
        .rejected(
            401,
            c.call(
                "POST",
                "/v1/orders",
                Some("not-a-token"),
                Some(veg_order()),
                None,
            ),
        )
        .await;

    // Validation before anything is appended.
    let malformed = async {
        let response = c
            .http
            .post(format!("{}/v1/orders", c.base))
            .bearer_auth(RESIDENT)
            .header("content-type", "application/json")
            .body("{\"household\": ")
            .send()
            .await
            .expect("http");
        let status = response.status().as_u16();
        (status, response.json::<Value>().await.unwrap_or_default())
    };
    world.rejected(400, malformed).await;
    let huge = json!({"household": HOUSEHOLD, "partner": "yonghui", "lines": [{"item": "x".repeat(70_000), "quantity": 1}]});
    world
        .rejected(413, c.post("/v1/orders", RESIDENT, huge))
        .await;
    world
        .rejected(
            422,
            c.post(
                "/v1/orders",
                RESIDENT,
                json!({"household": HOUSEHOLD, "partner": "yonghui"}),
            ),
        )
        .await;
    world.rejected(422, c.post("/v1/orders", STAFF, json!({"household": "tianlun-b99-u1-0101", "partner": "yonghui", "lines": [{"item": "veg-pack", "quantity": 1}]}))).await;
    world.rejected(422, c.post("/v1/orders", RESIDENT, json!({"household": HOUSEHOLD, "partner": "yonghui", "lines": [{"item": "caviar", "quantity": 1}]}))).await;
    world.rejected(422, c.post("/v1/orders", RESIDENT, json!({"household": HOUSEHOLD, "partner": "yonghui", "lines": [{"item": "veg-pack", "quantity": 0}]}))).await;
    world.rejected(422, c.post("/v1/orders", RESIDENT, json!({"household": HOUSEHOLD, "partner": "carrefour", "lines": [{"item": "veg-pack", "quantity": 1}]}))).await;
    // Scope: a resident orders only for its own household; partners and couriers do not order.
    world.rejected(403, c.post("/v1/orders", RESIDENT, json!({"household": "tianlun-b07-u8-0302", "partner": "yonghui", "lines": [{"item": "veg-pack", "quantity": 1}]}))).await;
    world
        .rejected(403, c.post("/v1/orders", YONGHUI, veg_order()))
        .await;

    // A resident's order, retried with the same key: one order.
    let before = world.harness.head().await;
    let (status, first) = c
        .call(
            "POST",
            "/v1/orders",
            Some(RESIDENT),
            Some(veg_order()),
            Some("resident-order-1"),
        )
        .await;
    assert_eq!(status, 202, "{first}");
    let (status, retry) = c
        .call(
            "POST",
            "/v1/orders",
            Some(RESIDENT),
            Some(veg_order()),
            Some("resident-order-1"),
        )
        .await;
    assert_eq!(status, 202);
    assert_eq!(retry, first, "a retry returns the first answer");
    assert_eq!(
        world.harness.head().await,
        before + 1,
        "exactly one event appended"
    );
    let order = first["order"].as_str().expect("order id").to_owned();
    assert_eq!(first["household"], HOUSEHOLD);

    // Staff order medicine for a neighbour: urgent, recorded as placed on their behalf.
    let (status, staff_order) = c
        .post("/v1/orders", STAFF, json!({"household": "tianlun-b07-u8-0302", "partner": "yonghui", "lines": [{"item": "med-insulin", "quantity": 1}]}))
        .await;
    assert_eq!(status, 202, "{staff_order}");
    assert_eq!(staff_order["priority"], "urgent");
    let staff_order_id = staff_order["order"].as_str().expect("id").to_owned();
    let record = world.stage_of(&staff_order_id, "placed").await;
    assert_eq!(
        record["history"][0]["detail"],
        "placed by staff staff-tianlun-hotline"
    );

    // Reading: own order yes, a neighbour's order no, unknown 404.
    let record = world.stage_of(&order, "placed").await;
    assert_eq!(record["items"][0]["item"], "veg-pack");
    let (status, mine) = c.get(&format!("/v1/orders/{order}"), RESIDENT).await;
    assert_eq!(status, 200, "{mine}");
    world
        .rejected(
            403,
            c.get(&format!("/v1/orders/{staff_order_id}"), RESIDENT),
        )
        .await;
    world
        .rejected(404, c.get("/v1/orders/no-such-order", STAFF))
        .await;
    let (status, listed) = c
        .get(&format!("/v1/households/{HOUSEHOLD}/orders"), RESIDENT)
        .await;
    assert_eq!(status, 200);
    assert_eq!(listed["orders"].as_array().expect("list").len(), 1);
    world
        .rejected(
            403,
            c.get("/v1/households/tianlun-b07-u8-0302/orders", RESIDENT),
        )
        .await;
    world
        .rejected(404, c.get("/v1/households/nowhere/orders", STAFF))
        .await;

    // Cancel before the pick; a second cancel is a conflict.
    let (status, cancelled) = c
        .post(
            &format!("/v1/orders/{order}/cancel"),
            RESIDENT,
            json!({"reason": "a neighbour shared"}),
        )
        .await;
    assert_eq!(status, 202, "{cancelled}");
    world.stage_of(&order, "cancelled").await;
    world
        .rejected(
            409,
            c.post(&format!("/v1/orders/{order}/cancel"), RESIDENT, json!({})),
        )
        .await;
    world
        .rejected(
            403,
            c.post(
                &format!("/v1/orders/{staff_order_id}/cancel"),
                YONGHUI,
                json!({}),
            ),
        )
        .await;
    // Nothing logs a token, though every request above carried one.
    let log = std::fs::read_to_string(&world.up.log).expect("log");
    assert!(log.contains("command appended"), "the gateway logs at info");
    for token in [RESIDENT, STAFF, YONGHUI, "not-a-token"] {
        assert!(!log.contains(token), "token {token} in the log");
    }
    drop(world.up);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partners_dispatch_couriers_and_operators_each_act_only_on_what_is_theirs() {
    let world = World::start().await;
    let c = &world.client;
    let (status, placed) = c.post("/v1/orders", RESIDENT, veg_order()).await;
    assert_eq!(status, 202, "{placed}");
    let order = placed["order"].as_str().expect("id").to_owned();
    world.stage_of(&order, "placed").await;

    // Partners: their own waiting orders only.
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
    world
        .rejected(403, c.get("/v1/partners/yonghui/orders", SHUOCHENG))
        .await;
    world
        .rejected(403, c.get("/v1/partners/yonghui/stock", SHUOCHENG))
        .await;
    let good_pick = json!({"order": order, "lines": [{"item": "veg-pack", "ordered": 1, "outcome": "picked", "picked": 1}]});
    world
        .rejected(
            403,
            c.post("/v1/partners/yonghui/picks", SHUOCHENG, good_pick.clone()),
        )
        .await;
    world
        .rejected(
            403,
            c.post("/v1/partners/shuocheng/picks", SHUOCHENG, good_pick.clone()),
        )
        .await;
    world.rejected(422, c.post("/v1/partners/yonghui/picks", YONGHUI, json!({"order": order, "lines": [{"item": "veg-pack", "ordered": 1, "outcome": "short", "picked": 1}]}))).await;
    world.rejected(422, c.post("/v1/partners/yonghui/picks", YONGHUI, json!({"order": order, "lines": [{"item": "eggs", "ordered": 1, "outcome": "picked", "picked": 1}]}))).await;
    world.rejected(422, c.post("/v1/partners/yonghui/picks", YONGHUI, json!({"order": "no-such-order", "lines": [{"item": "veg-pack", "ordered": 1, "outcome": "picked", "picked": 1}]}))).await;
    // Not picked yet: it cannot arrive at the checkpoint.
    world
        .rejected(
            409,
            c.post(
                "/v1/communities/tianlun/arrivals",
                STAFF,
                json!({"partner": "yonghui", "orders": [order]}),
            ),
        )
        .await;
    let (status, picked) = c
        .call(
            "POST",
            "/v1/partners/yonghui/picks",
            Some(YONGHUI),
            Some(good_pick.clone()),
            Some("pick-1"),
        )
        .await;
    assert_eq!(status, 202, "{picked}");
    world.stage_of(&order, "picked").await;
    let before = world.harness.head().await;
    let (status, retried) = c
        .call(
            "POST",
            "/v1/partners/yonghui/picks",
            Some(YONGHUI),
            Some(good_pick.clone()),
            Some("pick-1"),
        )
        .await;
    assert_eq!(
        (status, &retried),
        (202, &picked),
        "a retry after the pick was applied gets the first answer"
    );
    assert_eq!(world.harness.head().await, before, "and appends nothing");
    world
        .rejected(
            409,
            c.post("/v1/partners/yonghui/picks", YONGHUI, good_pick),
        )
        .await;

    // Stock: restock and read.
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
    world
        .rejected(
            422,
            c.post(
                "/v1/partners/yonghui/stock",
                YONGHUI,
                json!({"item": "caviar", "quantity": 1}),
            ),
        )
        .await;

    // Dispatch: the vehicle arrives, dispatch plans a run, staff send it out with a courier.
    world
        .rejected(
            403,
            c.post(
                "/v1/communities/tianlun/arrivals",
                COURIER,
                json!({"partner": "yonghui", "orders": [order]}),
            ),
        )
        .await;
    let (status, _) = c
        .post(
            "/v1/communities/tianlun/arrivals",
            STAFF,
            json!({"partner": "yonghui", "orders": [order]}),
        )
        .await;
    assert_eq!(status, 202);
    let record = world.stage_of(&order, "on_run").await;
    let run = record["run"].as_str().expect("run id").to_owned();
    let (status, runs) = c.get("/v1/communities/tianlun/runs", STAFF).await;
    assert_eq!(status, 200);
    assert!(
        runs["runs"]
            .as_array()
            .expect("runs")
            .iter()
            .any(|r| r["run"] == run.as_str())
    );
    let (status, ready) = c.get("/v1/communities/tianlun/ready", STAFF).await;
    assert_eq!(status, 200, "{ready}");
    world
        .rejected(403, c.get("/v1/communities/tianlun/runs", YONGHUI))
        .await;
    world
        .rejected(
            404,
            c.post(
                "/v1/runs/run-nope/depart",
                STAFF,
                json!({"courier": "vol-tianlun-007"}),
            ),
        )
        .await;
    world
        .rejected(
            422,
            c.post(
                &format!("/v1/runs/{run}/depart"),
                STAFF,
                json!({"courier": "vol-huangtugang-001"}),
            ),
        )
        .await;
    world
        .rejected(
            409,
            c.post(&format!("/v1/runs/{run}/return"), STAFF, json!({})),
        )
        .await;
    let (status, departed) = c
        .post(
            &format!("/v1/runs/{run}/depart"),
            STAFF,
            json!({"courier": "vol-tianlun-007"}),
        )
        .await;
    assert_eq!(status, 202, "{departed}");
    world
        .until(
            "run departed",
            |b| b["state"] == "departed",
            &format!("/v1/runs/{run}/manifest"),
            STAFF,
        )
        .await;

    // Couriers: only their own run.
    let (status, manifest) = c.get(&format!("/v1/runs/{run}/manifest"), COURIER).await;
    assert_eq!(status, 200, "{manifest}");
    let stop = &manifest["stops"][0];
    assert_eq!(stop["household"], HOUSEHOLD);
    assert_eq!(stop["door"], "301");
    assert_eq!(stop["orders"][0]["items"][0]["name"], "Vegetable package");
    world
        .rejected(
            403,
            c.get(&format!("/v1/runs/{run}/manifest"), OTHER_COURIER),
        )
        .await;
    let drop = json!({"order": order, "outcome": "delivered", "proof": {"code": "4711"}});
    world
        .rejected(
            403,
            c.call(
                "POST",
                &format!("/v1/runs/{run}/drops"),
                Some(OTHER_COURIER),
                Some(drop.clone()),
                Some("ack-x"),
            ),
        )
        .await;
    world
        .rejected(
            400,
            c.call(
                "POST",
                &format!("/v1/runs/{run}/drops"),
                Some(COURIER),
                Some(drop.clone()),
                None,
            ),
        )
        .await;
    world
        .rejected(
            422,
            c.call(
                "POST",
                &format!("/v1/runs/{run}/drops"),
                Some(COURIER),
                Some(json!({"order": "someone-else", "outcome": "delivered"})),
                Some("ack-y"),
            ),
        )
        .await;
    world
        .rejected(
            422,
            c.call(
                "POST",
                &format!("/v1/runs/{run}/drops"),
                Some(COURIER),
                Some(json!({"order": order, "outcome": "failed"})),
                Some("ack-z"),
            ),
        )
        .await;
    let before = world.harness.head().await;
    let (status, first) = c
        .call(
            "POST",
            &format!("/v1/runs/{run}/drops"),
            Some(COURIER),
            Some(drop.clone()),
            Some("ack-1"),
        )
        .await;
    assert_eq!(status, 202, "{first}");
    let (status, again) = c
        .call(
            "POST",
            &format!("/v1/runs/{run}/drops"),
            Some(COURIER),
            Some(drop.clone()),
            Some("ack-1"),
        )
        .await;
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
    // A second, different acknowledgement of the same drop is a conflict.
    world
        .rejected(
            409,
            c.call(
                "POST",
                &format!("/v1/runs/{run}/drops"),
                Some(COURIER),
                Some(drop),
                Some("ack-2"),
            ),
        )
        .await;
    world
        .rejected(
            409,
            c.post(&format!("/v1/orders/{order}/cancel"), RESIDENT, json!({})),
        )
        .await;
    let (status, _) = c
        .post(&format!("/v1/runs/{run}/return"), COURIER, json!({}))
        .await;
    assert_eq!(status, 202);

    // Operators.
    let summary = world
        .until(
            "summary counts the delivery",
            |b| b["orders_by_stage"]["delivered"] == 1,
            "/v1/communities/tianlun/summary",
            OPERATOR,
        )
        .await;
    assert_eq!(summary["orders_by_building"]["tianlun-b07"]["delivered"], 1);
    assert!(
        summary["vulnerable_households_unserved_today"]
            .as_array()
            .expect("list")
            .len()
            > 100,
        "{}",
        summary["vulnerable_households_unserved_today"]
            .as_array()
            .map_or(0, Vec::len)
    );
    assert!(summary["late_orders"].as_array().expect("list").is_empty());
    world
        .rejected(400, c.get("/v1/stuck?minutes=soon", OPERATOR))
        .await;
    world
        .rejected(
            400,
            c.get("/v1/partners/yonghui/orders?stage=teleported", YONGHUI),
        )
        .await;
    let (status, stuck) = c.get("/v1/stuck?minutes=0", OPERATOR).await;
    assert_eq!(status, 200, "{stuck}");
    let (status, letters) = c.get("/v1/dead-letters", OPERATOR).await;
    assert_eq!(status, 200);
    assert!(letters["dead_letters"].is_array());
    let (status, stock) = c.get("/v1/stock", OPERATOR).await;
    assert_eq!(status, 200);
    assert!(stock["stock"].as_array().expect("rows").len() > 10);
    world
        .rejected(403, c.get("/v1/communities/tianlun/summary", YONGHUI))
        .await;
    world
        .rejected(403, c.get("/v1/dead-letters", COURIER))
        .await;
    world
        .rejected(403, c.get("/v1/communities/huangtugang/summary", STAFF))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_document_is_served_and_checked_in() {
    let generated = lifeline_gateway::api::openapi_json();
    let checked_in =
        std::fs::read_to_string(workspace_path("docs/openapi.json")).unwrap_or_default();
    if std::env::var_os("LIFELINE_BLESS").is_some() {
        std::fs::write(workspace_path("docs/openapi.json"), &generated)
            .expect("write docs/openapi.json");
    } else {
        assert!(
            checked_in == generated,
            "docs/openapi.json is stale: run `LIFELINE_BLESS=1 cargo test --test api openapi` and commit it"
        );
    }
    let document: Value = serde_json::from_str(&generated).expect("json");
    for path in [
        "/v1/orders",
        "/v1/runs/{run}/drops",
        "/v1/partners/{partner}/picks",
        "/v1/communities/{community}/summary",
    ] {
        assert!(document["paths"][path].is_object(), "{path} documented");
    }
    let world = World::start().await;
    let response = reqwest::get(format!("{}/openapi.json", world.client.base))
        .await
        .expect("http");
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(response.text().await.expect("body"), generated);
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

    assert_eq!(
        c.post(&format!("/v1/runs/{run}/depart"), COURIER, json!({}))
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
}

/// A W3C `traceparent` on the request becomes the events' correlation id and travels on as
/// the `traceparent` header of the NATS message, so one order can be followed through every
/// consumer's logs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_request_trace_travels_in_the_event_and_its_nats_headers() {
    let world = World::start().await;
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let response = world
        .client
        .http
        .post(format!("{}/v1/orders", world.client.base))
        .bearer_auth(RESIDENT)
        .header("traceparent", format!("00-{trace}-00f067aa0ba902b7-01"))
        .json(&veg_order())
        .send()
        .await
        .expect("http");
    assert_eq!(response.status().as_u16(), 202);
    let body: Value = response.json().await.expect("json");
    let sequence = body["stream_sequence"].as_u64().expect("sequence");
    let stream = world
        .harness
        .jetstream
        .get_stream(lifeline_events::EVENT_STREAM)
        .await
        .expect("stream");
    let message = stream.get_raw_message(sequence).await.expect("stored");
    let envelope = lifeline_events::Envelope::decode(&message.payload).expect("event");
    assert_eq!(envelope.correlation_id.simple().to_string(), trace);
    let header = message
        .headers
        .get("traceparent")
        .expect("traceparent header")
        .to_string();
    assert!(header.starts_with(&format!("00-{trace}-")), "{header}");
}

impl World {
    /// Orders for `households`, picked, brought to the checkpoint: returns the run dispatch
    /// planned for them (one tricycle has room for all) and the order ids.
    async fn run_for(&self, households: &[&str]) -> (String, Vec<String>) {
        let c = &self.client;
        let world = self;
        let mut orders = Vec::new();
        for household in households {
            let (status, placed) = c
                .post("/v1/orders", STAFF, json!({"household": household, "partner": "yonghui", "lines": [{"item": "veg-pack", "quantity": 1}]}))
                .await;
            assert_eq!(status, 202, "{placed}");
            orders.push(placed["order"].as_str().expect("id").to_owned());
        }
        for order in &orders {
            world.stage_of(order, "placed").await;
            let pick = json!({"order": order, "lines": [{"item": "veg-pack", "ordered": 1, "outcome": "picked", "picked": 1}]});
            assert_eq!(
                c.post("/v1/partners/yonghui/picks", YONGHUI, pick).await.0,
                202
            );
            world.stage_of(order, "picked").await;
        }
        let arrival = json!({"partner": "yonghui", "orders": orders});
        assert_eq!(
            c.post("/v1/communities/tianlun/arrivals", STAFF, arrival)
                .await
                .0,
            202
        );
        let run = world.stage_of(&orders[0], "on_run").await["run"]
            .as_str()
            .expect("run")
            .to_owned();
        for order in &orders {
            assert_eq!(
                world.stage_of(order, "on_run").await["run"],
                run.as_str(),
                "one run carries them all"
            );
        }
        (run, orders)
    }
}

/// Two phones acknowledge the same drop at the same moment with different keys: one is
/// recorded, the other gets 409, and the stream holds one drop.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_acknowledgements_of_one_drop_record_one() {
    let world = World::start().await;
    let c = &world.client;
    let (run, orders) = world.run_for(&[HOUSEHOLD]).await;
    assert_eq!(
        c.post(&format!("/v1/runs/{run}/depart"), COURIER, json!({}))
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
        let store = lifeline_store::ProjectionStore::open(
            &world._data.path().join("gateway"),
            &[lifeline_gateway::idempotency::TABLE],
        )
        .expect("open");
        let mut batch = store.batch();
        batch.put(
            lifeline_gateway::idempotency::TABLE,
            "vol-tianlun-007/lost-ack",
            serde_json::to_vec(&json!({"state": "pending", "event_id": event_id})).expect("json"),
        );
        batch.commit(0).expect("commit");
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
