//! Consumer rates on a day's stream: each consumer's replay into a fresh store (no
//! publishes), the four core consumers replaying at once, and `lifeline up` catching up
//! from nothing as an operator would start it (time to ready, peak memory, lag after).

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use lifeline_bus::async_nats::jetstream;
use lifeline_projection::DriverConfig;

use crate::process::Watched;
use crate::report::Figure;

/// Replays `name` from the start of the stream into a fresh store; returns the seconds.
async fn replay_one(js: &jetstream::Context, name: &str) -> anyhow::Result<f64> {
    let directory = tempfile::tempdir()?;
    let consumer = lifeline_readmodel::consumer(name).with_context(|| format!("no {name}"))?;
    let store = consumer.open_store(directory.path())?;
    let started = Instant::now();
    consumer
        .projection(Arc::clone(&store), js.clone(), DriverConfig::default())
        .replay()
        .await?;
    Ok(started.elapsed().as_secs_f64())
}

/// Each consumer's replay alone, then the four core consumers (registry, inventory,
/// delivery, dispatch) at once.
pub async fn replays(
    js: &jetstream::Context,
    head: u64,
    label: &str,
) -> anyhow::Result<Vec<Figure>> {
    let mut figures = Vec::new();
    for consumer in lifeline_readmodel::consumers() {
        let name = consumer.name();
        let seconds = replay_one(js, name).await?;
        figures.push(Figure::new(format!("{label} replay {name}"), head, seconds));
    }
    let started = Instant::now();
    let together = ["registry", "inventory", "delivery", "dispatch"]
        .into_iter()
        .map(|name| {
            let js = js.clone();
            tokio::spawn(async move { replay_one(&js, name).await })
        })
        .collect::<Vec<_>>();
    for replay in together {
        replay.await??;
    }
    figures.push(Figure::new(
        format!("{label} replay registry+inventory+delivery+dispatch at once"),
        head,
        started.elapsed().as_secs_f64(),
    ));
    Ok(figures)
}

/// What `lifeline up` did when started on a stream it had never read.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CatchUp {
    pub events: u64,
    pub seconds_to_ready: f64,
    pub peak_rss_mib: f64,
    /// `lifeline_consumer_lag_seconds` per consumer once ready (it should say 0).
    pub lag_seconds_after: Vec<(String, f64)>,
}

/// Starts `lifeline up` on a fresh data dir against the stream, times until `/readyz`
/// says every consumer is at the head, reads the lag gauges, and stops it.
pub async fn up_catch_up(binary: &Path, nats_url: &str, head: u64) -> anyhow::Result<CatchUp> {
    up_catch_up_with(binary, nats_url, head, &[]).await
}

/// [`up_catch_up`] with extra arguments to `lifeline up` (the partitions it serves, say).
pub async fn up_catch_up_with(
    binary: &Path,
    nats_url: &str,
    head: u64,
    extra: &[&str],
) -> anyhow::Result<CatchUp> {
    let data = tempfile::tempdir()?;
    let port = free_port()?;
    let http = format!("127.0.0.1:{port}");
    let started = Instant::now();
    let mut up = Watched::spawn(
        Command::new(binary)
            .args(["up", "--nats-url", nats_url, "--http", &http, "--data-dir"])
            .arg(data.path())
            .args(["--ready-max-lag", "0"])
            .args(extra)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    )?;
    let client = reqwest::Client::new();
    let base = format!("http://{http}");
    loop {
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(3600),
            "lifeline up did not catch up within an hour"
        );
        if let Ok(Some(status)) = up.child.try_wait() {
            anyhow::bail!("lifeline up exited while catching up: {status}");
        }
        let ready = client.get(format!("{base}/readyz")).send().await;
        if ready.is_ok_and(|response| response.status().is_success()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let seconds_to_ready = started.elapsed().as_secs_f64();
    // Give the lag gauges one refresh after the last batch.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let metrics = client
        .get(format!("{base}/metrics"))
        .send()
        .await?
        .text()
        .await?;
    let lag_seconds_after = metrics
        .lines()
        .filter(|line| line.starts_with("lifeline_consumer_lag_seconds{"))
        .filter_map(|line| {
            let consumer = line.split("consumer=\"").nth(1)?.split('"').next()?;
            let value = line.rsplit(' ').next()?.parse().ok()?;
            Some((consumer.to_owned(), value))
        })
        .collect();
    let peak_rss_mib = up.peak_mib();
    up.stop();
    Ok(CatchUp {
        events: head,
        seconds_to_ready,
        peak_rss_mib,
        lag_seconds_after,
    })
}

pub fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}
