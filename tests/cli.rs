//! The `lifeline` binary's contract: `up` serves health, readiness and metrics and stops
//! cleanly on SIGTERM; `replay` rebuilds a projection equal to the live one; `demo` plays a
//! day to the end.

mod common;

use std::process::Command;

use common::*;
use lifeline_events::Priority;
use lifeline_testkit::eventually;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_serves_health_readiness_metrics_and_replay_matches_the_live_projection() {
    let harness = Harness::start().await;
    let data = tempfile::tempdir().expect("tempdir");
    let up = Up::start(&harness, data.path());
    up.wait_ready().await;
    assert_eq!(up.get("/healthz").await.expect("healthz").0, 200);

    harness
        .publish(&[
            stock("yonghui", "veg-pack", 5),
            order("r1", 1, 1, "yonghui", &[("veg-pack", 2)], Priority::Routine),
            order("r2", 2, 1, "yonghui", &[("veg-pack", 1)], Priority::Urgent),
        ])
        .await;
    let head = harness.head().await;
    let caught_up = eventually(WAIT, || async {
        let Some((_, body)) = up.get("/readyz").await else {
            return false;
        };
        let json: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        ["inventory", "delivery", "dispatch"]
            .iter()
            .all(|name| json["consumers"][name]["position"].as_u64() == Some(head))
    })
    .await;
    assert!(caught_up, "every consumer reached the stream head");
    let (status, metrics) = up.get("/metrics").await.expect("metrics");
    assert_eq!(status, 200);
    assert!(
        metrics.contains(&format!(
            "lifeline_consumer_position{{consumer=\"delivery\"}} {head}"
        )),
        "{metrics}"
    );
    assert!(metrics.contains(
        "lifeline_consumer_events_applied_total{consumer=\"inventory\",type=\"order.placed.v1\"} 2"
    ));

    assert_eq!(up.terminate(), 0, "SIGTERM is a clean stop");

    let live_digest = {
        let store = open_store(DELIVERY, &data.path().join("delivery"));
        store.digest().expect("digest")
    };
    let output = Command::new(LIFELINE)
        .args(["replay", "delivery", "--nats-url", harness.server.url()])
        .arg("--data-dir")
        .arg(data.path())
        .output()
        .expect("run replay");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains(&live_digest),
        "replay digest equals the live one: {stdout} vs {live_digest}"
    );
    let swapped = open_store(DELIVERY, &data.path().join("delivery"));
    assert_eq!(swapped.digest().expect("digest"), live_digest);
    assert!(
        !data.path().join("delivery.replay").exists(),
        "the fresh directory was swapped in"
    );
}

/// The demo runs from a directory that is not a checkout (the seed data is inside the
/// binary), and with its output piped, as in CI or a file, carries no ANSI escape codes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_plays_a_small_lockdown_day_to_the_end() {
    let harness = Harness::start().await;
    let data = tempfile::tempdir().expect("tempdir");
    let elsewhere = tempfile::tempdir().expect("tempdir");
    let output = tokio::task::spawn_blocking({
        let url = harness.server.url().to_owned();
        let data = data.path().to_owned();
        let elsewhere = elsewhere.path().to_owned();
        move || {
            Command::new(LIFELINE)
                .current_dir(&elsewhere)
                .env_remove("LIFELINE_SEEDS_DIR")
                .env_remove("NO_COLOR")
                // Slices of 20 households: the melon is placed in eight.
                .env("LIFELINE_CAMPAIGN_SLICE", "20")
                .args([
                    "demo",
                    "--households",
                    "150",
                    "--timeout-secs",
                    "120",
                    "--nats-url",
                    &url,
                ])
                .arg("--data-dir")
                .arg(&data)
                .output()
                .expect("run demo")
        }
    })
    .await
    .expect("join");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "demo failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("every order reached a final stage"),
        "{stdout}"
    );
    assert!(stdout.contains("delivered"), "{stdout}");
    assert!(stdout.contains("tricycle runs"), "{stdout}");
    // Every melon is ordered, slice after slice, and none is left on the way.
    let melons = stdout
        .lines()
        .skip_while(|line| !line.starts_with("melon campaign"))
        .find(|line| line.trim_start().starts_with("total"))
        .unwrap_or_else(|| panic!("a melon total row:\n{stdout}"));
    let figures: Vec<u64> = melons
        .split_whitespace()
        .skip(1)
        .map(|n| n.parse().expect("a count"))
        .collect();
    assert_eq!(figures.len(), 4, "{melons}");
    assert_eq!(figures[0], 150, "ordered: {melons}");
    assert_eq!(figures[3], 0, "on the way at the end of the day: {melons}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !stdout.contains('\u{1b}'),
        "escape codes on stdout:\n{stdout:?}"
    );
    assert!(
        !stderr.contains('\u{1b}'),
        "escape codes on stderr:\n{stderr:?}"
    );
}

