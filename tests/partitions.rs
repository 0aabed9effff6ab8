//! Two `lifeline up` replicas each serving one of two partitions (`--partitions 2`):
//! Huangtugang is in partition 0, Tianlun in partition 1. Orders of both communities go
//! through the replica serving each; afterwards:
//! - a request for the other partition's community (by community, household, order or a
//!   command's body) is answered 421 `misdirected` with the partition that serves it, and
//!   appends nothing;
//! - each replica's partner feed copied exactly its own community's orders, and together
//!   every order once; each dispatcher planned its own community's arrived orders, once;
//! - each replica's projections equal a replay under the same partitions;
//! - a replica started on a store built for other partitions refuses to start.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::*;
use lifeline_events::{Event, Partitioning, partition_of};
use serde_json::{Value, json};

const PER_COMMUNITY: usize = 60;
const ARRIVING: usize = 20;

struct Replica {
    up: Up,
    community: &'static str,
    staff: &'static str,
}

async fn send(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    token: &str,
    body: Option<&Value>,
) -> (u16, Value, Option<String>) {
    let mut request = http.request(method, url).bearer_auth(token);
    if let Some(body) = body {
        request = request.json(body);
    }
    let response = request.send().await.expect("request");
    let status = response.status().as_u16();
    let partition = response
        .headers()
        .get("lifeline-partition")
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    (status, response.json().await.unwrap_or_default(), partition)
}

fn households_of(community: &str) -> Vec<String> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../seeds/households.json");
    let all: Vec<Value> =
        serde_json::from_str(&std::fs::read_to_string(path).expect("seeds")).expect("json");
    all.iter()
        .filter(|h| h["community"] == community)
        .filter_map(|h| h["household"].as_str().map(str::to_owned))
        .take(PER_COMMUNITY)
        .collect()
}

