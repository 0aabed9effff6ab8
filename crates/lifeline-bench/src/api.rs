//! `POST /v1/orders` under an open-loop load: requests leave on a fixed schedule whatever
//! the answers, and each latency counts from when the request was due, so a server that
//! falls behind shows it (no coordinated omission). Against a real `lifeline up` over a
//! socket, seeded with the embedded data, as staff of Tianlun Jincheng.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use serde::Serialize;

use crate::consumers::free_port;
use crate::process::Watched;

const TOKEN: &str = "bench-staff-token";

/// One rate's answers.
#[derive(Debug, Clone, Serialize)]
pub struct Load {
    pub rate_per_second: u32,
    pub seconds: f64,
    pub sent: u64,
    pub accepted: u64,
    /// 503 with Retry-After: past capacity, refused at once.
    pub refused: u64,
    pub other: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let at = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[at.min(sorted.len() - 1)]
}

/// Seeds, starts `lifeline up` and drives each rate for `seconds`; returns the loads and
/// the peak memory of `lifeline up` over all of them.
pub async fn drive(
    binary: &Path,
    nats_url: &str,
    rates: &[u32],
    seconds: f64,
) -> anyhow::Result<(Vec<Load>, f64)> {
    let data = tempfile::tempdir()?;
    let status = Command::new(binary)
        .args(["seed", "--nats-url", nats_url, "--data-dir"])
        .arg(data.path())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .status()
        .context("lifeline seed")?;
    anyhow::ensure!(status.success(), "lifeline seed failed: {status}");
    let access = data.path().join("access.toml");
    std::fs::write(
        &access,
        format!(
            "[[identity]]\nid = \"staff-bench\"\nrole = \"staff\"\ncommunity = \"tianlun\"\ntoken = \"{TOKEN}\"\n"
        ),
    )?;
    let http = format!("127.0.0.1:{}", free_port()?);
    let mut up = Watched::spawn(
        Command::new(binary)
            .args(["up", "--nats-url", nats_url, "--http", &http, "--access"])
            .arg(&access)
            .arg("--data-dir")
            .arg(data.path().join("data"))
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    )?;
    let base = format!("http://{http}");
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(1024)
        .build()?;
    let started = Instant::now();
    loop {
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(120),
            "lifeline up not ready"
        );
        let ready = client.get(format!("{base}/readyz")).send().await;
        if ready.is_ok_and(|response| response.status().is_success()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let households: Vec<String> = lifeline_seeds::Seeds::embedded()?
        .households
        .into_iter()
        .filter(|household| household.community == "tianlun")
        .map(|household| household.household)
        .collect();
    let mut loads = Vec::new();
    let mut next = 0usize;
    for &rate in rates {
        let interval = Duration::from_secs_f64(1.0 / f64::from(rate.max(1)));
        let count = (f64::from(rate) * seconds).round() as usize;
        let begin = Instant::now() + Duration::from_millis(50);
        let mut tasks = tokio::task::JoinSet::new();
        for n in 0..count {
            let due = begin + interval.mul_f64(n as f64);
            let household = households[next % households.len()].clone();
            next += 1;
            let request = client
                .post(format!("{base}/v1/orders"))
                .bearer_auth(TOKEN)
                .header("Idempotency-Key", format!("bench-{rate}-{n}"))
                .json(&serde_json::json!({
                    "household": household,
                    "partner": "yonghui",
                    "lines": [{"item": "masks", "quantity": 1}],
                }));
            tokio::time::sleep_until(due.into()).await;
            tasks.spawn(async move {
                let status = request.send().await.map(|r| r.status().as_u16()).ok();
                (status, due.elapsed().as_secs_f64() * 1000.0)
            });
        }
        let mut latencies = Vec::with_capacity(count);
        let (mut accepted, mut refused, mut other) = (0, 0, 0);
        while let Some(done) = tasks.join_next().await {
            let (status, ms) = done?;
            match status {
                Some(202) => accepted += 1,
                Some(503) => refused += 1,
                _ => other += 1,
            }
            latencies.push(ms);
        }
        latencies.sort_by(f64::total_cmp);
        loads.push(Load {
            rate_per_second: rate,
            seconds: begin.elapsed().as_secs_f64(),
            sent: count as u64,
            accepted,
            refused,
            other,
            p50_ms: percentile(&latencies, 0.50),
            p99_ms: percentile(&latencies, 0.99),
            max_ms: latencies.last().copied().unwrap_or(0.0),
        });
        // Let the consumers settle between rates.
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let peak = up.peak_mib();
    up.stop();
    Ok((loads, peak))
}