/// `--log-format json`: every log line is one JSON object.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_are_one_object_a_line() {
    let harness = Harness::start().await;
    let data = tempfile::tempdir().expect("tempdir");
    let output = Command::new(LIFELINE)
        .args([
            "--log-format",
            "json",
            "seed",
            "--nats-url",
            harness.server.url(),
        ])
        .arg("--data-dir")
        .arg(data.path())
        .env("RUST_LOG", "debug")
        .output()
        .expect("run seed");
    assert!(output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    let lines: Vec<&str> = stderr.lines().filter(|line| !line.is_empty()).collect();
    assert!(!lines.is_empty(), "debug logging printed nothing");
    for line in lines {
        let object: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|error| panic!("not JSON ({error}): {line:?}"));
        assert!(object.is_object(), "{line}");
        assert!(object.get("level").is_some(), "{line}");
    }
}

/// `--seeds` naming a directory that does not exist fails at once and says which.
#[test]
fn a_missing_seed_directory_is_a_clear_error() {
    let output = Command::new(LIFELINE)
        .args(["seed", "--seeds", "/nonexistent/lifeline-seeds"])
        .args(["--nats-url", "nats://127.0.0.1:1"])
        .output()
        .expect("run seed");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("/nonexistent/lifeline-seeds") && stderr.contains("does not exist"),
        "{stderr}"
    );
}

/// `kill -9` of `lifeline up` in the middle of the stream, three times at three places, each
/// time restarted on the same data directory: every projection ends equal (by digest) to
/// one rebuilt from the stream by `lifeline replay`. Nothing lost, nothing applied twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_nine_mid_stream_repeatedly_then_restarted_equals_a_replay() {
    let harness = Harness::start().await;
    let seeds = lifeline_seeds::Seeds::embedded().expect("seeds");
    harness
        .publish(&seeds.events(time::OffsetDateTime::now_utc()))
        .await;
    let mut events = Vec::new();
    for n in 0..3000 {
        let id = format!("k{n}");
        events.push(order(
            &id,
            n,
            n % 16 + 1,
            "yonghui",
            &[("veg-pack", 1), ("eggs", 1)],
            Priority::ALL[n % 3],
        ));
        if n % 2 == 0 {
            events.push(pick(
                &id,
                "yonghui",
                vec![picked_in_full("veg-pack", 1), picked_short("eggs", 1, 0)],
            ));
        }
    }
    harness.publish(&events).await;
    let head = harness.head().await;

    let data = tempfile::tempdir().expect("tempdir");
    let position = |body: &str, consumer: &str| {
        serde_json::from_str::<serde_json::Value>(body).unwrap_or_default()["consumers"][consumer]["position"].as_u64().unwrap_or(0)
    };
    let mut kills = Vec::new();
    let mut committed = 0;
    for _ in 0..3 {
        let up = Up::start(&harness, data.path());
        let mut killed_at = 0;
        for _ in 0..5000 {
            if let Some((_, body)) = up.get("/readyz").await {
                let at = position(&body, "delivery");
                if at > committed {
                    killed_at = at;
                    break;
                }
            }
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
        up.kill();
        assert!(killed_at > 0, "the consumers had moved on");
        // What the crash left on disk: the kill must land before the stream head, or this
        // test would only show that a finished consumer restarts.
        committed = open_store(DELIVERY, &data.path().join("delivery"))
            .position()
            .expect("position");
        kills.push(committed);
        if committed >= head {
            break;
        }
    }
    eprintln!("killed -9 with delivery committed at {kills:?} of {head}");
    assert!(
        kills[0] < head,
        "the first kill landed mid-stream: {kills:?} of {head}"
    );

    let up = Up::start(&harness, data.path());
    assert!(
        eventually(WAIT, || async {
            let Some((_, body)) = up.get("/readyz").await else {
                return false;
            };
            lifeline_readmodel::consumers()
                .iter()
                .all(|c| position(&body, c.name()) == head)
        })
        .await,
        "the restarted consumers caught up"
    );
    assert_eq!(up.terminate(), 0);
    assert_eq!(harness.head().await, head, "nothing new was published");
    assert_projections_equal_replay(harness.server.url(), data.path());
}

/// `lifeline seed` publishes the registry once: a second run stores nothing new.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_publishes_the_registry_once() {
    let harness = Harness::start().await;
    let data = tempfile::tempdir().expect("tempdir");
    let run = || {
        Command::new(LIFELINE)
            .args(["seed", "--nats-url", harness.server.url()])
            .arg("--data-dir")
            .arg(data.path())
            .output()
            .expect("run seed")
    };
    let first = run();
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert!(String::from_utf8_lossy(&first.stdout).contains("seeded 6120 households"));
    let head = harness.head().await;
    assert!(head > 6120);
    let second = run();
    assert!(
        String::from_utf8_lossy(&second.stdout).contains(": 0 new events"),
        "{}",
        String::from_utf8_lossy(&second.stdout)
    );
    assert_eq!(harness.head().await, head);
}
