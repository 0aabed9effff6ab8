//! HTTP metrics: requests by route, method and status, and their duration.

use std::sync::LazyLock;
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use prometheus::{
    HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, register_histogram_vec,
    register_int_counter_vec, register_int_gauge, register_int_gauge_vec,
};

pub static NATS_CONNECTED: LazyLock<IntGauge> = LazyLock::new(|| {
    register_int_gauge!(
        "lifeline_nats_connected",
        "1 while this process is connected to NATS, 0 while it is not (updated at scrape)."
    )
    .expect("metric registers once")
});

pub static REQUESTS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "lifeline_http_requests_total",
        "HTTP requests by matched route, method and status code.",
        &["route", "method", "status"]
    )
    .expect("metric registers once")
});

pub static DURATION: LazyLock<HistogramVec> = LazyLock::new(|| {
    register_histogram_vec!(
        "lifeline_http_request_duration_seconds",
        "HTTP request duration by matched route. The 0.25 s boundary is the API's latency SLO.",
        &["route"],
        vec![0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5]
    )
    .expect("metric registers once")
});

/// Records every request under its route template (never the raw path, which carries ids).
pub async fn track(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|path| path.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let method = request.method().as_str().to_owned();
    let started = Instant::now();
    let response = next.run(request).await;
    REQUESTS
        .with_label_values(&[&route, &method, response.status().as_str()])
        .inc();
    DURATION
        .with_label_values(&[&route])
        .observe(started.elapsed().as_secs_f64());
    response
}

pub static STORE_WRITABLE: LazyLock<IntGaugeVec> = LazyLock::new(|| {
    register_int_gauge_vec!(
        "lifeline_store_writable",
        "1 while the RocksDB store can write, 0 after a write failed (a full disk) until a write succeeds again.",
        &["store"]
    )
    .expect("metric registers once")
});
