//! The `lifeline` binary's contract: `up` serves health, readiness and metrics and stops
//! cleanly on SIGTERM; `replay` rebuilds a projection equal to the live one; `demo` plays a
//! day to the end.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use lifeline_events::Priority;
use lifeline_testkit::eventually;

const LIFELINE: &str = env!("CARGO_BIN_EXE_lifeline");

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

struct Up {
    child: Child,
    http: String,
}

impl Up {
    fn start(harness: &Harness, data_dir: &std::path::Path) -> Up {
        let address = format!("127.0.0.1:{}", free_port());
        let child = Command::new(LIFELINE)
            .args(["up", "--nats-url", harness.server.url(), "--http", &address])
            .arg("--data-dir")
            .arg(data_dir)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start lifeline up");
        Up {
            child,
            http: format!("http://{address}"),
        }
    }

    async fn get(&self, path: &str) -> Option<(u16, String)> {
        let response = reqwest::get(format!("{}{path}", self.http)).await.ok()?;
        let status = response.status().as_u16();
        Some((status, response.text().await.ok()?))
    }

    /// SIGTERM, then the exit code.
    fn terminate(mut self) -> i32 {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status.code().unwrap_or(-1);
            }
            assert!(
                Instant::now() < deadline,
                "lifeline up did not stop on SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Up {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

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
