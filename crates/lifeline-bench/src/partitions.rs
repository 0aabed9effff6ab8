//! The bench's partition rows: a day of both seed communities on one node, then `lifeline
//! up` catching up its stream from nothing serving every partition, serving each of two
//! partitions (Huangtugang is partition 0, Tianlun 1), and both partition replicas at once
//! on the same cores. A partition replica reads the whole stream and applies its own
//! communities' events in delivery, dispatch, campaigns and the feed (registry and
//! inventory stay whole): what it saves is what a city's deployment gains per replica.

use lifeline_events::EVENT_STREAM;

use crate::report::{Figure, Ratio};
use crate::{Report, consumers, process};

pub async fn rows(binary: &std::path::Path, scale: u32, report: &mut Report) -> anyhow::Result<()> {
    let server = lifeline_testkit::NatsServer::start();
    let day = process::play_day_with(
        binary,
        server.url(),
        scale,
        None,
        &["--community", "all"],
        &[],
    )?;
    let js = crate::connect(server.url()).await?;
    let head = lifeline_bus::stream_head(&js, EVENT_STREAM).await?;
    println!(
        "city day {scale}x (both communities): {} orders, {head} events, {:.1} s",
        day.orders, day.seconds
    );
    let label = format!("partitions: city day {scale}x (2 communities):");
    let whole = consumers::up_catch_up_with(binary, server.url(), head, &[]).await?;
    let whole_name = format!("{label} lifeline up, every partition, to ready");
    report
        .figures
        .push(Figure::new(&whole_name, head, whole.seconds_to_ready));
    let mut slowest: f64 = 0.0;
    for (partition, community) in [("0", "huangtugang"), ("1", "tianlun")] {
        let args = ["--partitions", "2", "--partition", partition];
        let one = consumers::up_catch_up_with(binary, server.url(), head, &args).await?;
        println!(
            "partition {partition} of 2 ({community}): caught up {head} events in {:.1} s, peak RSS {:.0} MiB",
            one.seconds_to_ready, one.peak_rss_mib
        );
        report.figures.push(Figure::new(
            format!("{label} lifeline up, partition {partition} of 2 ({community}), to ready"),
            head,
            one.seconds_to_ready,
        ));
        report.ratios.push(Ratio {
            name: format!("{label} partition {partition} of 2 / every partition, catch-up rate"),
            value: whole.seconds_to_ready / one.seconds_to_ready.max(1e-9),
        });
        slowest = slowest.max(one.seconds_to_ready);
    }
    // Both at once, sharing this machine's cores (on two machines each would run as alone).
    let (zero, one) = tokio::join!(
        consumers::up_catch_up_with(
            binary,
            server.url(),
            head,
            &["--partitions", "2", "--partition", "0"]
        ),
        consumers::up_catch_up_with(
            binary,
            server.url(),
            head,
            &["--partitions", "2", "--partition", "1"]
        ),
    );
    let together = zero?.seconds_to_ready.max(one?.seconds_to_ready);
    report.figures.push(Figure::new(
        format!("{label} both partition replicas at once, same cores, to ready"),
        head,
        together,
    ));
    report.ratios.push(Ratio {
        name: format!(
            "{label} stream rate, slowest partition replica alone / one replica of everything"
        ),
        value: whole.seconds_to_ready / slowest.max(1e-9),
    });
    Ok(())
}
