//! A three-node JetStream cluster on loopback with R3 streams, `lifeline up` given the seed
//! list, orders arriving through the API, and the stream leader killed -9: no request is
//! answered 500 (a 503 with `Retry-After` at most), every order answered 202 is applied,
//! and the consumers resume within seconds of the kill (measured and printed). Afterwards a
//! replay without `--replicas` leaves the R3 stream at R3, and one asking for fewer is
//! refused.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use lifeline_bus::async_nats::jetstream;
use lifeline_testkit::{NatsCluster, eventually};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn losing_the_stream_leader_costs_seconds_and_no_order() {
    let mut cluster = NatsCluster::start();
    let urls = cluster.urls();
    seed_cluster(&urls).await;
    let client = lifeline_bus::connect(&urls, "test", &Default::default())
        .await
        .expect("connect");
    let leader = stream_leader(&jetstream::new(client))
        .await
        .expect("the stream has a leader");

    let data = tempfile::tempdir().expect("tempdir");
    let access = std::path::Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("cargo"))
        .join("../../deploy/access.example.toml");
    let up = Up::start_at(
        &urls,
        data.path(),
        data.path(),
        &["--access", access.to_str().expect("utf-8")],
        &[],
    );
    up.wait_ready().await;

    let http = reqwest::Client::new();
    let order = serde_json::json!({"household": "tianlun-b07-u8-0301", "partner": "yonghui", "lines": [{"item": "veg-pack", "quantity": 1}]});
    let mut accepted: Vec<String> = Vec::new();
    let mut refused = 0;
    let mut killed_at = None;
    let mut first_after_kill = None;
    let mut resumed = None;
    let started = Instant::now();
    let mut n = 0;
    while started.elapsed() < Duration::from_secs(25) {
        if killed_at.is_none() && started.elapsed() > Duration::from_secs(2) {
            cluster.kill(&leader);
            killed_at = Some(Instant::now());
        }
        n += 1;
        let response = http
            .post(format!("{}/v1/orders", up.http))
            .bearer_auth("dev-staff-tianlun")
            .header("Idempotency-Key", format!("cluster-{n}"))
            .json(&order)
            .timeout(Duration::from_secs(10))
            .send()
            .await;
        let Ok(response) = response else { continue };
        let status = response.status().as_u16();
        let retry_after = response.headers().contains_key("retry-after");
        let body: serde_json::Value = response.json().await.unwrap_or_default();
        match status {
            202 => {
                let id = body["order"].as_str().expect("id").to_owned();
                if let Some(killed) = killed_at
                    && first_after_kill.is_none()
                {
                    first_after_kill = Some(killed.elapsed());
                    // How long until the consumers have applied it: their failover.
                    let applied = eventually(WAIT, || async {
                        http.get(format!("{}/v1/orders/{id}", up.http))
                            .bearer_auth("dev-operator")
                            .send()
                            .await
                            .is_ok_and(|r| r.status() == 200)
                    })
                    .await;
                    assert!(applied, "the first order after the kill is applied");
                    resumed = Some(killed.elapsed());
                }
                accepted.push(id);
            }
            503 => {
                assert!(retry_after, "503 without Retry-After: {body}");
                refused += 1;
            }
            _ => panic!("during a leader failover: {status} {body}"),
        }
        if first_after_kill.is_some() && started.elapsed() > Duration::from_secs(8) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let taken_again = first_after_kill.expect("orders were taken again after the kill");
    let resumed = resumed.expect("consumers resumed");
    eprintln!(
        "stream leader {leader} killed: first order taken again after {taken_again:?}, \
         applied by the consumers after {resumed:?}; {} accepted, {refused} refused for \
         now (503)",
        accepted.len()
    );
    for order in &accepted {
        let found = eventually(WAIT, || async {
            http.get(format!("{}/v1/orders/{order}", up.http))
                .bearer_auth("dev-operator")
                .send()
                .await
                .is_ok_and(|r| r.status() == 200)
        })
        .await;
        assert!(found, "order {order}, answered 202, is applied");
    }
    assert!(
        resumed < Duration::from_secs(15),
        "commands and consumers resumed within seconds of losing the leader: {resumed:?}"
    );
    let client = lifeline_bus::connect(&urls, "test", &Default::default())
        .await
        .expect("connect");
    let new_leader = stream_leader(&jetstream::new(client)).await;
    assert!(
        new_leader.is_some() && new_leader.as_deref() != Some(leader.as_str()),
        "a new leader: {new_leader:?}"
    );
    let client = lifeline_bus::connect(&urls, "test", &Default::default())
        .await
        .expect("connect");
    let jetstream = jetstream::new(client);
    // Orders answered 202 are applied by delivery; the other consumers (and what dispatch
    // publishes after them) may still be on their way. The audit waits for all of them.
    up.wait_caught_up(&jetstream).await;
    up.kill();
    assert_placed_once(&jetstream, &accepted).await;
    assert_projections_equal_replay(&urls, data.path());

    let replay = |extra: &[&str]| {
        Command::new(LIFELINE)
            .args(["replay", "delivery", "--nats-url", &urls])
            .args(extra)
            .arg("--data-dir")
            .arg(data.path())
            .output()
            .expect("lifeline replay")
    };
    let replicas = || async {
        let client = lifeline_bus::connect(&urls, "test", &Default::default())
            .await
            .expect("connect");
        let mut stream = jetstream::new(client)
            .get_stream(lifeline_events::EVENT_STREAM)
            .await
            .expect("stream");
        stream.info().await.expect("info").config.num_replicas
    };
    let output = replay(&[]);
    assert!(
        output.status.success(),
        "replay on the cluster: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(replicas().await, 3, "a replay without --replicas keeps R3");
    let output = replay(&["--replicas", "1"]);
    let said = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        !output.status.success() && said.contains("--allow-fewer-replicas"),
        "lowering the replicas is refused with a clear error: {said}"
    );
    assert_eq!(replicas().await, 3);
}
