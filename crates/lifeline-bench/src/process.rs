//! Child processes the bench times: `lifeline demo`, `lifeline up`, the Postgres peer.
//! Each is watched for its peak resident memory (VmHWM from /proc, sampled until exit).

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;

/// Peak resident memory of a process in KiB, as far as /proc tells, 0 once it is gone.
fn hwm_kib(pid: u32) -> u64 {
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return 0;
    };
    status
        .lines()
        .find(|line| line.starts_with("VmHWM:"))
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|kib| kib.parse().ok())
        .unwrap_or(0)
}

/// A running child and the highest peak memory seen so far.
pub struct Watched {
    pub child: Child,
    peak_kib: Arc<AtomicU64>,
}

impl Watched {
    pub fn spawn(command: &mut Command) -> anyhow::Result<Watched> {
        let child = command
            .spawn()
            .with_context(|| format!("cannot start {command:?}"))?;
        let pid = child.id();
        let peak_kib = Arc::new(AtomicU64::new(0));
        let peak = Arc::clone(&peak_kib);
        std::thread::spawn(move || {
            loop {
                let now = hwm_kib(pid);
                if now == 0 && !Path::new(&format!("/proc/{pid}")).exists() {
                    return;
                }
                peak.fetch_max(now, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        Ok(Watched { child, peak_kib })
    }

    pub fn peak_mib(&self) -> f64 {
        self.peak_kib.load(Ordering::Relaxed) as f64 / 1024.0
    }

    /// SIGTERM (a clean stop), then waits.
    pub fn stop(&mut self) {
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Watched {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// What one `lifeline demo` day took.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DayRun {
    pub scale: u32,
    pub seconds: f64,
    /// Seconds from the registry loaded to each phase's end, as the demo logs them.
    pub phases: Vec<(String, f64)>,
    pub orders: u64,
    pub peak_rss_mib: f64,
}

/// Plays `lifeline demo --scale N` against `nats_url` and times it, start to exit.
pub fn play_day(
    binary: &Path,
    nats_url: &str,
    scale: u32,
    households: Option<usize>,
) -> anyhow::Result<DayRun> {
    play_day_on(binary, nats_url, scale, households, &[])
}

/// [`play_day`] with extra environment (`LIFELINE_REPLICAS=3` on a cluster).
pub fn play_day_on(
    binary: &Path,
    nats_url: &str,
    scale: u32,
    households: Option<usize>,
    envs: &[(&str, &str)],
) -> anyhow::Result<DayRun> {
    play_day_with(binary, nats_url, scale, households, &[], envs)
}

/// [`play_day_on`] with extra arguments to `lifeline demo` (`--community all`, say).
pub fn play_day_with(
    binary: &Path,
    nats_url: &str,
    scale: u32,
    households: Option<usize>,
    extra: &[&str],
    envs: &[(&str, &str)],
) -> anyhow::Result<DayRun> {
    let data = tempfile::tempdir()?;
    let log = data.path().join("demo.log");
    let out = std::fs::File::create(&log)?;
    let started = Instant::now();
    let mut watched = Watched::spawn(
        Command::new(binary)
            .args([
                "demo",
                "--scale",
                &scale.to_string(),
                "--timeout-secs",
                "7200",
            ])
            .args(households.map(|n| format!("--households={n}")))
            .args(extra)
            .args(["--nats-url", nats_url, "--data-dir"])
            .arg(data.path().join("data"))
            .env("RUST_LOG", "info,async_nats=warn")
            .envs(envs.iter().copied())
            .env_remove("LIFELINE_DATA_DIR")
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out),
    )?;
    let status = watched.child.wait()?;
    let seconds = started.elapsed().as_secs_f64();
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    anyhow::ensure!(
        status.success(),
        "lifeline demo --scale {scale} failed ({status}); its log:\n{}",
        text.lines().rev().take(30).collect::<Vec<_>>().join("\n")
    );
    let mut phases = Vec::new();
    let mut orders = 0;
    for line in text.lines() {
        if line.contains("demo phase done") {
            let field = |name: &str| {
                line.split(&format!("{name}="))
                    .nth(1)
                    .and_then(|rest| rest.split_whitespace().next())
                    .map(|value| value.trim_matches('"').to_owned())
            };
            if let (Some(phase), Some(at)) = (field("phase"), field("seconds")) {
                phases.push((phase, at.parse().unwrap_or(0.0)));
            }
        }
        if let Some(total) = line.trim().strip_prefix("total") {
            orders = total.trim().parse().unwrap_or(orders);
        }
    }
    Ok(DayRun {
        scale,
        seconds,
        phases,
        orders,
        peak_rss_mib: watched.peak_mib(),
    })
}

/// The Postgres peer for `orders` orders, `sync` on or off: (seconds to caught up, events).
pub fn peer(directory: &Path, orders: u64, sync: bool) -> anyhow::Result<(f64, u64)> {
    let output = Command::new("bash")
        .arg(directory.join("run.sh"))
        .arg(orders.to_string())
        .arg(if sync { "on" } else { "off" })
        .stderr(Stdio::inherit())
        .output()
        .context("cannot run the Postgres peer")?;
    let text = String::from_utf8_lossy(&output.stdout);
    let field = |name: &str| {
        text.split(&format!("{name}="))
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .map(str::to_owned)
    };
    let seconds = field("caught_up_secs")
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("the peer printed no caught_up_secs: {text}"))?;
    let events = field("events").and_then(|s| s.parse().ok()).unwrap_or(0);
    Ok((seconds, events))
}
