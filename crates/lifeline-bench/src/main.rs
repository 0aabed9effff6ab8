//! `lifeline-bench`: measures lifeline against the raw rates of its parts, in one run on one
//! machine, and prints the figures. Ratios hold on a noisy machine; single times do not.
//!
//! - raw JetStream: pipelined publish; an unfiltered ordered consumer; a filtered one
//!   selecting half of a stream with thousands of subjects;
//! - raw RocksDB: `WriteBatch` writes of 512 rows;
//! - lifeline: publishing envelopes with `Publisher::publish_all`; the inventory and
//!   delivery projections catching up from zero (read, decode, apply, commit); a replay.

use std::sync::Arc;
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
    /// Events per measurement.
    #[arg(long, default_value_t = 50_000)]
    events: usize,
    /// Use this NATS server instead of starting one.
    #[arg(long)]
    nats_url: Option<String>,
    /// Also report the size of this binary (the release `lifeline`, as shipped).
    #[arg(long)]
    binary: Option<std::path::PathBuf>,
}

struct Figure {
    name: &'static str,
    count: usize,
    seconds: f64,
}

impl Figure {
    fn rate(&self) -> f64 {
        self.count as f64 / self.seconds.max(1e-9)
    }
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
) -> anyhow::Result<Figure> {
    js.create_or_update_stream(stream::Config {
        name: "BENCH_RAW".into(),
        subjects: vec!["bench.raw.>".into()],
        storage: stream::StorageType::File,
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
    Ok(Figure {
        name: "raw jetstream publish (pipelined, msg ids)",
        count: events,
        seconds: started.elapsed().as_secs_f64(),
    })
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
        "raw ordered consumer, whole stream"
    };
    Ok(Figure {
        name,
        count,
        seconds: started.elapsed().as_secs_f64(),
    })
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
    Ok(Figure {
        name: "raw rocksdb WriteBatch of 512 rows",
        count: events,
        seconds: started.elapsed().as_secs_f64(),
    })
}

async fn projection_catch_up(
    js: &jetstream::Context,
    which: &'static str,
    head: u64,
) -> anyhow::Result<(Figure, f64)> {
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
    let seconds = started.elapsed().as_secs_f64();
    let name = if which == "inventory" {
        "lifeline inventory projection, catch-up"
    } else {
        "lifeline delivery projection, catch-up"
    };
    Ok((
        Figure {
            name,
            count: head as usize,
            seconds,
        },
        seconds,
    ))
}

fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let server = match &args.nats_url {
        Some(_) => None,
        None => Some(lifeline_testkit::NatsServer::start()),
    };
    let url = args.nats_url.clone().unwrap_or_else(|| {
        server
            .as_ref()
            .map(|s| s.url().to_owned())
            .unwrap_or_default()
    });
    let client = lifeline_bus::connect(&url, "lifeline-bench", &Default::default())
        .await
        .context("connect")?;
    let js = jetstream::new(client);
    provision(&js, &StreamSettings::default())
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;

    let sample = order_event(0).encode();
    let payload = bytes::Bytes::from(sample.clone());
    println!(
        "lifeline-bench: {} events of {} bytes, nats {url}",
        args.events,
        sample.len()
    );

    let raw_pub = raw_publish(&js, args.events, &payload).await?;
    let raw_all = raw_read(&js, None, args.events).await?;
    let raw_filtered = raw_read(&js, Some("bench.raw.a.>"), args.events / 2).await?;
    let raw_db = raw_rocksdb(args.events, &sample)?;

    let publisher = Publisher::new(js.clone(), "bench");
    let envelopes: Vec<Envelope> = (0..args.events).map(order_event).collect();
    let started = Instant::now();
    for chunk in envelopes.chunks(1024) {
        publisher.publish_all(chunk).await?;
    }
    let lifeline_pub = Figure {
        name: "lifeline Publisher::publish_all",
        count: args.events,
        seconds: started.elapsed().as_secs_f64(),
    };
    let head = lifeline_bus::stream_head(&js, EVENT_STREAM).await?;

    let (inventory, _) = projection_catch_up(&js, "inventory", head).await?;
    let (delivery, _) = projection_catch_up(&js, "delivery", head).await?;

    let directory = tempfile::tempdir()?;
    let delivery_consumer = lifeline_readmodel::consumer("delivery").context("delivery")?;
    let store = delivery_consumer.open_store(directory.path())?;
    let started = Instant::now();
    delivery_consumer
        .projection(Arc::clone(&store), js.clone(), DriverConfig::default())
        .replay()
        .await?;
    let replay = Figure {
        name: "lifeline delivery replay (no publishes)",
        count: head as usize,
        seconds: started.elapsed().as_secs_f64(),
    };

    println!();
    println!(
        "{:<56} {:>9} {:>9} {:>12}",
        "measurement", "events", "seconds", "events/s"
    );
    for figure in [
        &raw_pub,
        &raw_all,
        &raw_filtered,
        &raw_db,
        &lifeline_pub,
        &inventory,
        &delivery,
        &replay,
    ] {
        println!(
            "{:<56} {:>9} {:>9.3} {:>12.0}",
            figure.name,
            figure.count,
            figure.seconds,
            figure.rate()
        );
    }
    println!();
    println!("ratios (same run):");
    println!(
        "  filtered / unfiltered raw read            {:>6.3}",
        raw_filtered.rate() / raw_all.rate()
    );
    println!(
        "  lifeline publish / raw publish             {:>6.3}",
        lifeline_pub.rate() / raw_pub.rate()
    );
    println!(
        "  inventory catch-up / raw unfiltered read   {:>6.3}",
        inventory.rate() / raw_all.rate()
    );
    println!(
        "  delivery catch-up / raw unfiltered read    {:>6.3}",
        delivery.rate() / raw_all.rate()
    );
    println!(
        "  delivery catch-up / raw rocksdb write      {:>6.3}",
        delivery.rate() / raw_db.rate()
    );
    if let Some(rss) = peak_rss_mib() {
        println!("  peak resident memory of this process       {rss:>6.0} MiB");
    }
    if let Some(binary) = &args.binary {
        let bytes = std::fs::metadata(binary)
            .with_context(|| format!("cannot read {}", binary.display()))?
            .len();
        println!();
        println!(
            "release binary {}: {:.1} MB ({bytes} bytes)",
            binary.display(),
            bytes as f64 / 1e6
        );
    }
    Ok(())
}
