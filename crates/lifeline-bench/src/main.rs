//! `lifeline-bench`: lifeline against the raw rates of its parts and against a Postgres
//! peer, measured in one run on one machine, printed as a table and as JSON. Ratios hold on
//! a noisy machine; single times do not.
//!
//! - raw JetStream: pipelined publish (default sync, and `sync_interval: always`); an
//!   unfiltered ordered consumer; a filtered one selecting half of a stream;
//! - raw RocksDB: `WriteBatch` writes of 512 rows;
//! - a whole lockdown day (`lifeline demo --scale N`: every household orders, partners
//!   pick, vehicles arrive, tricycles ride) at each scale, its time and the factor to 1x;
//!   the same day with `sync_interval: always`;
//! - on each day's stream: every consumer's replay, the four core consumers at once, and
//!   `lifeline up` catching up from nothing (time, peak memory, lag gauges after);
//! - `POST /v1/orders` p50/p99 at fixed open-loop rates;
//! - the Postgres peer (`--peer DIR`) for the same order counts, sync commit on and off;
//! - a three-node JetStream cluster on loopback, streams R3: raw publish, the 1x day end
//!   to end and `lifeline up` catching up, next to the same rows on one node.

mod api;
mod cluster;
mod consumers;
mod partitions;
mod process;
mod report;

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use futures::StreamExt;
use lifeline_bus::async_nats::jetstream::{self, consumer, stream};
use lifeline_bus::{Publisher, StreamSettings, provision};
use lifeline_events::*;
use lifeline_projection::DriverConfig;

#[derive(Debug, Parser)]
#[command(
    about = "Throughput of lifeline against raw JetStream and RocksDB, measured in the same run"
)]
struct Args {
    /// Events per raw measurement.
    #[arg(long, default_value_t = 200_000)]
    events: usize,
    /// The `lifeline` binary the days and the API run (the release build, as shipped);
    /// by default the `lifeline` next to this program.
    #[arg(long)]
    binary: Option<PathBuf>,
    /// Households of the 1x day (all 3,314 by default; fewer for a quick run).
    #[arg(long)]
    households: Option<usize>,
    /// Day scales to play (1 = the seed's 3,314 Tianlun households).
    #[arg(long, value_delimiter = ',', default_value = "1,10")]
    scales: Vec<u32>,
    /// Largest scale also played with `sync_interval: always` (0: none).
    #[arg(long, default_value_t = 10)]
    durable_up_to: u32,
    /// Largest scale whose stream every consumer also replays (each replay reads the whole
    /// day again).
    #[arg(long, default_value_t = 10)]
    replays_up_to: u32,
    /// Open-loop `POST /v1/orders` rates, per second.
    #[arg(long, value_delimiter = ',', default_value = "500,1000,2000,3000,4000")]
    api_rates: Vec<u32>,
    /// Skip the API load.
    #[arg(long)]
    no_api: bool,
    /// Scale of the day of both communities the partition rows catch up (0: skip them).
    #[arg(long, default_value_t = 1)]
    partition_scale: u32,
    /// Skip the three-node cluster rows.
    #[arg(long)]
    no_cluster: bool,
    /// Seconds per API rate.
    #[arg(long, default_value_t = 4.0)]
    api_seconds: f64,
    /// The Postgres peer's directory (its run.sh), to run it on the same order counts.
    #[arg(long)]
    peer: Option<PathBuf>,
    /// Also write every figure here as JSON.
    #[arg(long)]
    json: Option<PathBuf>,
}

use report::{Figure, Ratio};

/// Everything one run measured.
#[derive(Debug, Default, serde::Serialize)]
struct Report {
    machine: String,
    figures: Vec<Figure>,
    ratios: Vec<Ratio>,
    days: Vec<process::DayRun>,
    durable_days: Vec<process::DayRun>,
    catch_ups: Vec<consumers::CatchUp>,
    api: Vec<api::Load>,
    api_peak_rss_mib: f64,
    /// (orders, sync commit on?, seconds, events)
    peer: Vec<(u64, bool, f64, u64)>,
}

