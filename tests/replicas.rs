//! Two `lifeline up` replicas on a three-node JetStream cluster (R3 streams), a workload
//! of a couple of thousand orders through both, the stream leader killed, then one replica
//! killed -9 while both dispatchers are planning runs. Afterwards:
//! - every command answered 202 is in the stream once;
//! - every order is in the one stage its accepted commands put it in;
//! - no order is planned on two runs, and every arrived order is planned once;
//! - every projection of the surviving replica equals a replay;
//! - a retry through the other replica, with the same `Idempotency-Key`, gets the first
//!   answer, word for word.

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::*;
use futures::StreamExt;
use lifeline_bus::async_nats::jetstream;
use lifeline_testkit::NatsCluster;
use serde_json::{Value, json};

const ORDERS: usize = 2000;
/// Orders carried to the checkpoint while both dispatchers run (eight vehicles of ten: one
/// run for each of Tianlun's eight tricycles, so every one of them can be planned).
const ARRIVING: usize = 80;
const STAFF: &str = "dev-staff-tianlun";
const PARTNER: &str = "dev-partner-yonghui";

/// The two replicas' base URLs and whether each is still meant to be alive.
struct Replicas {
    http: reqwest::Client,
    bases: [String; 2],
    alive: [AtomicBool; 2],
}

impl Replicas {
    /// One command under its key, through replica `first`, or the other when `first` is
    /// dead or does not answer; a 503 is retried after a pause with the same key. Returns
    /// the final answer and the replica that gave it. Never a 500.
    async fn command(
        &self,
        first: usize,
        path: &str,
        token: &str,
        key: &str,
        body: &Value,
    ) -> (u16, Value, usize) {
        let deadline = Instant::now() + Duration::from_secs(90);
        let mut target = first;
        loop {
            assert!(Instant::now() < deadline, "{path} {key}: no answer in 90 s");
            if !self.alive[target].load(Ordering::SeqCst) {
                target = 1 - target;
            }
            let sent = self
                .http
                .post(format!("{}{path}", self.bases[target]))
                .bearer_auth(token)
                .header("Idempotency-Key", key)
                .json(body)
                .timeout(Duration::from_secs(15))
                .send()
                .await;
            let Ok(response) = sent else {
                target = 1 - target;
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            };
            let status = response.status().as_u16();
            let body: Value = response.json().await.unwrap_or_default();
            match status {
                503 => tokio::time::sleep(Duration::from_millis(200)).await,
                500..=599 => panic!("{path} {key}: {status} {body}"),
                _ => return (status, body, target),
            }
        }
    }

    async fn get(&self, replica: usize, path: &str) -> (u16, Value) {
        let response = self
            .http
            .get(format!("{}{path}", self.bases[replica]))
            .bearer_auth("dev-operator")
            .send()
            .await
            .expect("GET");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or_default())
    }
}

