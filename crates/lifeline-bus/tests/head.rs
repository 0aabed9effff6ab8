//! `HeadWatch` against a real nats-server: callers asking at once while events are being
//! published each get a head at least as new as the last publish acknowledged before they
//! asked, and they share requests instead of sending one each.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use lifeline_bus::async_nats::jetstream;
use lifeline_bus::{HeadWatch, StreamSettings, provision};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_caller_sees_at_least_what_was_acknowledged_before_it_asked() {
    let server = lifeline_testkit::NatsServer::start();
    let client = lifeline_bus::connect(server.url(), "head-test", &Default::default())
        .await
        .expect("connect");
    let js = jetstream::new(client);
    provision(&js, &StreamSettings::default())
        .await
        .expect("provision");
    let acknowledged = Arc::new(AtomicU64::new(0));
    let publishing = {
        let (js, acknowledged) = (js.clone(), Arc::clone(&acknowledged));
        tokio::spawn(async move {
            for n in 0..2_000u32 {
                let ack = js
                    .publish("lifeline.registry.head-test", n.to_string().into())
                    .await
                    .expect("publish")
                    .await
                    .expect("ack");
                acknowledged.fetch_max(ack.sequence, Ordering::SeqCst);
            }
        })
    };
    let watch = Arc::new(HeadWatch::new(js.clone(), lifeline_events::EVENT_STREAM));
    let mut callers = tokio::task::JoinSet::new();
    for _ in 0..400 {
        let (watch, acknowledged) = (Arc::clone(&watch), Arc::clone(&acknowledged));
        callers.spawn(async move {
            let before = acknowledged.load(Ordering::SeqCst);
            let head = watch.head().await.expect("head");
            assert!(head >= before, "head {head} older than ack {before}");
        });
        tokio::task::yield_now().await;
    }
    while let Some(done) = callers.join_next().await {
        done.expect("caller");
    }
    publishing.await.expect("publisher");
    assert!(
        watch.requests() < 400,
        "400 callers sent {} requests: none shared",
        watch.requests()
    );
    let last = acknowledged.load(Ordering::SeqCst);
    assert_eq!(watch.head().await.expect("head"), last);
}
