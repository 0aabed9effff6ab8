//! The /v1 API over real HTTP against `lifeline up`, a real nats-server and RocksDB: every
//! endpoint, every kind of rejection (each leaves the stream untouched and names its rule),
//! idempotent retries and the scope rules. One file a role; the shared world here.

mod campaigns;
#[path = "../common/mod.rs"]
mod common;
mod contention;
mod contract;
mod couriers;
mod dispatch;
mod errands;
mod escalations;
mod ledgers;
mod operators;
mod orders;
mod overload;
mod partners;
mod registry;
mod seals;
mod shortages;

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

/// A body sent as these bytes, not as JSON: `raw("{\"household\": ")`.
const RAW: &str = "\u{0}raw:";

fn raw(text: &str) -> Value {
    Value::String(format!("{RAW}{text}"))
}

/// One rejection a table expects: a name for the rule, the request, and the answer.
struct Refused {
    rule: &'static str,
    method: &'static str,
    path: String,
    token: Option<&'static str>,
    body: Option<Value>,
    key: Option<&'static str>,
    status: u16,
    code: &'static str,
}

fn refused(
    rule: &'static str,
    token: Option<&'static str>,
    path: impl Into<String>,
    body: Value,
    status: u16,
    code: &'static str,
) -> Refused {
    Refused {
        rule,
        method: "POST",
        path: path.into(),
        token,
        body: Some(body),
        key: None,
        status,
        code,
    }
}

pub(crate) struct Client {
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
        match body {
            Some(Value::String(raw)) if raw.starts_with(RAW) => {
                request = request
                    .header("content-type", "application/json")
                    .body(raw[RAW.len()..].to_owned());
            }
            Some(body) => request = request.json(&body),
            None => {}
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

pub(crate) struct World {
    harness: Harness,
    _data: tempfile::TempDir,
    up: Up,
    client: Client,
}

/// A GET the table expects refused.
fn refused_get(
    rule: &'static str,
    token: &'static str,
    path: impl Into<String>,
    status: u16,
    code: &'static str,
) -> Refused {
    Refused {
        method: "GET",
        body: None,
        ..refused(rule, Some(token), path, Value::Null, status, code)
    }
}

impl World {
    /// The courier takes their run out; returns once the manifest says it departed.
    async fn courier_departs(&self, run: &str) {
        let (status, body) = self
            .client
            .post(&format!("/v1/runs/{run}/depart"), COURIER, json!({}))
            .await;
        assert_eq!(status, 202, "{body}");
        self.until(
            "run departed",
            |b| b["state"] == "departed",
            &format!("/v1/runs/{run}/manifest"),
            COURIER,
        )
        .await;
    }
}

impl World {
    pub(crate) async fn start() -> World {
        World::start_with(&[]).await
    }

    /// A world whose `lifeline up` takes these extra arguments.
    pub(crate) async fn start_with(extra: &[&str]) -> World {
        let harness = Harness::start().await;
        let seeds = lifeline_seeds::Seeds::embedded().expect("seeds");
        harness
            .publish(&seeds.events(time::OffsetDateTime::now_utc()))
            .await;
        let data = tempfile::tempdir().expect("tempdir");
        let up = Up::start_with_args(
            &harness,
            data.path(),
            &[
                &["--access", &workspace_path("deploy/access.example.toml")][..],
                extra,
            ]
            .concat(),
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

    /// Sends every request of the table and checks each answer (status and error code) and
    /// that nothing was appended; reports every broken rule by name, not just the first.
    async fn refuses(&self, table: Vec<Refused>) {
        let mut broken = Vec::new();
        for case in &table {
            let before = self.harness.head().await;
            let (status, body) = self
                .client
                .call(
                    case.method,
                    &case.path,
                    case.token,
                    case.body.clone(),
                    case.key,
                )
                .await;
            let after = self.harness.head().await;
            let code = body["error"]["code"].as_str().unwrap_or("");
            if status != case.status
                || code != case.code
                || !body["error"]["message"].is_string()
                || after != before
            {
                broken.push(format!(
                    "{}: expected {} {}, got {status} {body} ({} appended)",
                    case.rule,
                    case.status,
                    case.code,
                    after - before
                ));
            }
        }
        assert!(
            broken.is_empty(),
            "{} of {} rules broken:\n{}",
            broken.len(),
            table.len(),
            broken.join("\n")
        );
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
    std::path::Path::new(&manifest_dir())
        .join("../..")
        .join(relative)
        .display()
        .to_string()
}

fn veg_order() -> Value {
    json!({"household": HOUSEHOLD, "partner": "yonghui", "lines": [{"item": "veg-pack", "quantity": 1}]})
}

impl World {
    /// Orders for `households`, picked and brought to the checkpoint in one arrival.
    async fn arrive_together(&self, households: &[&str]) -> Vec<String> {
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
        orders
    }

    /// Orders for `households`, picked, brought to the checkpoint: returns the run dispatch
    /// planned for them (one tricycle has room for all) and the order ids.
    async fn run_for(&self, households: &[&str]) -> (String, Vec<String>) {
        let world = self;
        let orders = self.arrive_together(households).await;
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

/// The package directory of the checkout running the test: cargo sets it at run time, and
/// the compile-time value may name another clone that built the same binary.
fn manifest_dir() -> std::ffi::OsString {
    std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into())
}
