//! Garbage bytes, an unknown event type, an impossible transition, a spoofed subject and
//! an envelope naming another subject than its own each land on the dead-letter stream with a reason, while the consumer keeps processing
//! what follows.

mod common;

use common::*;
use lifeline_bus::read_dead_letters;
use lifeline_domain::order::Stage;
use lifeline_events::Priority;
use lifeline_testkit::eventually;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_messages_are_parked_with_a_reason_and_the_consumer_carries_on() {
    let harness = Harness::start().await;
    let delivery = start_consumer(&harness, DELIVERY, &harness.store_dir("delivery"));
    let js = &harness.jetstream;

    // 1. Bytes that are not an event at all.
    js.publish(
        "lifeline.orders.tianlun.garbage",
        "\u{0}\u{1}not json".into(),
    )
    .await
    .expect("send")
    .await
    .expect("ack");
    // 2. A well-formed envelope of a type nobody knows.
    let mut unknown: serde_json::Value = serde_json::from_slice(
        &order("u1", 1, 1, "yonghui", &[("veg-pack", 1)], Priority::Routine).encode(),
    )
    .expect("json");
    unknown["type"] = "order.teleported.v1".into();
    js.publish(
        "lifeline.orders.tianlun.u1",
        serde_json::to_vec(&unknown).expect("json").into(),
    )
    .await
    .expect("send")
    .await
    .expect("ack");
    // 3. A drop for an order that was never picked.
    let placed = order(
        "never-picked",
        2,
        1,
        "yonghui",
        &[("veg-pack", 1)],
        Priority::Routine,
    );
    harness.publish(&[placed]).await;
    harness
        .publish(&[delivered("never-picked", "run-x", "tianlun-b01-u1-0002")])
        .await;
    // 4. A pick published on another partner's subject.
    let spoofed = pick(
        "never-picked",
        "yonghui",
        vec![picked_in_full("veg-pack", 1)],
    );
    js.publish(
        "lifeline.picks.tianlun.shuocheng.never-picked",
        spoofed.encode().into(),
    )
    .await
    .expect("send")
    .await
    .expect("ack");
    // 5. An envelope whose own `subject` field names another subject than the one it was
    // published on (its content does belong where it was published).
    let mut lying: serde_json::Value = serde_json::from_slice(
        &order(
            "env-lie",
            4,
            1,
            "yonghui",
            &[("veg-pack", 1)],
            Priority::Routine,
        )
        .encode(),
    )
    .expect("json");
    lying["subject"] = "lifeline.orders.tianlun.someone-else".into();
    js.publish(
        "lifeline.orders.tianlun.env-lie",
        serde_json::to_vec(&lying).expect("json").into(),
    )
    .await
    .expect("send")
    .await
    .expect("ack");
    // 6. A good order after all of that.
    harness
        .publish(&[order(
            "good",
            3,
            1,
            "yonghui",
            &[("veg-pack", 1)],
            Priority::Routine,
        )])
        .await;

    delivery.wait_for(harness.head().await).await;
    let good = lifeline_readmodel::delivery::order(&delivery.store, "good")
        .expect("read")
        .expect("applied after the bad ones");
    assert_eq!(good.status.stage, Stage::Placed);
    let untouched = lifeline_readmodel::delivery::order(&delivery.store, "never-picked")
        .expect("read")
        .expect("placed");
    assert_eq!(
        untouched.status.stage,
        Stage::Placed,
        "the impossible drop was not applied"
    );

    assert!(
        eventually(WAIT, || async {
            read_dead_letters(js, 100).await.expect("read").len() >= 5
        })
        .await,
        "five dead letters arrive"
    );
    let letters = read_dead_letters(js, 100).await.expect("read");
    let reasons: Vec<(&str, &str)> = letters
        .iter()
        .map(|l| (l.consumer.as_str(), l.reason.as_str()))
        .collect();
    assert_eq!(
        reasons,
        [
            ("delivery", "undecodable"),
            ("delivery", "unknown_type"),
            ("delivery", "impossible_transition"),
            ("delivery", "subject_mismatch"),
            ("delivery", "subject_mismatch"),
        ]
    );
    assert!(
        letters[4].detail.contains("someone-else"),
        "{}",
        letters[4].detail
    );
    assert_eq!(
        letters[0].original_subject,
        "lifeline.orders.tianlun.garbage"
    );
    assert!(
        letters[0].payload.contains("not json"),
        "original payload kept"
    );
    assert!(
        letters[2].detail.contains("never-picked"),
        "{}",
        letters[2].detail
    );
    delivery.stop().await;
}

/// A consumer that reads the history again after the duplicate window (1 s here) has
/// passed, as a new replica does, parks no second copy of what it parked the first time:
/// a rejected message older than `look_up_follow_ups_after` is looked up first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_reading_old_history_parks_nothing_twice() {
    let harness = Harness::start_with(&lifeline_bus::StreamSettings {
        duplicate_window: std::time::Duration::from_secs(1),
        ..Default::default()
    })
    .await;
    harness
        .jetstream
        .publish("lifeline.orders.tianlun.garbage", "not json".into())
        .await
        .expect("send")
        .await
        .expect("ack");
    let parked = || async {
        read_dead_letters(&harness.jetstream, 100)
            .await
            .expect("dead letters")
            .iter()
            .filter(|record| record.consumer == DELIVERY)
            .count()
    };
    let config = lifeline_projection::DriverConfig {
        look_up_follow_ups_after: std::time::Duration::from_secs(1),
        ..Default::default()
    };
    for life in ["first", "a new replica, after the window"] {
        let directory = harness.store_dir(&format!("delivery-{}", life.len()));
        let store = open_store(DELIVERY, &directory);
        let consumer = start_consumer_with(&harness, DELIVERY, store, config.clone());
        consumer.wait_for(harness.head().await).await;
        consumer.stop().await;
        assert_eq!(parked().await, 1, "{life}: the garbage is parked once");
        tokio::time::sleep(std::time::Duration::from_millis(2_500)).await;
    }
}