fn order_event(n: usize) -> Envelope {
    let household = format!("tianlun-b{:02}-u1-{:04}", n % 16 + 1, n % 3314);
    Envelope::new(
        Event::OrderPlaced(OrderPlaced {
            order: format!("bench-{n}"),
            community: "tianlun".into(),
            building: format!("tianlun-b{:02}", n % 16 + 1),
            unit: format!("tianlun-b{:02}-u1", n % 16 + 1),
            household,
            partner: if n.is_multiple_of(2) {
                "yonghui"
            } else {
                "shuocheng"
            }
            .into(),
            lines: vec![
                OrderLine {
                    item: "veg-pack".into(),
                    quantity: 1,
                },
                OrderLine {
                    item: "fruit-pack".into(),
                    quantity: 1,
                },
            ],
            priority: Priority::Routine,
            weight_g: 9_000,
            on_behalf_by: None,
            campaign: None,
        }),
        EventMeta {
            time: time::OffsetDateTime::now_utc(),
            source: "bench".into(),
            actor: Actor::new(ActorKind::Resident, "bench"),
            correlation_id: new_event_id(),
            causation_id: None,
        },
    )
}

async fn raw_publish(
    js: &jetstream::Context,
    events: usize,
    payload: &bytes::Bytes,
    name: &str,
) -> anyhow::Result<Figure> {
    raw_publish_replicated(js, events, payload, name, 1).await
}

async fn raw_publish_replicated(
    js: &jetstream::Context,
    events: usize,
    payload: &bytes::Bytes,
    name: &str,
    replicas: usize,
) -> anyhow::Result<Figure> {
    js.create_or_update_stream(stream::Config {
        name: "BENCH_RAW".into(),
        subjects: vec!["bench.raw.>".into()],
        storage: stream::StorageType::File,
        num_replicas: replicas,
        ..Default::default()
    })
    .await?;
    let started = Instant::now();
    let mut acks = Vec::with_capacity(1024);
    for n in 0..events {
        let family = if n.is_multiple_of(2) { "a" } else { "b" };
        let mut headers = lifeline_bus::async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", format!("raw-{n}").as_str());
        acks.push(
            js.publish_with_headers(
                format!("bench.raw.{family}.{}", n % 2000),
                headers,
                payload.clone(),
            )
            .await?,
        );
        if acks.len() == 1024 {
            for ack in acks.drain(..) {
                ack.await?;
            }
        }
    }
    for ack in acks {
        ack.await?;
    }
    Ok(Figure::new(
        name,
        events as u64,
        started.elapsed().as_secs_f64(),
    ))
}

async fn raw_read(
    js: &jetstream::Context,
    filter: Option<&str>,
    expected: usize,
) -> anyhow::Result<Figure> {
    let handle = js.get_stream("BENCH_RAW").await?;
    let ordered = handle
        .create_consumer(consumer::pull::OrderedConfig {
            filter_subject: filter.unwrap_or_default().to_owned(),
            ..Default::default()
        })
        .await?;
    let started = Instant::now();
    let mut messages = ordered.messages().await?;
    let mut count = 0;
    while count < expected {
        let Some(message) = messages.next().await else {
            break;
        };
        message?;
        count += 1;
    }
    let name = if filter.is_some() {
        "raw ordered consumer, filter on half of 4,000 subjects"
    } else {
        "raw ordered consumer, whole stream (the raw read rate)"
    };
    Ok(Figure::new(
        name,
        count as u64,
        started.elapsed().as_secs_f64(),
    ))
}

fn raw_rocksdb(events: usize, row: &[u8]) -> anyhow::Result<Figure> {
    let directory = tempfile::tempdir()?;
    let mut options = rocksdb::Options::default();
    options.create_if_missing(true);
    options.set_compression_type(rocksdb::DBCompressionType::Lz4);
    let db = rocksdb::DB::open(&options, directory.path())?;
    let started = Instant::now();
    let mut written = 0;
    while written < events {
        let mut batch = rocksdb::WriteBatch::default();
        for n in written..(written + 512).min(events) {
            batch.put(format!("order/bench-{n}"), row);
        }
        written = (written + 512).min(events);
        db.write(batch)?;
    }
    Ok(Figure::new(
        "raw rocksdb WriteBatch of 512 rows",
        events as u64,
        started.elapsed().as_secs_f64(),
    ))
}

