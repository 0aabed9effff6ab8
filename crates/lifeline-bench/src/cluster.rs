//! The bench's cluster rows: a three-node JetStream cluster on loopback (the test kit's),
//! streams at R3, measured in the same run as the single node's rows they are compared
//! with.

use std::time::{Duration, Instant};

use anyhow::Context;
use lifeline_bus::async_nats::jetstream;
use lifeline_bus::{StreamSettings, provision};
use lifeline_events::EVENT_STREAM;

use crate::report::Figure;
use crate::{Args, Report, consumers, process, raw_publish_replicated};

/// A three-node JetStream cluster on loopback (the test kit's), streams at R3: raw
/// publish, the 1x day end to end, and `lifeline up` catching up on that day's stream.
pub async fn rows(
    binary: &std::path::Path,
    args: &Args,
    payload: &bytes::Bytes,
    report: &mut Report,
) -> anyhow::Result<()> {
    let cluster = lifeline_testkit::NatsCluster::start();
    let urls = cluster.urls();
    // The cluster elects its JetStream meta leader a few seconds after start.
    let started = Instant::now();
    let js = loop {
        match connect_replicated(&urls).await {
            Ok(js) => break js,
            Err(_) if started.elapsed() < Duration::from_secs(60) => {
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(error) => return Err(error.context("the cluster never elected a leader")),
        }
    };
    report.figures.push(
        raw_publish_replicated(
            &js,
            args.events,
            payload,
            "cluster: raw jetstream publish (3 nodes, R3), default sync",
            3,
        )
        .await?,
    );
    js.delete_stream("BENCH_RAW").await?;
    let day = process::play_day_on(
        binary,
        &urls,
        1,
        args.households,
        &[("LIFELINE_REPLICAS", "3")],
    )?;
    let head = lifeline_bus::stream_head(&js, EVENT_STREAM).await?;
    println!(
        "cluster day 1x: {} orders, {head} events, {:.1} s, peak RSS {:.0} MiB",
        day.orders, day.seconds, day.peak_rss_mib
    );
    report.figures.push(Figure::new(
        "cluster: day 1x end to end (3 nodes, R3)",
        head,
        day.seconds,
    ));
    let catch_up = consumers::up_catch_up(binary, &urls, head).await?;
    report.figures.push(Figure::new(
        "cluster: day 1x: lifeline up from nothing to ready",
        head,
        catch_up.seconds_to_ready,
    ));
    Ok(())
}

/// [`crate::connect`], provisioning at R3.
async fn connect_replicated(urls: &str) -> anyhow::Result<jetstream::Context> {
    let client = lifeline_bus::connect(urls, "lifeline-bench", &Default::default())
        .await
        .context("connect")?;
    let js = jetstream::new(client);
    let settings = StreamSettings {
        replicas: Some(3),
        ..StreamSettings::default()
    };
    provision(&js, &settings)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(js)
}
