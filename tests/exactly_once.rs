//! Exactly once: a duplicate publish changes nothing, a consumer stopped mid-stream and
//! restarted ends where a straight run ends, a replayed projection equals the live one, and
//! redelivery (duplicated, out of order) neither skips nor double-applies, and a process
//! manager that lost its progress and restarts after the duplicate window has passed adds
//! no follow-up twice.

mod common;

use common::*;
use lifeline_bus::EventReader;
use lifeline_events::{EVENT_STREAM, Envelope, Priority};
use lifeline_projection::{DriverConfig, Mode};
use lifeline_store::ProjectionStore;
use std::sync::Arc;

/// A workload touching every rule: stock, orders (some short), cancels, picks, arrivals.
fn workload() -> Vec<Envelope> {
    let mut events = vec![
        stock("yonghui", "veg-pack", 40),
        stock("yonghui", "eggs", 7),
        tricycle("tri-13", 30_000),
        tricycle("tri-14", 20_000),
    ];
    for n in 0..30 {
        let id = format!("w{n}");
        events.push(order(
            &id,
            n,
            n % 4,
            "yonghui",
            &[("veg-pack", 1), ("eggs", 1)],
            Priority::ALL[n % 3],
        ));
    }
    for n in 0..30 {
        let id = format!("w{n}");
        if n % 7 == 0 {
            events.push(system(lifeline_events::Event::OrderCancelled(
                lifeline_events::OrderCancelled {
                    order: id,
                    community: COMMUNITY.into(),
                    reason: "changed mind".into(),
                },
            )));
        } else {
            let eggs = if n < 10 {
                picked_in_full("eggs", 1)
            } else {
                picked_short("eggs", 1, 0)
            };
            events.push(pick(
                &id,
                "yonghui",
                vec![picked_in_full("veg-pack", 1), eggs],
            ));
        }
    }
    let arrived: Vec<String> = (0..30)
        .filter(|n| n % 7 != 0)
        .map(|n| format!("w{n}"))
        .collect();
    let arrived: Vec<&str> = arrived.iter().map(String::as_str).collect();
    events.push(arrival("yonghui", &arrived[..12]));
    events.push(arrival("yonghui", &arrived[12..]));
    events
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishing_the_same_event_twice_changes_nothing() {
    let harness = Harness::start().await;
    let inventory = start_consumer(&harness, INVENTORY, &harness.store_dir("inventory"));
    let received = stock("yonghui", "veg-pack", 10);
    let first = harness
        .publisher
        .publish(&received, None)
        .await
        .expect("publish");
    let second = harness
        .publisher
        .publish(&received, None)
        .await
        .expect("publish");
    assert!(!first.duplicate);
    assert!(second.duplicate, "jetstream recognised the event id");
    assert_eq!(first.sequence, second.sequence);
    assert_eq!(harness.head().await, 1);
    inventory.wait_for(1).await;
    let stock = lifeline_readmodel::inventory::stock(&inventory.store, None).expect("read");
    assert_eq!(stock[0].on_hand, 10);

    // Optimistic concurrency: a writer that expected an older subject sequence loses.
    let order = order("c1", 1, 1, "yonghui", &[("veg-pack", 1)], Priority::Routine);
    harness
        .publisher
        .publish(&order, Some(0))
        .await
        .expect("first write on the subject");
    let stale = common::order(
        "c1-again",
        1,
        1,
        "yonghui",
        &[("veg-pack", 1)],
        Priority::Routine,
    );
    let mut stale_same_subject = stale.clone();
    stale_same_subject.subject = order.subject.clone();
    let result = harness
        .publisher
        .publish(&stale_same_subject, Some(0))
        .await;
    assert!(
        matches!(result, Err(lifeline_bus::PublishError::Conflict)),
        "{result:?}"
    );

    // Across subjects (what a cancel does against the order's pick): a guard on a filter
    // of another subject holds while nothing is there and fails once something is.
    let picks_of_c1 = format!("lifeline.picks.{COMMUNITY}.*.c1");
    let expect_no_pick = || {
        Some(lifeline_bus::Expected {
            sequence: 0,
            subject: Some(picks_of_c1.clone()),
        })
    };
    let cancel = system(lifeline_events::Event::OrderCancelled(
        lifeline_events::OrderCancelled {
            order: "c1".into(),
            community: COMMUNITY.into(),
            reason: "changed mind".into(),
        },
    ));
    harness
        .publisher
        .publish(
            &pick("c1", "yonghui", vec![picked_in_full("veg-pack", 1)]),
            None,
        )
        .await
        .expect("the pick lands first");
    let result = harness
        .publisher
        .publish_expecting(&cancel, expect_no_pick())
        .await;
    assert!(
        matches!(result, Err(lifeline_bus::PublishError::Conflict)),
        "a cancel guarded against the pick loses: {result:?}"
    );
    let other = common::order("c2", 2, 1, "yonghui", &[("veg-pack", 1)], Priority::Routine);
    harness.publisher.publish(&other, None).await.expect("c2");
    let mut cancel_c2 = cancel.clone();
    cancel_c2.event = lifeline_events::Event::OrderCancelled(lifeline_events::OrderCancelled {
        order: "c2".into(),
        community: COMMUNITY.into(),
        reason: "changed mind".into(),
    });
    cancel_c2.subject = lifeline_events::order_subject(COMMUNITY, "c2");
    let guard = Some(lifeline_bus::Expected {
        sequence: 0,
        subject: Some(format!("lifeline.picks.{COMMUNITY}.*.c2")),
    });
    harness
        .publisher
        .publish_expecting(&cancel_c2, guard)
        .await
        .expect("no pick of c2: the cancel lands");
    inventory.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopped_and_restarted_consumer_ends_like_a_straight_run_and_replay_matches() {
    let harness = Harness::start().await;
    let events = workload();
    let (first_half, second_half) = events.split_at(events.len() / 2);

    // The straight run: every consumer reads everything once.
    let straight: Vec<Consumer> = [INVENTORY, DELIVERY, DISPATCH]
        .iter()
        .map(|kind| {
            start_consumer(
                &harness,
                kind,
                &harness.store_dir(&format!("straight-{}", kind)),
            )
        })
        .collect();
    // The interrupted run: small batches, stopped in the middle, restarted on the same store.
    let small = DriverConfig {
        max_batch: 3,
        ..DriverConfig::default()
    };
    let interrupted: Vec<Consumer> = [INVENTORY, DELIVERY, DISPATCH]
        .iter()
        .map(|kind| {
            let store = open_store(kind, &harness.store_dir(&format!("interrupted-{}", kind)));
            start_consumer_with(&harness, kind, store, small.clone())
        })
        .collect();

    harness.publish(first_half).await;
    let middle = harness.head().await;
    for consumer in &interrupted {
        consumer.wait_for(middle / 2).await;
    }
    let mut stores = Vec::new();
    for consumer in interrupted {
        stores.push(consumer.stop().await);
    }
    harness.publish(second_half).await;
    let kinds = [INVENTORY, DELIVERY, DISPATCH];
    let restarted: Vec<Consumer> = kinds
        .iter()
        .zip(stores)
        .map(|(kind, store)| start_consumer_with(&harness, kind, store, small.clone()))
        .collect();

    // Dispatch emits run.planned events; wait until the stream is quiet and all caught up.
    let mut head = harness.head().await;
    loop {
        for consumer in straight.iter().chain(restarted.iter()) {
            consumer.wait_for(head).await;
        }
        let now = harness.head().await;
        if now == head {
            break;
        }
        head = now;
    }
    let runs = planned_runs(&harness).await;
    assert!(!runs.is_empty(), "dispatch planned runs");
    let run_ids: std::collections::BTreeSet<&str> =
        runs.iter().map(|(_, run)| run.run.as_str()).collect();
    assert_eq!(run_ids.len(), runs.len(), "no run was published twice");

    for (kind, (a, b)) in kinds.iter().zip(straight.iter().zip(restarted.iter())) {
        assert_eq!(
            a.store.digest().expect("digest"),
            b.store.digest().expect("digest"),
            "{}",
            kind
        );
    }

    // Replay each projection into a fresh store: equal to the live one.
    for (kind, live) in kinds.iter().zip(straight.iter()) {
        let fresh = open_store(kind, &harness.store_dir(&format!("replay-{}", kind)));
        let replayed_head = consumer_of(kind)
            .projection(
                fresh.clone(),
                harness.jetstream.clone(),
                DriverConfig::default(),
            )
            .replay()
            .await
            .expect("replay");
        assert_eq!(replayed_head, head);
        assert_eq!(
            fresh.digest().expect("digest"),
            live.store.digest().expect("digest"),
            "replayed {}",
            kind
        );
    }
    assert_eq!(harness.head().await, head, "replay published nothing");
    for consumer in straight.into_iter().chain(restarted) {
        consumer.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_order_redelivery_neither_skips_nor_double_applies() {
    let harness = Harness::start().await;
    harness.publish(&workload()).await;
    let head = harness.head().await;

    // Read the raw messages once.
    let mut reader = EventReader::open(&harness.jetstream, EVENT_STREAM, 0, 1000)
        .await
        .expect("reader");
    let mut messages = Vec::new();
    while messages.len() < head as usize {
        messages.extend(reader.next_batch().await.expect("open").expect("batch"));
    }

    for kind in [INVENTORY, DELIVERY] {
        let in_order = open_store(kind, &harness.store_dir(&format!("ordered-{}", kind)));
        let shuffled = open_store(kind, &harness.store_dir(&format!("shuffled-{}", kind)));
        let projection_on = |store: &Arc<ProjectionStore>| {
            consumer_of(kind).projection(
                Arc::clone(store),
                harness.jetstream.clone(),
                DriverConfig::default(),
            )
        };
        let (ordered_projection, shuffled_projection) =
            (projection_on(&in_order), projection_on(&shuffled));
        ordered_projection
            .ingest(Mode::Replay, messages.clone())
            .await
            .expect("ingest");
        redeliver_shuffled(&shuffled_projection, &messages).await;
        assert_eq!(in_order.position().expect("position"), head, "{kind}");
        assert_eq!(shuffled.position().expect("position"), head, "{kind}");
        assert_eq!(
            in_order.digest().expect("digest"),
            shuffled.digest().expect("digest"),
            "{kind}"
        );
    }
}

/// Delivers `messages` in overlapping, internally reversed chunks, with every chunk's
/// messages also delivered again later, as a redelivering consumer might.
async fn redeliver_shuffled(
    projection: &lifeline_projection::Projection,
    messages: &[lifeline_bus::StreamMessage],
) {
    let mut start = 0;
    while start < messages.len() {
        let end = (start + 7).min(messages.len());
        // Reach back over what was already applied, and reverse the order.
        let from = start.saturating_sub(4);
        let mut chunk: Vec<_> = messages[from..end].to_vec();
        chunk.reverse();
        chunk.extend(messages[from..end].iter().cloned());
        let position = projection
            .ingest(Mode::Replay, chunk)
            .await
            .expect("ingest");
        assert_eq!(position, messages[end - 1].sequence, "nothing skipped");
        start = end;
    }
}

/// Dispatch, campaigns and the partner feed publish their follow-ups, then lose everything
/// they committed (as if they had crashed between publishing and committing, at the very
/// start, or as a new replica reading the history) and come back only after the stream's
/// duplicate window (1 s here) has passed: the stream cannot recognise the re-published
/// ids any more, yet nothing is stored twice. A follow-up that opens an aggregate (a run, a
/// campaign order, a feed's first copy) is published only onto an empty subject; one that
/// does not (the feed's copy of a cancellation) is looked up by id first, because its cause
/// is older than `look_up_follow_ups_after` (1 s here; 5 minutes in production).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn process_managers_restarted_past_the_duplicate_window_add_nothing_twice() {
    let harness = Harness::start_with(&lifeline_bus::StreamSettings {
        duplicate_window: std::time::Duration::from_secs(1),
        ..Default::default()
    })
    .await;
    let seeds = lifeline_seeds::Seeds::embedded().expect("seeds");
    harness
        .publish(&seeds.events(time::OffsetDateTime::now_utc()))
        .await;
    harness.publish(&workload()).await;
    let campaign = system(lifeline_events::Event::CampaignStarted(
        lifeline_events::CampaignStarted {
            campaign: "melon-day".into(),
            community: "tianlun".into(),
            name: "melons".into(),
            partner: "yonghui".into(),
            lines: vec![lifeline_events::OrderLine {
                item: "veg-pack".into(),
                quantity: 1,
            }],
            scope: lifeline_events::CampaignScope {
                buildings: vec!["tianlun-b07".into()],
                vulnerabilities: vec![],
            },
            priority: None,
            signup_until: None,
            slice: None,
        },
    ));
    harness.publish(&[campaign]).await;

    let count = |events: &[(u64, Envelope)]| {
        let runs = events
            .iter()
            .filter(|(_, e)| matches!(e.event, lifeline_events::Event::RunPlanned(_)))
            .count();
        let campaign_orders = events
            .iter()
            .filter(|(_, e)| {
                matches!(&e.event, lifeline_events::Event::OrderPlaced(o) if o.campaign.is_some())
            })
            .count();
        (runs, campaign_orders)
    };
    let mut first = None;
    for attempt in ["first", "after losing its progress"] {
        let dir = harness.store_dir("pm");
        let _ = std::fs::remove_dir_all(&dir);
        let config = DriverConfig {
            look_up_follow_ups_after: std::time::Duration::from_secs(1),
            ..DriverConfig::default()
        };
        let consumers = [DISPATCH, CAMPAIGNS, FEED].map(|kind| {
            let store = open_store(kind, &dir.join(kind));
            start_consumer_with(&harness, kind, store, config.clone())
        });
        let head = harness.head().await;
        for consumer in &consumers {
            consumer.wait_for(head).await;
        }
        // Until nothing new arrives: the follow-ups and what they cause are applied.
        loop {
            let head = harness.head().await;
            for consumer in &consumers {
                consumer.wait_for(head).await;
            }
            if harness.head().await == head {
                break;
            }
        }
        for consumer in consumers {
            consumer.stop().await;
        }
        let (runs, campaign_orders) = count(&envelopes(&harness).await);
        let feed = feed_copies(&harness).await;
        let counted = (runs, campaign_orders, feed, harness.head().await);
        eprintln!(
            "{attempt}: {runs} runs planned, {campaign_orders} campaign orders, {} feed copies \
             ({} of them cancellations), event stream head {}",
            feed.0, feed.1, counted.3
        );
        match first {
            None => {
                assert!(runs > 0 && campaign_orders > 0 && feed.1 > 0, "{counted:?}");
                first = Some(counted);
                // Past the duplicate window before the second life.
                tokio::time::sleep(std::time::Duration::from_millis(2_500)).await;
            }
            Some(first) => assert_eq!(counted, first, "nothing stored twice"),
        }
    }
}

/// The partner feed's copies: (all, cancellations).
async fn feed_copies(harness: &Harness) -> (usize, usize) {
    let stream = harness
        .jetstream
        .get_stream(lifeline_events::PARTNER_FEED_STREAM)
        .await
        .expect("feed stream");
    let mut all = 0;
    let mut cancellations = 0;
    let mut from = 1;
    while let Ok(message) = stream
        .direct_get_next_for_subject(
            format!("{}.>", lifeline_events::PARTNER_FEED_SUBJECT_PREFIX),
            Some(from),
        )
        .await
    {
        all += 1;
        let envelope = Envelope::decode(&message.payload).expect("a feed copy decodes");
        if matches!(envelope.event, lifeline_events::Event::OrderCancelled(_)) {
            cancellations += 1;
        }
        from = message.sequence + 1;
    }
    (all, cancellations)
}