/// A projection catching up live from zero (read, decode, apply, commit, ack).
async fn projection_catch_up(
    js: &jetstream::Context,
    which: &'static str,
    head: u64,
    label: &str,
) -> anyhow::Result<Figure> {
    let directory = tempfile::tempdir()?;
    let (_stop, shutdown) = tokio::sync::watch::channel(false);
    let started = Instant::now();
    let consumer = lifeline_readmodel::consumer(which).context("a consumer")?;
    let projection = consumer.projection(
        consumer.open_store(directory.path())?,
        js.clone(),
        DriverConfig::default(),
    );
    let status = projection.status();
    tokio::spawn(projection.run(shutdown));
    while status.position.load(Ordering::Relaxed) < head {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Ok(Figure::new(
        format!("{label} {which} live catch-up"),
        head,
        started.elapsed().as_secs_f64(),
    ))
}

async fn connect(url: &str) -> anyhow::Result<jetstream::Context> {
    let client = lifeline_bus::connect(url, "lifeline-bench", &Default::default())
        .await
        .context("connect")?;
    let js = jetstream::new(client);
    provision(&js, &StreamSettings::default())
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(js)
}

const DURABLE: &str = "jetstream { sync_interval: always }\n";

fn find(figures: &[Figure], name: &str) -> Option<f64> {
    figures
        .iter()
        .find(|figure| figure.name == name)
        .map(Figure::rate)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = Args::parse();
    let binary = match args.binary.take() {
        Some(binary) => binary,
        None => std::env::current_exe()?
            .parent()
            .context("this program's directory")?
            .join("lifeline"),
    };
    anyhow::ensure!(
        binary.is_file(),
        "no lifeline binary at {} (build it, or pass --binary)",
        binary.display()
    );
    let mut report = Report {
        machine: format!(
            "{} cores, {}",
            std::thread::available_parallelism().map_or(0, |n| n.get()),
            std::fs::read_to_string("/proc/cpuinfo")
                .ok()
                .and_then(|info| info
                    .lines()
                    .find(|line| line.starts_with("model name"))
                    .and_then(|line| line.split(':').nth(1))
                    .map(|name| name.trim().to_owned()))
                .unwrap_or_default()
        ),
        ..Default::default()
    };
    let sample = order_event(0).encode();
    let payload = bytes::Bytes::from(sample.clone());
    println!(
        "lifeline-bench on {}: raw rows of {} events of {} bytes; days at {:?}",
        report.machine,
        args.events,
        sample.len(),
        args.scales
    );

    // Raw parts: JetStream with the default sync and with an fsync per message.
    {
        let server = lifeline_testkit::NatsServer::start();
        let js = connect(server.url()).await?;
        let raw = "raw jetstream publish (pipelined, msg ids), default sync";
        report
            .figures
            .push(raw_publish(&js, args.events, &payload, raw).await?);
        report.figures.push(raw_read(&js, None, args.events).await?);
        report
            .figures
            .push(raw_read(&js, Some("bench.raw.a.>"), args.events / 2).await?);
        report.figures.push(raw_rocksdb(args.events, &sample)?);
        let publisher = Publisher::new(js.clone(), "bench");
        let envelopes: Vec<Envelope> = (0..args.events).map(order_event).collect();
        let started = Instant::now();
        for chunk in envelopes.chunks(1024) {
            publisher.publish_all(chunk).await?;
        }
        report.figures.push(Figure::new(
            "lifeline Publisher::publish_all (order.placed)",
            args.events as u64,
            started.elapsed().as_secs_f64(),
        ));
        let head = lifeline_bus::stream_head(&js, EVENT_STREAM).await?;
        for which in ["inventory", "delivery"] {
            let label = "order.placed only:";
            report
                .figures
                .push(projection_catch_up(&js, which, head, label).await?);
        }
    }
    {
        let server = lifeline_testkit::NatsServer::start_with_config(DURABLE);
        let js = connect(server.url()).await?;
        let durable_events = (args.events / 10).max(1000);
        let name = "raw jetstream publish, sync_interval: always";
        report
            .figures
            .push(raw_publish(&js, durable_events, &payload, name).await?);
    }

    // Whole days, each on a fresh server, and what the consumers do with its stream.
    for &scale in &args.scales {
        let server = lifeline_testkit::NatsServer::start();
        let day = process::play_day(&binary, server.url(), scale, args.households)?;
        let js = connect(server.url()).await?;
        let head = lifeline_bus::stream_head(&js, EVENT_STREAM).await?;
        println!(
            "day {scale}x: {} orders, {head} events, {:.1} s, peak RSS {:.0} MiB",
            day.orders, day.seconds, day.peak_rss_mib
        );
        report.figures.push(Figure::new(
            format!("day {scale}x end to end (lifeline demo --scale {scale})"),
            head,
            day.seconds,
        ));
        report.days.push(day);
        let label = format!("day {scale}x:");
        if scale <= args.replays_up_to {
            for which in ["registry", "inventory", "delivery"] {
                report
                    .figures
                    .push(projection_catch_up(&js, which, head, &label).await?);
            }
            report
                .figures
                .extend(consumers::replays(&js, head, &label).await?);
        }
        let catch_up = consumers::up_catch_up(&binary, server.url(), head).await?;
        report.figures.push(Figure::new(
            format!("{label} lifeline up from nothing to ready"),
            head,
            catch_up.seconds_to_ready,
        ));
        println!(
            "day {scale}x: lifeline up caught up {head} events in {:.1} s, peak RSS {:.0} MiB, lag after {:?}",
            catch_up.seconds_to_ready, catch_up.peak_rss_mib, catch_up.lag_seconds_after
        );
        report.catch_ups.push(catch_up);
    }
    for &scale in args.scales.iter().filter(|s| **s <= args.durable_up_to) {
        let server = lifeline_testkit::NatsServer::start_with_config(DURABLE);
        let day = process::play_day(&binary, server.url(), scale, args.households)?;
        let js = connect(server.url()).await?;
        let head = lifeline_bus::stream_head(&js, EVENT_STREAM).await?;
        report.figures.push(Figure::new(
            format!("day {scale}x end to end, sync_interval: always"),
            head,
            day.seconds,
        ));
        report.durable_days.push(day);
    }

    if args.partition_scale > 0 {
        partitions::rows(&binary, args.partition_scale, &mut report).await?;
    }
    // The same rows on a three-node cluster, streams R3.
    if !args.no_cluster {
        cluster::rows(&binary, &args, &payload, &mut report).await?;
    }

    // The API under open-loop load.
    if !args.no_api && !args.api_rates.is_empty() {
        let server = lifeline_testkit::NatsServer::start();
        let (loads, peak) =
            api::drive(&binary, server.url(), &args.api_rates, args.api_seconds).await?;
        report.api = loads;
        report.api_peak_rss_mib = peak;
    }

    // The Postgres peer on the same order counts.
    if let Some(peer) = &args.peer {
        for day in &report.days {
            for sync in [true, false] {
                let (seconds, events) = process::peer(peer, day.orders, sync)?;
                report.peer.push((day.orders, sync, seconds, events));
            }
        }
    }

    ratios(&mut report);
    print(&report);
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_vec_pretty(&report)?)
            .with_context(|| format!("cannot write {}", path.display()))?;
        println!("\nJSON: {}", path.display());
    }
    let bytes = std::fs::metadata(&binary)
        .with_context(|| format!("cannot read {}", binary.display()))?
        .len();
    println!(
        "release binary {}: {:.1} MB",
        binary.display(),
        bytes as f64 / 1e6
    );
    Ok(())
}

