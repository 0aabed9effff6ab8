//! Metrics every consumer exports, labelled by consumer name.

use std::sync::LazyLock;

use prometheus::{
    GaugeVec, HistogramVec, IntCounterVec, IntGaugeVec, register_gauge_vec, register_histogram_vec,
    register_int_counter_vec, register_int_gauge_vec,
};

pub static APPLIED: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "lifeline_consumer_events_applied_total",
        "Events that changed a consumer's state, by consumer and event type.",
        &["consumer", "type"]
    )
    .expect("metric registers once")
});

pub static IGNORED: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "lifeline_consumer_events_ignored_total",
        "Events a consumer read but has no use for.",
        &["consumer"]
    )
    .expect("metric registers once")
});

pub static REJECTED: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "lifeline_consumer_events_rejected_total",
        "Events a consumer could not apply and parked, by reason.",
        &["consumer", "reason"]
    )
    .expect("metric registers once")
});

pub static REDELIVERED: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "lifeline_consumer_redeliveries_total",
        "Messages delivered again at or below the stored position, skipped.",
        &["consumer"]
    )
    .expect("metric registers once")
});

pub static EMITTED: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "lifeline_consumer_events_emitted_total",
        "Follow-up events a process manager published.",
        &["consumer"]
    )
    .expect("metric registers once")
});

pub static BATCH_SIZE: LazyLock<HistogramVec> = LazyLock::new(|| {
    register_histogram_vec!(
        "lifeline_consumer_batch_size_events",
        "Messages per consumer batch.",
        &["consumer"],
        vec![1.0, 4.0, 16.0, 64.0, 128.0, 256.0, 512.0, 1024.0]
    )
    .expect("metric registers once")
});

pub static BATCH_SECONDS: LazyLock<HistogramVec> = LazyLock::new(|| {
    register_histogram_vec!(
        "lifeline_consumer_batch_seconds",
        "Time to apply, publish and commit one batch.",
        &["consumer"],
        vec![0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5]
    )
    .expect("metric registers once")
});

pub static POSITION: LazyLock<IntGaugeVec> = LazyLock::new(|| {
    register_int_gauge_vec!(
        "lifeline_consumer_position",
        "Stream sequence of the last event a consumer committed.",
        &["consumer"]
    )
    .expect("metric registers once")
});

pub static LAG_EVENTS: LazyLock<IntGaugeVec> = LazyLock::new(|| {
    register_int_gauge_vec!(
        "lifeline_consumer_lag_events",
        "Events in the stream after the consumer's position.",
        &["consumer"]
    )
    .expect("metric registers once")
});

pub static LAG_SECONDS: LazyLock<GaugeVec> = LazyLock::new(|| {
    register_gauge_vec!(
        "lifeline_consumer_lag_seconds",
        "Age of the last committed event when it was committed; 0 once the consumer is at the stream head.",
        &["consumer"]
    )
    .expect("metric registers once")
});

pub static LAST_COMMIT: LazyLock<GaugeVec> = LazyLock::new(|| {
    register_gauge_vec!(
        "lifeline_consumer_last_commit_timestamp_seconds",
        "Unix time of the consumer's last committed batch.",
        &["consumer"]
    )
    .expect("metric registers once")
});
