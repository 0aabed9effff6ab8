//! The melon, as the story tells it: staff start one broadcast, and the campaigns process
//! manager (`lifeline run campaigns`, killed -9 in the middle of its fan-out, its store
//! rebuilt by `lifeline replay`, and started again) places exactly one order for each of
//! Tianlun's 3,314 households: none missing, none twice.

mod common;

use std::collections::BTreeSet;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use lifeline_bus::EventReader;
use lifeline_domain::campaign::DEFAULT_SLICE;
use lifeline_events::{
    Actor, ActorKind, CampaignScope, CampaignStarted, EVENT_STREAM, Envelope, Event, EventMeta,
    OrderLine, new_event_id,
};

/// Starts `lifeline run campaigns` (its log named after `head`) and waits until it reads.
async fn run_campaigns(
    harness: &Harness,
    data: &std::path::Path,
    head: u64,
) -> std::process::Child {
    let log = std::fs::File::create(data.join(format!("campaigns-{head}.log"))).expect("log");
    let child = Command::new(LIFELINE)
        .args([
            "run",
            "campaigns",
            "--nats-url",
            harness.server.url(),
            "--http",
            "127.0.0.1:0",
        ])
        .arg("--data-dir")
        .arg(data)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start lifeline run campaigns");
    let log = data.join(format!("campaigns-{head}.log"));
    let caught_up = lifeline_testkit::eventually(WAIT, || async {
        std::fs::read_to_string(&log).is_ok_and(|text| text.contains("consumer reading"))
    })
    .await;
    assert!(caught_up, "lifeline run campaigns started");
    child
}

/// Every `order.placed` of `campaign` in the stream after `from`: (messages, distinct ids).
async fn campaign_orders(harness: &Harness, from: u64, campaign: &str) -> (usize, usize) {
    let head = harness.head().await;
    let mut reader = EventReader::open(&harness.jetstream, EVENT_STREAM, from, 1024)
        .await
        .expect("reader");
    let (mut messages, mut ids) = (0, BTreeSet::new());
    let mut at = from;
    while at < head {
        let batch = reader.next_batch().await.expect("open").expect("batch");
        for message in batch {
            at = at.max(message.sequence);
            let Ok(envelope) = Envelope::decode(&message.payload) else {
                continue;
            };
            if let Event::OrderPlaced(placed) = envelope.event
                && placed.campaign.as_deref() == Some(campaign)
            {
                messages += 1;
                ids.insert(placed.order);
            }
        }
    }
    (messages, ids.len())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_melon_for_every_household_exactly_once_through_a_kill_mid_fan_out() {
    let harness = Harness::start().await;
    let seeds = lifeline_seeds::Seeds::embedded().expect("seeds");
    let households = seeds
        .households
        .iter()
        .filter(|h| h.community == "tianlun")
        .count();
    assert_eq!(households, 3314, "the story's Tianlun Jincheng");
    harness
        .publish(&seeds.events(time::OffsetDateTime::now_utc()))
        .await;
    let data = tempfile::tempdir().expect("tempdir");
    let seeded = harness.head().await;
    let mut first = run_campaigns(&harness, data.path(), seeded).await;

    let campaign = new_event_id().to_string();
    let started = Envelope::new(
        Event::CampaignStarted(CampaignStarted {
            campaign: campaign.clone(),
            community: "tianlun".into(),
            name: "A free melon for every household".into(),
            partner: "shuocheng".into(),
            lines: vec![OrderLine {
                item: "watermelon".into(),
                quantity: 1,
            }],
            scope: CampaignScope::default(),
            priority: None,
            signup_until: None,
            slice: None,
        }),
        EventMeta {
            time: time::OffsetDateTime::now_utc(),
            source: "test".into(),
            actor: Actor::new(ActorKind::Staff, "staff-tianlun-hotline"),
            correlation_id: new_event_id(),
            causation_id: None,
        },
    );
    harness.publish(&[started]).await;
    let campaign_at = harness.head().await;
    // Kill -9 in the second slice of the fan-out: the first 1,000 orders and their
    // `campaign.continued` are in the stream and committed, the second slice is being
    // published from the continuation, not committed yet.
    let second_slice = campaign_at + u64::try_from(DEFAULT_SLICE).expect("fits") + 2;
    let deadline = Instant::now() + WAIT;
    while harness.head().await <= second_slice {
        assert!(Instant::now() < deadline, "the second slice began");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let _ = first.kill();
    let _ = first.wait();
    let (published_at_kill, _) = campaign_orders(&harness, campaign_at, &campaign).await;
    let committed = open_store(CAMPAIGNS, &data.path().join("campaigns"))
        .position()
        .expect("position");
    eprintln!(
        "killed with {published_at_kill} of {households} orders published, committed position {committed} (campaign at {campaign_at})"
    );
    assert!(
        committed >= campaign_at,
        "the first slice was committed before the kill"
    );
    assert!(
        published_at_kill > DEFAULT_SLICE && published_at_kill < households,
        "the kill landed in the middle of the fan-out: {published_at_kill}"
    );

    // An operator rebuilds the store before starting again (`lifeline replay`, which
    // publishes nothing): it must not record as placed the slices the killed process had
    // not placed yet, or the campaign would stop short.
    let replay = Command::new(LIFELINE)
        .args(["replay", "campaigns", "--nats-url", harness.server.url()])
        .arg("--data-dir")
        .arg(data.path())
        .output()
        .expect("run replay");
    assert!(
        replay.status.success(),
        "replay failed: {}",
        String::from_utf8_lossy(&replay.stderr)
    );

    let mut second = run_campaigns(&harness, data.path(), campaign_at).await;
    let settled = lifeline_testkit::eventually(WAIT, || async {
        campaign_orders(&harness, campaign_at, &campaign).await.0 >= households
    })
    .await;
    // Give a duplicate, were there one, time to land before counting.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let _ = second.kill();
    let _ = second.wait();
    assert!(
        settled,
        "the restarted process manager finished the fan-out"
    );
    let (messages, distinct) = campaign_orders(&harness, campaign_at, &campaign).await;
    assert_eq!(
        (messages, distinct),
        (households, households),
        "exactly one order per household"
    );
}