/// The replica's `lifeline_consumer_events_emitted_total{consumer="feed"}`.
async fn feed_copies(up: &Up) -> f64 {
    let (_, text) = up.get("/metrics").await.expect("metrics");
    text.lines()
        .find(|line| line.starts_with("lifeline_consumer_events_emitted_total{consumer=\"feed\"}"))
        .and_then(|line| line.split_whitespace().last())
        .and_then(|value| value.parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_serve_one_partition_each_and_send_the_rest_on() {
    assert_eq!(partition_of("huangtugang", 2), 0);
    assert_eq!(partition_of("tianlun", 2), 1);
    let harness = Harness::start().await;
    let url = harness.server.url().to_owned();
    let seeded = std::process::Command::new(LIFELINE)
        .args(["seed", "--nats-url", &url])
        .arg("--data-dir")
        .arg(harness.store_dir("seed"))
        .output()
        .expect("lifeline seed");
    assert!(seeded.status.success(), "{seeded:?}");

    let access =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/access.example.toml");
    let access = access.to_str().expect("utf-8").to_owned();
    let dirs = [harness.store_dir("p0"), harness.store_dir("p1")];
    for dir in &dirs {
        std::fs::create_dir_all(dir).expect("data dir");
    }
    let args = |partition: &'static str| ["--partitions", "2", "--partition", partition];
    let replicas = [
        Replica {
            up: Up::start_at(
                &url,
                &dirs[0],
                &dirs[0],
                &[&args("0")[..], &["--access", &access]].concat(),
                &[],
            ),
            community: "huangtugang",
            staff: "dev-staff-huangtugang",
        },
        Replica {
            up: Up::start_at(
                &url,
                &dirs[1],
                &dirs[1],
                &[&args("1")[..], &["--access", &access]].concat(),
                &[],
            ),
            community: "tianlun",
            staff: "dev-staff-tianlun",
        },
    ];
    for replica in &replicas {
        replica.up.wait_ready().await;
    }
    let http = reqwest::Client::new();
    let post = reqwest::Method::POST;
    let get = reqwest::Method::GET;

    // Orders of each community through the replica serving it.
    let mut orders: [Vec<String>; 2] = [Vec::new(), Vec::new()];
    for (p, replica) in replicas.iter().enumerate() {
        for household in households_of(replica.community) {
            let body = json!({"household": household, "partner": "yonghui", "lines": [{"item": "veg-pack", "quantity": 1}]});
            let (status, answer, _) = send(
                &http,
                post.clone(),
                format!("{}/v1/orders", replica.up.http),
                replica.staff,
                Some(&body),
            )
            .await;
            assert_eq!(status, 202, "{household}: {answer}");
            orders[p].push(answer["order"].as_str().expect("order").to_owned());
        }
    }

    // The other partition's community, however it is named: 421 with the partition that
    // serves it, and nothing appended.
    let head = harness.head().await;
    let tianlun_order = orders[1][0].clone();
    let tianlun_household = households_of("tianlun")[0].clone();
    let (p0, p1) = (&replicas[0].up.http, &replicas[1].up.http);
    let misdirected = [
        (
            post.clone(),
            format!("{p0}/v1/orders"),
            "dev-staff-tianlun",
            Some(
                json!({"household": tianlun_household, "partner": "yonghui", "lines": [{"item": "veg-pack", "quantity": 1}]}),
            ),
        ),
        (
            get.clone(),
            format!("{p0}/v1/orders/{tianlun_order}"),
            "dev-operator",
            None,
        ),
        (
            post.clone(),
            format!("{p0}/v1/orders/{tianlun_order}/cancel"),
            "dev-staff-tianlun",
            Some(json!({"reason": "wrong door"})),
        ),
        (
            post.clone(),
            format!("{p0}/v1/partners/yonghui/picks"),
            "dev-partner-yonghui",
            Some(
                json!({"order": tianlun_order, "lines": [{"item": "veg-pack", "ordered": 1, "outcome": "picked", "picked": 1}]}),
            ),
        ),
        (
            get.clone(),
            format!("{p0}/v1/communities/tianlun/summary"),
            "dev-operator",
            None,
        ),
        (
            get.clone(),
            format!("{p0}/v1/households/{tianlun_household}/orders"),
            "dev-operator",
            None,
        ),
        (
            post.clone(),
            format!("{p0}/v1/communities/tianlun/arrivals"),
            "dev-staff-tianlun",
            Some(json!({"partner": "yonghui", "orders": [tianlun_order]})),
        ),
        (
            get.clone(),
            format!("{p1}/v1/communities/huangtugang/ready"),
            "dev-operator",
            None,
        ),
        (
            get.clone(),
            format!("{p0}/v1/partners/yonghui/pick-sheet?community=tianlun"),
            "dev-partner-yonghui",
            None,
        ),
    ];
    for (method, url, token, body) in misdirected {
        let (status, answer, partition) =
            send(&http, method.clone(), url.clone(), token, body.as_ref()).await;
        assert_eq!(status, 421, "{method} {url}: {answer}");
        assert_eq!(answer["error"]["code"], "misdirected", "{url}");
        let expected = if url.contains("huangtugang") {
            "0"
        } else {
            "1"
        };
        assert_eq!(
            partition.as_deref(),
            Some(expected),
            "{url}: Lifeline-Partition"
        );
    }
    assert_eq!(
        harness.head().await,
        head,
        "a misdirected command appends nothing"
    );
    // The same reads through the replica that serves them.
    let (status, record, _) = send(
        &http,
        get.clone(),
        format!("{p1}/v1/orders/{tianlun_order}"),
        "dev-operator",
        None,
    )
    .await;
    assert_eq!(status, 200, "{record}");
    let (status, _, _) = send(
        &http,
        get.clone(),
        format!("{p1}/v1/communities/tianlun/summary"),
        "dev-operator",
        None,
    )
    .await;
    assert_eq!(status, 200);
    // A list across communities says what it covers.
    let stuck = http
        .get(format!("{p1}/v1/stuck"))
        .bearer_auth("dev-operator")
        .send()
        .await
        .expect("stuck");
    assert_eq!(stuck.status(), 200);
    assert_eq!(
        stuck
            .headers()
            .get("lifeline-partitions-served")
            .and_then(|v| v.to_str().ok()),
        Some("1 of 2")
    );

    // Every order picked, and the first of each community carried to its checkpoint, ten
    // to a vehicle, through the replica serving it.
    for (p, replica) in replicas.iter().enumerate() {
        for order in &orders[p] {
            let pick = json!({"order": order, "lines": [{"item": "veg-pack", "ordered": 1, "outcome": "picked", "picked": 1}]});
            let (status, answer, _) = send(
                &http,
                post.clone(),
                format!("{}/v1/partners/yonghui/picks", replica.up.http),
                "dev-partner-yonghui",
                Some(&pick),
            )
            .await;
            assert_eq!(status, 202, "pick {order}: {answer}");
        }
        for chunk in orders[p][..ARRIVING].chunks(10) {
            let body = json!({"partner": "yonghui", "orders": chunk});
            let url = format!(
                "{}/v1/communities/{}/arrivals",
                replica.up.http, replica.community
            );
            let (status, answer, _) =
                send(&http, post.clone(), url, replica.staff, Some(&body)).await;
            assert_eq!(status, 202, "arrival: {answer}");
        }
    }

    // A quiet partition's clock still moves: a Tianlun order a while later goes by
    // Huangtugang's replica, whose coverage is then read as of that order's time.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let late = json!({"household": households_of("tianlun")[1], "partner": "yonghui", "lines": [{"item": "veg-pack", "quantity": 1}]});
    let (status, answer, _) = send(
        &http,
        post.clone(),
        format!("{p1}/v1/orders"),
        "dev-staff-tianlun",
        Some(&late),
    )
    .await;
    assert_eq!(status, 202, "{answer}");
    let sequence = answer["stream_sequence"].as_u64().expect("sequence");
    let placed_at = envelopes(&harness)
        .await
        .into_iter()
        .find(|(s, _)| *s == sequence)
        .expect("in the stream")
        .1
        .time;
    let coverage: Value = http
        .get(format!("{p0}/v1/communities/huangtugang/coverage"))
        .bearer_auth("dev-operator")
        .header("Lifeline-Min-Sequence", sequence.to_string())
        .send()
        .await
        .expect("coverage")
        .json()
        .await
        .expect("json");
    let as_of = time::OffsetDateTime::parse(
        coverage["as_of"].as_str().expect("as_of"),
        &time::format_description::well_known::Rfc3339,
    )
    .expect("rfc3339");
    assert!(
        as_of >= placed_at - Duration::from_millis(1),
        "huangtugang's clock {as_of} is behind tianlun's order at {placed_at}"
    );

    // Each dispatcher plans its own community's arrived orders.
    let planned_all = lifeline_testkit::eventually(Duration::from_secs(30), || async {
        planned_orders(&harness).await.len() == 2 * ARRIVING
    })
    .await;
    for replica in &replicas {
        replica.up.wait_caught_up(&harness.jetstream).await;
    }
    let planned = planned_orders(&harness).await;
    assert!(
        planned_all,
        "{} of {} arrived orders planned",
        planned.len(),
        2 * ARRIVING
    );
    for (p, replica) in replicas.iter().enumerate() {
        for order in &orders[p][..ARRIVING] {
            assert_eq!(
                planned
                    .get(order)
                    .map(|(community, runs)| (community.as_str(), *runs)),
                Some((replica.community, 1)),
                "{order} planned once, in its community"
            );
        }
        // It says which partition it serves, for the PartitionUnserved alert.
        let (_, metrics) = replica.up.get("/metrics").await.expect("metrics");
        assert!(
            metrics.contains(&format!("lifeline_partition_served{{partition=\"{p}\"}} 1")),
            "partition {p}"
        );
        assert!(metrics.lines().any(|line| line == "lifeline_partitions 2"));
        // Its partner feed copied its own community's orders, and only those (Tianlun's
        // include the late one).
        assert_eq!(
            feed_copies(&replica.up).await,
            (PER_COMMUNITY + p) as f64,
            "feed copies on partition {p}"
        );
        let (status, record, _) = send(
            &http,
            get.clone(),
            format!("{}/v1/orders/{}", replica.up.http, orders[p][0]),
            "dev-operator",
            None,
        )
        .await;
        assert_eq!(
            (status, record["status"]["stage"].as_str()),
            (200, Some("on_run")),
            "{record}"
        );
    }
    let mut feed = harness
        .jetstream
        .get_stream(lifeline_events::PARTNER_FEED_STREAM)
        .await
        .expect("feed stream");
    let copies = feed.info().await.expect("feed info").state.messages;
    assert_eq!(
        copies,
        2 * PER_COMMUNITY as u64 + 1,
        "every order copied to its partner once"
    );

    // Each replica's projections equal a replay under its partitions.
    let [first, second] = replicas;
    for (p, replica) in [first, second].into_iter().enumerate() {
        assert_eq!(replica.up.terminate(), 0);
        let partition = p.to_string();
        let partitioning = Partitioning::new(2, Some(&[p as u32])).expect("partitioning");
        assert_projections_equal_replay_serving(
            &url,
            &dirs[p],
            &partitioning,
            &["--partitions", "2", "--partition", &partition],
        );
    }

    // Partition 0's stores, started for partition 1: refused, with what to do.
    let refused = std::process::Command::new(LIFELINE)
        .args([
            "up",
            "--nats-url",
            &url,
            "--http",
            "127.0.0.1:0",
            "--partitions",
            "2",
            "--partition",
            "1",
        ])
        .arg("--data-dir")
        .arg(&dirs[0])
        .output()
        .expect("lifeline up");
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(
        !refused.status.success(),
        "a store of other partitions is refused: {said}"
    );
    assert!(
        said.contains("holds partitions 0 of 2") && said.contains("lifeline replay"),
        "{said}"
    );
    assert!(
        !said.contains("another process"),
        "not blamed on a lock: {said}"
    );
}

/// Every order planned on a run: its run's community and how many runs it is on.
async fn planned_orders(harness: &Harness) -> HashMap<String, (String, usize)> {
    let mut planned = HashMap::<String, (String, usize)>::new();
    for (_, envelope) in envelopes(harness).await {
        if let Event::RunPlanned(run) = &envelope.event {
            for order in run.orders() {
                planned
                    .entry(order.to_string())
                    .or_insert_with(|| (run.community.to_string(), 0))
                    .1 += 1;
            }
        }
    }
    planned
}

/// A retry that went astray (to a replica of another partition) while the first attempt
/// was still in flight leaves the key as it was: the retry at the right replica publishes
/// the first attempt's event id, so the command cannot happen twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_misdirected_retry_keeps_the_first_attempts_key() {
    use lifeline_gateway::error::ApiError;
    let harness = Harness::start().await;
    let bucket = harness
        .jetstream
        .get_key_value(lifeline_bus::IDEMPOTENCY_BUCKET)
        .await
        .expect("bucket");
    let keys = lifeline_gateway::idempotency::Idempotency::new(bucket);
    let key = || Some("place-1".to_owned());
    // The first attempt, at the right replica: its answer does not come back.
    let mut first = None;
    let answer = keys
        .run("staff", key(), |id, _| {
            first = Some(id);
            async { Err::<(reqwest::StatusCode, Value), _>(ApiError::Unavailable) }
        })
        .await;
    assert!(matches!(answer, Err(ApiError::Unavailable)));
    // The retry lands on a replica of another partition.
    let answer = keys
        .run("staff", key(), |id, maybe_published| {
            assert_eq!((Some(id), maybe_published), (first, true));
            async {
                Err::<(reqwest::StatusCode, Value), _>(ApiError::Misdirected {
                    community: "tianlun".into(),
                    partition: 1,
                    count: 2,
                    served: "0".into(),
                })
            }
        })
        .await;
    assert!(matches!(answer, Err(ApiError::Misdirected { .. })));
    // The retry at the right replica: the first attempt's id, flagged as maybe published.
    let answer = keys
        .run("staff", key(), |id, maybe_published| {
            assert_eq!((Some(id), maybe_published), (first, true));
            async move { Ok((reqwest::StatusCode::ACCEPTED, json!({"order": id}))) }
        })
        .await
        .expect("answered");
    assert_eq!(answer.0, reqwest::StatusCode::ACCEPTED);
}

/// `lifeline partition` prints the map a router needs, the same the replicas use.
#[test]
fn the_partition_command_prints_the_replicas_map() {
    let communities = ["tianlun", "huangtugang", "some-new-community"];
    let output = std::process::Command::new(LIFELINE)
        .args(["partition", "--partitions", "3"])
        .args(communities)
        .output()
        .expect("lifeline partition");
    assert!(output.status.success(), "{output:?}");
    let expected: String = communities
        .iter()
        .map(|c| format!("{c} {}\n", partition_of(c, 3)))
        .collect();
    assert_eq!(String::from_utf8_lossy(&output.stdout), expected);
    let refused = std::process::Command::new(LIFELINE)
        .args(["partition", "--partitions", "0", "tianlun"])
        .output()
        .expect("lifeline partition");
    assert!(!refused.status.success());
}
