//! The audits that end the fault tests: projections equal a replay, and every accepted
//! order is in the stream exactly once.

use std::process::Command;

use lifeline_bus::async_nats::jetstream;
use lifeline_events::Event;

use super::{LIFELINE, envelopes_in};

/// The audit that ends a fault test, after `lifeline up` has stopped: every consumer's
/// store in `data_dir` equals a replay of the stream into a scratch directory (one digest
/// over state and position).
pub fn assert_projections_equal_replay(urls: &str, data_dir: &std::path::Path) {
    assert_projections_equal_replay_serving(
        urls,
        data_dir,
        &lifeline_events::Partitioning::whole(),
        &[],
    );
}

/// [`assert_projections_equal_replay`] for a replica serving `partitioning` (started with
/// `partition_args`, which the replays get too).
pub fn assert_projections_equal_replay_serving(
    urls: &str,
    data_dir: &std::path::Path,
    partitioning: &lifeline_events::Partitioning,
    partition_args: &[&str],
) {
    for consumer in lifeline_readmodel::consumers() {
        let consumer = consumer.serving(partitioning);
        let kind = consumer.name();
        let live = consumer
            .open_store(&data_dir.join(kind))
            .expect("open the live store")
            .digest()
            .expect("digest");
        let scratch = tempfile::tempdir().expect("tempdir");
        let output = Command::new(LIFELINE)
            .args(["replay", kind, "--nats-url", urls])
            .args(partition_args)
            .arg("--data-dir")
            .arg(scratch.path())
            .output()
            .expect("lifeline replay");
        let text = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(
            output.status.success(),
            "replay {kind}: {text}{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let replayed = text
            .split("digest ")
            .nth(1)
            .and_then(|rest| rest.split(';').next())
            .expect("replay prints a digest")
            .trim()
            .to_owned();
        assert_eq!(
            live, replayed,
            "{kind}: the live projection equals a replay"
        );
    }
}

/// The other half of the audit: every order answered 202 is in the stream exactly once.
pub async fn assert_placed_once(jetstream: &jetstream::Context, accepted: &[String]) {
    let mut placed = std::collections::HashMap::<String, usize>::new();
    for (_, envelope) in envelopes_in(jetstream).await {
        if let Event::OrderPlaced(order) = envelope.event {
            *placed.entry(order.order.to_string()).or_default() += 1;
        }
    }
    for order in accepted {
        assert_eq!(
            placed.get(order).copied(),
            Some(1),
            "order {order}, answered 202, is in the stream exactly once"
        );
    }
}
