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
    assert!(
        eventually(WAIT, || async {
            up.get("/readyz")
                .await
                .is_some_and(|(status, _)| status == 200)
        })
        .await,
        "lifeline up became ready"
    );
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
        let store = open_store(Kind::Delivery, &data.path().join("delivery"));
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
    let swapped = open_store(Kind::Delivery, &data.path().join("delivery"));
    assert_eq!(swapped.digest().expect("digest"), live_digest);
    assert!(
        !data.path().join("delivery.replay").exists(),
        "the fresh directory was swapped in"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_plays_a_small_lockdown_day_to_the_end() {
    let harness = Harness::start().await;
    let data = tempfile::tempdir().expect("tempdir");
    let output = tokio::task::spawn_blocking({
        let url = harness.server.url().to_owned();
        let data = data.path().to_owned();
        move || {
            Command::new(LIFELINE)
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
}