fn ratios(report: &mut Report) {
    let figures = &report.figures;
    let raw_read = find(
        figures,
        "raw ordered consumer, whole stream (the raw read rate)",
    );
    let raw_pub = find(
        figures,
        "raw jetstream publish (pipelined, msg ids), default sync",
    );
    let raw_durable = find(figures, "raw jetstream publish, sync_interval: always");
    let mut ratios = std::mem::take(&mut report.ratios);
    if let (Some(durable), Some(default)) = (raw_durable, raw_pub) {
        ratios.push(Ratio {
            name: "raw publish: sync_interval always / default".into(),
            value: durable / default,
        });
    }
    if let Some(read) = raw_read {
        for figure in figures
            .iter()
            .filter(|f| f.name.contains("replay") || f.name.contains("catch-up"))
        {
            ratios.push(Ratio {
                name: format!("{} / raw read", figure.name),
                value: figure.rate() / read,
            });
        }
    }
    if let Some(first) = report.days.first() {
        for day in &report.days[1..] {
            ratios.push(Ratio {
                name: format!(
                    "day {}x time / day {}x time (linear: {})",
                    day.scale,
                    first.scale,
                    day.scale / first.scale.max(1)
                ),
                value: day.seconds / first.seconds,
            });
        }
    }
    for durable in &report.durable_days {
        if let Some(day) = report.days.iter().find(|d| d.scale == durable.scale) {
            ratios.push(Ratio {
                name: format!("day {}x time: sync_interval always / default", day.scale),
                value: durable.seconds / day.seconds,
            });
        }
    }
    // The cluster against one node, each as a rate (events per second).
    for (cluster, single) in [
        (
            "cluster: raw jetstream publish (3 nodes, R3), default sync",
            "raw jetstream publish (pipelined, msg ids), default sync",
        ),
        (
            "cluster: day 1x end to end (3 nodes, R3)",
            "day 1x end to end (lifeline demo --scale 1)",
        ),
        (
            "cluster: day 1x: lifeline up from nothing to ready",
            "day 1x: lifeline up from nothing to ready",
        ),
    ] {
        if let (Some(cluster_rate), Some(single_rate)) =
            (find(figures, cluster), find(figures, single))
        {
            ratios.push(Ratio {
                name: format!("{cluster} / one node"),
                value: cluster_rate / single_rate,
            });
        }
    }
    for (orders, sync, seconds, _) in &report.peer {
        let on = if *sync { "on" } else { "off" };
        if let Some(day) = report.days.iter().find(|d| d.orders == *orders) {
            let ours = if *sync {
                report
                    .durable_days
                    .iter()
                    .find(|d| d.scale == day.scale)
                    .map_or(day.seconds, |d| d.seconds)
            } else {
                day.seconds
            };
            ratios.push(Ratio {
                name: format!(
                    "day {}x: lifeline time / Postgres peer time (sync commit {on})",
                    day.scale
                ),
                value: ours / seconds,
            });
        }
    }
    report.ratios = ratios;
}

