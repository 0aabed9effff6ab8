//! The shipped NATS authorization (deploy/nats/auth.conf) on a real nats-server: a partner
//! publishes its own picks and stock, and cannot publish another partner's, nor anything
//! else; it receives its own orders on its feed, live or through its durable consumer,
//! and cannot read another partner's.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use lifeline_bus::async_nats::{self, jetstream};
use lifeline_bus::{StreamSettings, provision};
use lifeline_events::{EVENT_STREAM, PickLine, PickOutcome};
use lifeline_testkit::{NatsServer, eventually};

async fn connect_as(
    server: &NatsServer,
    user: &str,
    password: &str,
    inbox: Option<&str>,
    errors: Arc<Mutex<Vec<String>>>,
) -> async_nats::Client {
    let mut options = async_nats::ConnectOptions::new()
        .user_and_password(user.into(), password.into())
        .event_callback(move |event| {
            let errors = Arc::clone(&errors);
            async move {
                if let async_nats::Event::ServerError(error) = event {
                    errors.lock().expect("lock").push(error.to_string());
                }
            }
        });
    if let Some(prefix) = inbox {
        options = options.custom_inbox_prefix(prefix);
    }
    options.connect(server.url()).await.expect("connect")
}

fn pick_for(partner: &str) -> lifeline_events::Envelope {
    pick(
        "o-42",
        partner,
        vec![PickLine {
            item: "veg-pack".into(),
            ordered: 1,
            outcome: PickOutcome::Picked,
            picked: 1,
            substitute: None,
        }],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partner_may_publish_only_its_own_picks_and_stock() {
    let config = std::fs::read_to_string(
        std::path::Path::new(&manifest_dir()).join("../../deploy/nats/auth.conf"),
    )
    .expect("auth.conf");
    let server = NatsServer::start_with_config(&config);
    let ignore = Arc::new(Mutex::new(Vec::new()));
    let lifeline = connect_as(
        &server,
        "lifeline",
        "dev-lifeline",
        None,
        Arc::clone(&ignore),
    )
    .await;
    let admin = jetstream::new(lifeline);
    provision(&admin, &StreamSettings::default())
        .await
        .expect("provision as lifeline");

    let errors = Arc::new(Mutex::new(Vec::new()));
    let yonghui = connect_as(
        &server,
        "yonghui",
        "dev-nats-yonghui",
        Some("_INBOX_yonghui"),
        Arc::clone(&errors),
    )
    .await;
    // A short acknowledgement timeout: refused publishes are never acknowledged.
    let partner = jetstream::ContextBuilder::new()
        .timeout(Duration::from_millis(700))
        .build(yonghui.clone());

    // Its own pick and stock subjects: stored and acknowledged.
    let own = pick_for("yonghui");
    let ack = partner
        .publish(own.subject.clone(), own.encode().into())
        .await
        .expect("send")
        .await
        .expect("own pick acknowledged");
    assert_eq!(ack.stream, EVENT_STREAM);
    let restock = system(lifeline_events::Event::StockReceived(
        lifeline_events::StockReceived {
            partner: "yonghui".into(),
            item: "eggs".into(),
            quantity: 5,
        },
    ));
    partner
        .publish(restock.subject.clone(), restock.encode().into())
        .await
        .expect("send")
        .await
        .expect("own stock acknowledged");

    // Another partner's pick subject, an order, a registry change: refused by the server.
    let foreign = pick_for("shuocheng");
    for subject in [
        foreign.subject.clone(),
        "lifeline.orders.tianlun.o-42".to_owned(),
        "lifeline.registry.tianlun.x".to_owned(),
    ] {
        let result = async {
            partner
                .publish(subject.clone(), foreign.encode().into())
                .await?
                .await
        }
        .await;
        assert!(result.is_err(), "{subject} must not be acknowledged");
    }
    assert!(
        eventually(WAIT, || async {
            errors
                .lock()
                .expect("lock")
                .iter()
                .filter(|e| e.contains("Permissions Violation"))
                .count()
                >= 3
        })
        .await,
        "the server reported the violations: {:?}",
        errors.lock().expect("lock")
    );
    // Reading everyone's events is refused too.
    let _ = yonghui.subscribe("lifeline.>").await;
    assert!(
        eventually(Duration::from_secs(5), || async {
            errors
                .lock()
                .expect("lock")
                .iter()
                .any(|e| e.contains("Permissions Violation for Subscription"))
        })
        .await,
        "subscribing to the event stream is refused: {:?}",
        errors.lock().expect("lock")
    );

    // The stream holds exactly the two allowed messages.
    let mut stream = admin.get_stream(EVENT_STREAM).await.expect("stream");
    assert_eq!(stream.info().await.expect("info").state.messages, 2);
    assert!(
        stream
            .get_last_raw_message_by_subject(&foreign.subject)
            .await
            .is_err(),
        "nothing on shuocheng's subject"
    );
}

fn order_for(order: &str, partner: &str) -> lifeline_events::Envelope {
    common::order(
        order,
        1,
        1,
        partner,
        &[("veg-pack", 1)],
        lifeline_events::Priority::Routine,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partner_receives_its_own_orders_and_nobody_elses() {
    let config = std::fs::read_to_string(
        std::path::Path::new(&manifest_dir()).join("../../deploy/nats/auth.conf"),
    )
    .expect("auth.conf");
    let server = NatsServer::start_with_config(&config);
    let ignore = Arc::new(Mutex::new(Vec::new()));
    let admin = jetstream::new(
        connect_as(
            &server,
            "lifeline",
            "dev-lifeline",
            None,
            Arc::clone(&ignore),
        )
        .await,
    );
    provision(&admin, &StreamSettings::default())
        .await
        .expect("provision");
    let publisher = lifeline_bus::Publisher::new(admin.clone(), "test");
    let mine = order_for("o-mine", "yonghui");
    let theirs = order_for("o-theirs", "shuocheng");
    let cancel = system(lifeline_events::Event::OrderCancelled(
        lifeline_events::OrderCancelled {
            order: "o-mine".into(),
            community: "tianlun".into(),
            reason: "changed mind".into(),
        },
    ));
    let errors = Arc::new(Mutex::new(Vec::new()));
    let yonghui = connect_as(
        &server,
        "yonghui",
        "dev-nats-yonghui",
        Some("_INBOX_yonghui"),
        Arc::clone(&errors),
    )
    .await;
    // Live: its own feed subject.
    let mut live = yonghui
        .subscribe("lifeline.feed.yonghui.>")
        .await
        .expect("subscribe to its own feed");
    yonghui.flush().await.expect("flush");

    for event in [&mine, &theirs, &cancel] {
        publisher.publish(event, None).await.expect("publish");
    }
    // lifeline's feed consumer, as deployed (`lifeline up` runs it too).
    let data = tempfile::tempdir().expect("tempdir");
    let url = server
        .url()
        .replacen("nats://", "nats://lifeline:dev-lifeline@", 1);
    let mut feed = std::process::Command::new(LIFELINE)
        .args(["run", "feed", "--nats-url", &url, "--http", "127.0.0.1:0"])
        .arg("--data-dir")
        .arg(data.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("lifeline run feed");

    let placed = tokio::time::timeout(WAIT, futures::StreamExt::next(&mut live))
        .await
        .expect("the order arrives live")
        .expect("message");
    assert_eq!(
        placed.subject.as_str(),
        "lifeline.feed.yonghui.orders.tianlun.o-mine"
    );
    let envelope = lifeline_events::Envelope::decode(&placed.payload).expect("an envelope");
    assert_eq!(envelope.event, mine.event);
    assert_eq!(
        envelope.causation_id,
        Some(mine.id),
        "its cause is the original"
    );

    // Durable: its own consumer, created and read with its own permissions.
    let partner = jetstream::new(yonghui.clone());
    let consumer = partner
        .create_consumer_on_stream(
            jetstream::consumer::pull::Config {
                durable_name: Some("feed-yonghui".into()),
                filter_subject: "lifeline.feed.yonghui.>".into(),
                ..Default::default()
            },
            lifeline_events::PARTNER_FEED_STREAM,
        )
        .await
        .expect("its own durable consumer");
    let mut received = Vec::new();
    let deadline = std::time::Instant::now() + WAIT;
    while received.len() < 2 && std::time::Instant::now() < deadline {
        let mut batch = consumer
            .fetch()
            .max_messages(10)
            .expires(Duration::from_millis(500))
            .messages()
            .await
            .expect("fetch");
        while let Some(message) = futures::StreamExt::next(&mut batch).await {
            let message = message.expect("message");
            message.ack().await.expect("ack");
            let envelope = lifeline_events::Envelope::decode(&message.payload).expect("envelope");
            received.push((message.subject.to_string(), envelope.event_type()));
        }
    }
    let _ = feed.kill();
    let _ = feed.wait();
    assert_eq!(
        received,
        [
            (
                "lifeline.feed.yonghui.orders.tianlun.o-mine".to_owned(),
                "order.placed.v1"
            ),
            (
                "lifeline.feed.yonghui.orders.tianlun.o-mine".to_owned(),
                "order.cancelled.v1"
            ),
        ],
        "its order and the cancellation, not shuocheng's"
    );

    // Another partner's feed, live or durable: refused (the server drops the request, so
    // do not wait the default 5 s for each answer).
    let mut partner = partner;
    partner.set_timeout(Duration::from_secs(1));
    let other = partner
        .create_consumer_on_stream(
            jetstream::consumer::pull::Config {
                durable_name: Some("feed-shuocheng".into()),
                filter_subject: "lifeline.feed.shuocheng.>".into(),
                ..Default::default()
            },
            lifeline_events::PARTNER_FEED_STREAM,
        )
        .await;
    assert!(
        other.is_err(),
        "shuocheng's consumer is not yonghui's to create"
    );
    let wider = partner
        .create_consumer_on_stream(
            jetstream::consumer::pull::Config {
                durable_name: Some("feed-yonghui".into()),
                filter_subject: "lifeline.feed.>".into(),
                ..Default::default()
            },
            lifeline_events::PARTNER_FEED_STREAM,
        )
        .await;
    assert!(
        wider.is_err(),
        "its consumer cannot be widened to every feed"
    );
    let _ = yonghui.subscribe("lifeline.feed.shuocheng.>").await;
    assert!(
        eventually(Duration::from_secs(5), || async {
            errors
                .lock()
                .expect("lock")
                .iter()
                .any(|e| e.contains("Permissions Violation for Subscription"))
        })
        .await,
        "subscribing to another partner's feed is refused: {:?}",
        errors.lock().expect("lock")
    );
}

/// The package directory of the checkout running the test: cargo sets it at run time, and
/// the compile-time value may name another clone that built the same binary.
fn manifest_dir() -> std::ffi::OsString {
    std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into())
}