fn tianlun_households() -> Vec<String> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../seeds/households.json");
    let all: Vec<Value> =
        serde_json::from_str(&std::fs::read_to_string(path).expect("seeds")).expect("json");
    all.iter()
        .filter(|h| h["community"] == "tianlun")
        .filter_map(|h| h["household"].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_lose_the_stream_leader_and_one_replica_and_nothing_doubles() {
    let mut cluster = NatsCluster::start();
    let urls = cluster.urls();
    seed_cluster(&urls).await;
    let client = lifeline_bus::connect(&urls, "test", &Default::default())
        .await
        .expect("connect");
    let jetstream = jetstream::new(client);
    let leader = stream_leader(&jetstream)
        .await
        .expect("the stream has a leader");

    let access =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/access.example.toml");
    let access = access.to_str().expect("utf-8").to_owned();
    let dirs = [
        tempfile::tempdir().expect("tempdir"),
        tempfile::tempdir().expect("tempdir"),
    ];
    let mut ups: Vec<Option<Up>> = dirs
        .iter()
        .map(|dir| {
            Some(Up::start_at(
                &urls,
                dir.path(),
                dir.path(),
                &["--access", &access],
                &[],
            ))
        })
        .collect();
    for up in ups.iter().flatten() {
        up.wait_ready().await;
    }
    let replicas = Arc::new(Replicas {
        http: reqwest::Client::new(),
        bases: [0, 1].map(|n| ups[n].as_ref().expect("up").http.clone()),
        alive: [AtomicBool::new(true), AtomicBool::new(true)],
    });

    // Placements through both replicas, 16 at a time; the stream leader dies a third of
    // the way through.
    let households = tianlun_households();
    let order_of = {
        let households = households.clone();
        move |n: usize| json!({"household": households[n % households.len()], "partner": "yonghui", "lines": [{"item": "veg-pack", "quantity": 1}]})
    };
    let placed = Arc::new(AtomicUsize::new(0));
    let placing = {
        let (replicas, placed, order_of) =
            (Arc::clone(&replicas), Arc::clone(&placed), order_of.clone());
        tokio::spawn(async move {
            futures::stream::iter(0..ORDERS)
                .map(|n| {
                    let (replicas, placed) = (Arc::clone(&replicas), Arc::clone(&placed));
                    let body = order_of(n);
                    async move {
                        let answer = replicas
                            .command(n % 2, "/v1/orders", STAFF, &format!("place-{n}"), &body)
                            .await;
                        placed.fetch_add(1, Ordering::SeqCst);
                        (n, answer)
                    }
                })
                .buffer_unordered(16)
                .collect::<Vec<_>>()
                .await
        })
    };
    while placed.load(Ordering::SeqCst) < ORDERS / 3 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    cluster.kill(&leader);
    let started = Instant::now();
    let placements = placing.await.expect("placing");
    eprintln!(
        "{ORDERS} placements through two replicas, stream leader {leader} killed at a third: {:?} after the kill",
        started.elapsed()
    );
    let mut orders: Vec<(usize, String, Value)> = Vec::new();
    for (n, (status, body, _)) in placements {
        assert_eq!(status, 202, "place-{n}: {body}");
        orders.push((
            n,
            body["order"].as_str().expect("order id").to_owned(),
            body,
        ));
    }
    orders.sort_by_key(|(n, _, _)| *n);

    // Read-your-writes across replicas: an order placed through one replica, read through
    // the other with the answer's stream sequence as Lifeline-Min-Sequence, is there.
    for (n, order, first) in orders.iter().rev().take(20) {
        let through = 1 - n % 2;
        let sequence = first["stream_sequence"].as_u64().expect("stream_sequence");
        let response = replicas
            .http
            .get(format!("{}/v1/orders/{order}", replicas.bases[through]))
            .bearer_auth("dev-operator")
            .header("Lifeline-Min-Sequence", sequence.to_string())
            .send()
            .await
            .expect("GET");
        assert_eq!(response.status(), 200, "{order} through replica {through}");
    }

    // Every tenth order is cancelled through the other replica; the rest are picked: the
    // first hundred now, the others (16 at a time) while the vehicles arrive below.
    let settle = |replicas: Arc<Replicas>, batch: Vec<(usize, String)>| async move {
        let answers = futures::stream::iter(batch)
            .map(|(n, order)| {
                let replicas = Arc::clone(&replicas);
                async move {
                    if n % 10 == 9 {
                        let cancel = json!({"reason": "moved in with family"});
                        let path = format!("/v1/orders/{order}/cancel");
                        (n, replicas.command(1 - n % 2, &path, STAFF, &format!("cancel-{n}"), &cancel).await)
                    } else {
                        let pick = json!({"order": order, "lines": [{"item": "veg-pack", "ordered": 1, "outcome": "picked", "picked": 1}]});
                        (n, replicas.command(n % 2, "/v1/partners/yonghui/picks", PARTNER, &format!("pick-{n}"), &pick).await)
                    }
                }
            })
            .buffer_unordered(16)
            .collect::<Vec<_>>()
            .await;
        for (n, (status, body, _)) in &answers {
            assert_eq!(*status, 202, "order {n}: {body}");
        }
        answers.len()
    };
    let batch = |range: std::ops::Range<usize>| -> Vec<(usize, String)> {
        orders[range]
            .iter()
            .map(|(n, order, _)| (*n, order.clone()))
            .collect()
    };
    settle(Arc::clone(&replicas), batch(0..100)).await;
    let settling = tokio::spawn(settle(Arc::clone(&replicas), batch(100..ORDERS)));

    // The first picked orders reach the checkpoint ten to a vehicle, through both
    // replicas, and both dispatchers plan runs from them. Half-way, replica 0 is killed
    // -9, with picks in flight through it (their retries go to replica 1, same keys).
    let arriving: Vec<&String> = orders
        .iter()
        .filter(|(n, _, _)| n % 10 != 9)
        .map(|(_, order, _)| order)
        .take(ARRIVING)
        .collect();
    let mut arrivals: Vec<(String, Value)> = Vec::new();
    for (k, chunk) in arriving.chunks(10).enumerate() {
        if k == ARRIVING / 20 {
            assert!(
                !settling.is_finished(),
                "the kill lands while picks are in flight"
            );
            replicas.alive[0].store(false, Ordering::SeqCst);
            ups[0].take().expect("replica 0").kill();
        }
        let key = format!("arrival-{k}");
        let body = json!({"partner": "yonghui", "orders": chunk});
        let (status, answer, _) = replicas
            .command(
                k % 2,
                "/v1/communities/tianlun/arrivals",
                STAFF,
                &key,
                &body,
            )
            .await;
        assert_eq!(status, 202, "{key}: {answer}");
        arrivals.push((key, answer));
    }
    assert_eq!(settling.await.expect("picks"), ORDERS - 100);
    let survivor = ups[1].as_ref().expect("replica 1");
    survivor.wait_caught_up(&jetstream).await;

    let head_before_retries = stream_head_now(&jetstream).await;
    // Retries through the survivor, with the first keys: the first answers, word for word
    // (half of them were first answered by the replica that is now dead).
    for (n, _, first) in orders.iter().step_by(7) {
        let (status, again, _) = replicas
            .command(1, "/v1/orders", STAFF, &format!("place-{n}"), &order_of(*n))
            .await;
        assert_eq!(
            (status, &again),
            (202, first),
            "place-{n} retried through the other replica"
        );
    }
    for (key, first) in &arrivals {
        let k: usize = key.trim_start_matches("arrival-").parse().expect("k");
        let chunk: Vec<&String> = arriving.chunks(10).nth(k).expect("chunk").to_vec();
        let (status, again, _) = replicas
            .command(
                1,
                "/v1/communities/tianlun/arrivals",
                STAFF,
                key,
                &json!({"partner": "yonghui", "orders": chunk}),
            )
            .await;
        assert_eq!((status, &again), (202, first), "{key} retried");
    }
    assert_eq!(
        stream_head_now(&jetstream).await,
        head_before_retries,
        "the retries appended nothing"
    );

    // The stream: each accepted placement, pick, cancel and arrival once; no order on two
    // runs.
    let mut placed_in = HashMap::<String, usize>::new();
    let mut picks = HashMap::<String, usize>::new();
    let mut cancels = HashMap::<String, usize>::new();
    let mut planned = HashMap::<String, usize>::new();
    let mut arrived_events = 0;
    for (_, envelope) in envelopes_in(&jetstream).await {
        use lifeline_events::Event;
        match &envelope.event {
            Event::OrderPlaced(e) => *placed_in.entry(e.order.to_string()).or_default() += 1,
            Event::OrderPicked(e) => *picks.entry(e.order.to_string()).or_default() += 1,
            Event::OrderCancelled(e) => *cancels.entry(e.order.to_string()).or_default() += 1,
            Event::RunPlanned(run) => {
                for order in run.orders() {
                    *planned.entry(order.to_string()).or_default() += 1;
                }
            }
            Event::ArrivedAtCheckpoint(_) => arrived_events += 1,
            _ => {}
        }
    }
    assert_eq!(arrived_events, arrivals.len(), "each arrival once");
    let mut stages = HashMap::<String, usize>::new();
    for (n, order, _) in &orders {
        assert_eq!(placed_in.get(order), Some(&1), "{order} placed once");
        let (status, record) = replicas.get(1, &format!("/v1/orders/{order}")).await;
        assert_eq!(status, 200, "{order} on the survivor: {record}");
        let stage = record["status"]["stage"]
            .as_str()
            .expect("stage")
            .to_owned();
        let arrived = arriving.contains(&order);
        let expected: &[&str] = if n % 10 == 9 {
            assert_eq!(cancels.get(order), Some(&1), "{order} cancelled once");
            &["cancelled"]
        } else if arrived {
            assert_eq!(picks.get(order), Some(&1), "{order} picked once");
            &["on_run", "at_checkpoint"]
        } else {
            assert_eq!(picks.get(order), Some(&1), "{order} picked once");
            &["picked"]
        };
        assert!(
            expected.contains(&stage.as_str()),
            "{order}: {stage}, expected one of {expected:?}"
        );
        assert!(
            planned.get(order).copied().unwrap_or(0) <= 1,
            "{order} planned on {} runs",
            planned[order]
        );
        assert_eq!(
            stage == "on_run",
            planned.contains_key(order),
            "{order}: {stage} and planned {:?}",
            planned.get(order)
        );
        *stages.entry(stage).or_default() += 1;
    }
    eprintln!(
        "final stages on the surviving replica: {stages:?}; {} orders on runs, none twice",
        planned.len()
    );
    assert_eq!(
        planned.len(),
        ARRIVING,
        "every arrived order was planned, once"
    );

    let survivor = ups[1].take().expect("replica 1");
    assert_eq!(survivor.terminate(), 0);
    assert_projections_equal_replay(&urls, dirs[1].path());
}

async fn stream_head_now(jetstream: &jetstream::Context) -> u64 {
    lifeline_bus::stream_head(jetstream, lifeline_events::EVENT_STREAM)
        .await
        .expect("head")
}
