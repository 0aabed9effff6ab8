//! What an operator fears, against real processes: readiness that tells the truth while
//! the consumers are behind, a nats-server killed and restarted under a running `lifeline
//! up` taking orders (readiness off while it is gone, consumers resuming promptly once it
//! is back, no 500, every accepted order once, projections equal to a replay), and
//! SIGTERM during the outage still stopping the process in bounded time, and commands on a
//! replica that is behind deciding only once it has caught up (or refusing with 503), and
//! a full data disk turning readiness off until space returns, then recovering by itself.

mod common;

use std::time::{Duration, Instant};

use common::*;
use lifeline_events::{Event, Priority};
use lifeline_testkit::eventually;
use serde_json::Value;

async fn readyz(up: &Up) -> Option<(u16, Value)> {
    let (status, body) = up.get("/readyz").await?;
    Some((status, serde_json::from_str(&body).unwrap_or_default()))
}

fn orders(count: usize, prefix: &str) -> Vec<lifeline_events::Envelope> {
    (0..count)
        .map(|n| {
            order(
                &format!("{prefix}{n}"),
                n,
                n % 16 + 1,
                "yonghui",
                &[("veg-pack", 1)],
                Priority::Routine,
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_is_off_while_a_consumer_is_behind_the_head() {
    let harness = Harness::start().await;
    let seeds = lifeline_seeds::Seeds::embedded().expect("seeds");
    harness
        .publish(&seeds.events(time::OffsetDateTime::now_utc()))
        .await;
    harness.publish(&orders(10_000, "r")).await;
    let head = harness.head().await;
    let data = tempfile::tempdir().expect("tempdir");
    let up = Up::start_with_args(&harness, data.path(), &["--ready-max-lag", "10"]);
    let (mut saw_behind, mut ready) = (false, None);
    let deadline = Instant::now() + WAIT;
    while Instant::now() < deadline {
        if let Some((status, body)) = readyz(&up).await {
            let lags: Vec<u64> = body["consumers"]
                .as_object()
                .map(|consumers| {
                    consumers
                        .values()
                        .map(|c| c["lag_events"].as_u64().unwrap_or(u64::MAX))
                        .collect()
                })
                .unwrap_or_default();
            if status == 503 && lags.iter().any(|lag| *lag > 10) {
                saw_behind = true;
            }
            if status == 200 {
                assert!(
                    lags.iter().all(|lag| *lag <= 10),
                    "ready while behind: {body}"
                );
                ready = Some(body);
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let ready = ready.expect("ready once caught up");
    assert!(
        saw_behind,
        "readiness was off while the consumers caught up"
    );
    assert!(ready["stream_head"].as_u64() >= Some(head), "{ready}");
    up.kill();
}

/// A household registered at the end of a backlog: an order for it through a replica still
/// applying the backlog is taken once the registry has caught up (202) or refused for now
/// (503, retried), never refused from the stale registry (422 `unknown_household`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_on_a_replica_behind_never_decides_on_stale_state() {
    let harness = Harness::start().await;
    let seeds = lifeline_seeds::Seeds::embedded().expect("seeds");
    let events = seeds.events(time::OffsetDateTime::now_utc());
    let mut late = events
        .iter()
        .find_map(|envelope| match &envelope.event {
            Event::HouseholdRegistered(household) if household.community.as_str() == "tianlun" => {
                Some(household.clone())
            }
            _ => None,
        })
        .expect("a seeded Tianlun household");
    harness.publish(&events).await;
    harness.publish(&orders(4_000, "r")).await;
    late.household = "late-household".into();
    harness
        .publish(&[system(Event::HouseholdRegistered(late))])
        .await;
    let data = tempfile::tempdir().expect("tempdir");
    let access = std::path::Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("cargo"))
        .join("../../deploy/access.example.toml");
    let up = Up::start_with_args(
        &harness,
        data.path(),
        &["--access", access.to_str().expect("utf-8")],
    );
    let http = reqwest::Client::new();
    let order = serde_json::json!({"household": "late-household", "partner": "yonghui", "lines": [{"item": "veg-pack", "quantity": 1}]});
    let (mut was_behind, mut refused_for_now) = (false, 0);
    let deadline = Instant::now() + WAIT;
    loop {
        assert!(Instant::now() < deadline, "the order was never taken");
        if readyz(&up).await.is_some_and(|(status, _)| status == 503) {
            was_behind = true;
        }
        let Ok(response) = http
            .post(format!("{}/v1/orders", up.http))
            .bearer_auth("dev-staff-tianlun")
            .json(&order)
            .send()
            .await
        else {
            continue;
        };
        let status = response.status().as_u16();
        let retry_after = response.headers().contains_key("retry-after");
        let body = response.text().await.unwrap_or_default();
        match status {
            202 => break,
            503 => {
                assert!(retry_after, "503 without Retry-After: {body}");
                refused_for_now += 1;
            }
            _ => panic!("decided on a registry still behind the stream: {status} {body}"),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    eprintln!("taken after {refused_for_now} refusals for now");
    assert!(
        was_behind,
        "the first command reached the replica while it was behind"
    );
    up.kill();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nats_restart_turns_readiness_off_and_the_consumers_resume_promptly() {
    let mut harness = Harness::start().await;
    let seeds = lifeline_seeds::Seeds::embedded().expect("seeds");
    harness
        .publish(&seeds.events(time::OffsetDateTime::now_utc()))
        .await;
    let data = tempfile::tempdir().expect("tempdir");
    let access = std::path::Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("cargo"))
        .join("../../deploy/access.example.toml");
    let up = Up::start_with_args(
        &harness,
        data.path(),
        &["--access", access.to_str().expect("utf-8")],
    );
    up.wait_ready().await;

    // Orders keep arriving through the API the whole time (each with its own key).
    let (stop_load, load_stopped) = tokio::sync::watch::channel(false);
    let base = up.http.clone();
    let load = tokio::spawn(async move {
        let http = reqwest::Client::new();
        let order = serde_json::json!({"household": "tianlun-b07-u8-0301", "partner": "yonghui", "lines": [{"item": "veg-pack", "quantity": 1}]});
        let mut answers: Vec<(u16, Option<String>)> = Vec::new();
        let mut n = 0;
        while !*load_stopped.borrow() {
            n += 1;
            let sent = http
                .post(format!("{base}/v1/orders"))
                .bearer_auth("dev-staff-tianlun")
                .header("Idempotency-Key", format!("restart-{n}"))
                .json(&order)
                .timeout(Duration::from_secs(10))
                .send()
                .await;
            if let Ok(response) = sent {
                let status = response.status().as_u16();
                let body: Value = response.json().await.unwrap_or_default();
                answers.push((status, body["order"].as_str().map(str::to_owned)));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        answers
    });
    tokio::time::sleep(Duration::from_millis(500)).await;

    harness.server.kill();
    let down = eventually(WAIT, || async {
        readyz(&up)
            .await
            .is_some_and(|(status, body)| status == 503 && body["nats_connected"] == false)
    })
    .await;
    assert!(down, "readiness is off while NATS is gone");

    harness.server.restart();
    let back = Instant::now();
    // A new event after the restart, and how long until every consumer has applied it.
    let client = lifeline_bus::connect(harness.server.url(), "test", &Default::default())
        .await
        .expect("reconnect");
    let publisher = lifeline_bus::Publisher::new(
        lifeline_bus::async_nats::jetstream::new(client.clone()),
        "test",
    );
    publisher
        .publish(&orders(1, "after-restart")[0], None)
        .await
        .expect("publish after the restart");
    let head = lifeline_bus::stream_head(
        &lifeline_bus::async_nats::jetstream::new(client),
        lifeline_events::EVENT_STREAM,
    )
    .await
    .expect("head");
    let resumed = eventually(Duration::from_secs(30), || async {
        readyz(&up).await.is_some_and(|(status, body)| {
            status == 200
                && body["consumers"].as_object().is_some_and(|consumers| {
                    consumers
                        .values()
                        .all(|c| c["position"].as_u64() >= Some(head))
                })
        })
    })
    .await;
    let took = back.elapsed();
    eprintln!("consumers resumed {took:?} after nats-server came back");
    assert!(resumed, "the consumers resumed after the restart");
    assert!(
        took < Duration::from_secs(10),
        "resumed within seconds, not tens of seconds: {took:?}"
    );

    // Under load through the restart: never a 500, and every order answered 202 is in the
    // stream once (checked below, with the projections, once NATS is back).
    tokio::time::sleep(Duration::from_millis(500)).await;
    let _ = stop_load.send(true);
    let answers = load.await.expect("load task");
    let server_errors: Vec<u16> = answers
        .iter()
        .map(|(status, _)| *status)
        .filter(|status| *status >= 500 && *status != 503)
        .collect();
    assert!(server_errors.is_empty(), "{server_errors:?}");
    let accepted: Vec<String> = answers
        .iter()
        .filter(|(status, _)| *status == 202)
        .filter_map(|(_, order)| order.clone())
        .collect();
    let refused = answers.iter().filter(|(status, _)| *status == 503).count();
    eprintln!(
        "{} orders sent through the restart: {} accepted, {refused} refused for now (503)",
        answers.len(),
        accepted.len()
    );
    assert!(!accepted.is_empty(), "orders were taken");

    // SIGTERM while NATS is gone again: the process still stops, in bounded time.
    harness.server.kill();
    let stopping = Instant::now();
    let code = up.terminate();
    let took = stopping.elapsed();
    eprintln!("stopped {took:?} after SIGTERM during a NATS outage (exit {code})");
    assert!(
        took < Duration::from_secs(12),
        "SIGTERM during an outage stops the process: {took:?}"
    );
    // The audit: what was committed stays committed and equals a replay.
    harness.server.restart();
    assert_placed_once(&harness.jetstream, &accepted).await;
    assert_projections_equal_replay(harness.server.url(), data.path());
}

/// The data directory on a small filesystem that fills up under load: commands answer 503
/// (never 500), `/readyz` says which store cannot write, and once space returns the stores
/// write again by themselves, readiness comes back, and every order answered 202 is there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_data_disk_turns_readiness_off_and_recovers_when_space_returns() {
    let Some(disk) = Tmpfs::mount(256) else {
        eprintln!("SKIPPED: cannot mount a tmpfs (not root)");
        return;
    };
    let harness = Harness::start().await;
    let seeds = lifeline_seeds::Seeds::embedded().expect("seeds");
    harness
        .publish(&seeds.events(time::OffsetDateTime::now_utc()))
        .await;
    let access = std::path::Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("cargo"))
        .join("../../deploy/access.example.toml");
    let logs = tempfile::tempdir().expect("tempdir");
    // Small memtables, so the stores need fresh disk after hundreds of orders, not after
    // the thousands their preallocated logs hold by default.
    let up = Up::start_logging_to(
        &harness,
        &disk.path().join("data"),
        logs.path(),
        &["--access", access.to_str().expect("utf-8")],
        &[("LIFELINE_STORE_MEMTABLE_MB", "1")],
    );
    up.wait_ready().await;
    let http = reqwest::Client::new();
    let order = serde_json::json!({"household": "tianlun-b07-u8-0301", "partner": "yonghui", "lines": [{"item": "veg-pack", "quantity": 1}]});
    let mut accepted = Vec::new();
    let mut place = async |n: usize| -> u16 {
        let Ok(response) = http
            .post(format!("{}/v1/orders", up.http))
            .bearer_auth("dev-staff-tianlun")
            .header("Idempotency-Key", format!("disk-{n}"))
            .json(&order)
            .send()
            .await
        else {
            return 0;
        };
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap_or_default();
        assert_ne!(status, 500, "a full disk is not an internal error: {body}");
        if status == 202 {
            accepted.push(body["order"].as_str().expect("order id").to_owned());
        }
        status
    };
    assert_eq!(place(0).await, 202);

    let filler = disk.fill();
    let mut unready = None;
    let mut n = 1;
    while unready.is_none() && n < 2_000 {
        place(n).await;
        n += 1;
        if let Some((503, body)) = readyz(&up).await
            && body["stores"]
                .as_object()
                .is_some_and(|stores| stores.values().any(|s| s["writable"] == false))
        {
            unready = Some(body);
        }
    }
    let unready = unready.expect("a store ran out of space and readiness said so");
    eprintln!("readiness while full: {}", unready["stores"]);
    let refused = place(n).await;
    assert!(refused == 503 || refused == 202, "{refused}");

    std::fs::remove_file(&filler).expect("space returns");
    let freed = Instant::now();
    let back = eventually(WAIT, || async {
        readyz(&up).await.is_some_and(|(status, _)| status == 200)
    })
    .await;
    assert!(back, "readiness came back once space returned");
    eprintln!("ready {:?} after space returned", freed.elapsed());
    assert_eq!(place(n + 1).await, 202, "commands are taken again");
    for order in &accepted {
        let found = eventually(WAIT, || async {
            http.get(format!("{}/v1/orders/{order}", up.http))
                .bearer_auth("dev-operator")
                .send()
                .await
                .is_ok_and(|r| r.status() == 200)
        })
        .await;
        assert!(found, "order {order}, answered 202, is in the projection");
    }
    eprintln!(
        "{} orders accepted around the outage, all applied",
        accepted.len()
    );
    up.kill();
    assert_placed_once(&harness.jetstream, &accepted).await;
    assert_projections_equal_replay(harness.server.url(), &disk.path().join("data"));
}