fn print(report: &Report) {
    println!();
    report::print_table(&report.figures);
    println!();
    println!("ratios (same run):");
    report::print_ratios(&report.ratios);
    println!();
    println!("days (phase ends, seconds after the registry was loaded):");
    for day in report.days.iter().chain(&report.durable_days) {
        let phases: Vec<String> = day
            .phases
            .iter()
            .map(|(phase, at)| format!("{phase} {at:.1}"))
            .collect();
        println!(
            "  {}x: {} orders, {:.1} s, peak RSS {:.0} MiB; {}",
            day.scale,
            day.orders,
            day.seconds,
            day.peak_rss_mib,
            phases.join(", ")
        );
    }
    for catch_up in &report.catch_ups {
        println!(
            "  lifeline up from nothing: {} events in {:.1} s, peak RSS {:.0} MiB, lag_seconds after: {:?}",
            catch_up.events,
            catch_up.seconds_to_ready,
            catch_up.peak_rss_mib,
            catch_up.lag_seconds_after
        );
    }
    if !report.api.is_empty() {
        println!();
        println!(
            "POST /v1/orders, open loop (latency from when each request was due; peak RSS of lifeline up {:.0} MiB):",
            report.api_peak_rss_mib
        );
        println!(
            "  {:>8} {:>7} {:>9} {:>8} {:>6} {:>9} {:>9} {:>9}",
            "rate/s", "sent", "accepted", "503", "other", "p50 ms", "p99 ms", "max ms"
        );
        for load in &report.api {
            println!(
                "  {:>8} {:>7} {:>9} {:>8} {:>6} {:>9.1} {:>9.1} {:>9.1}",
                load.rate_per_second,
                load.sent,
                load.accepted,
                load.refused,
                load.other,
                load.p50_ms,
                load.p99_ms,
                load.max_ms
            );
        }
    }
    if !report.peer.is_empty() {
        println!();
        println!("Postgres peer (../shared/peers/pg-peer), same order counts:");
        for (orders, sync, seconds, events) in &report.peer {
            println!(
                "  {orders} orders, sync commit {}: {seconds:.2} s, {events} events",
                if *sync { "on" } else { "off" }
            );
        }
    }
}
