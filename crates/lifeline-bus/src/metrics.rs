//! Metrics of the bus: publishes, duplicates, retries, failures, dead letters, re-drives.

use std::sync::LazyLock;

use prometheus::{IntCounterVec, register_int_counter_vec};

pub static PUBLISHED: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "lifeline_bus_published_total",
        "Events acknowledged by JetStream as newly stored, by publishing component.",
        &["publisher"]
    )
    .expect("metric registers once")
});

pub static DUPLICATES: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "lifeline_bus_publish_duplicates_total",
        "Publishes JetStream recognised as duplicates of a stored message id.",
        &["publisher"]
    )
    .expect("metric registers once")
});

pub static RETRIES: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "lifeline_bus_publish_retries_total",
        "Publishes retried with the same message id after a transient failure.",
        &["publisher"]
    )
    .expect("metric registers once")
});

pub static FAILURES: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "lifeline_bus_publish_failures_total",
        "Publishes that failed for good, by reason.",
        &["publisher", "reason"]
    )
    .expect("metric registers once")
});

pub static DEAD_LETTERS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "lifeline_bus_dead_letters_total",
        "Messages parked on the dead-letter stream, by consumer and reason.",
        &["consumer", "reason"]
    )
    .expect("metric registers once")
});

pub static REDRIVES: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "lifeline_bus_dead_letters_redriven_total",
        "Dead letters an operator put back on the event stream, by the consumer they are for.",
        &["consumer"]
    )
    .expect("metric registers once")
});
