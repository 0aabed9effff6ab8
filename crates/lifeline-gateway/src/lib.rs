//! The HTTP edge served by every lifeline process: `/healthz` (the process is up),
//! `/readyz` (NATS is connected and every consumer in the process is reading),
//! `/metrics` (Prometheus text format), and, where the registry, delivery and inventory
//! projections run, the `/v1` API, its OpenAPI document at `/openapi.json` and the
//! courier page at `/courier`.

pub mod access;
pub mod admission;
pub mod api;
pub mod error;
pub mod idempotency;
pub mod metrics;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use lifeline_bus::async_nats;
use lifeline_projection::ProjectionStatus;
use serde_json::json;

pub use access::Access;
pub use api::{AggregateLocks, Api};

/// The courier's mobile page: stops by building, one button per drop, acknowledgements
/// stored on the phone and retried until confirmed.
const COURIER_PAGE: &str = include_str!("../static/courier.html");
/// The staff console: a community's summary, escalations, buildings and households
/// (registry editing), campaigns and seals.
const STAFF_PAGE: &str = include_str!("../static/staff.html");
/// The courier page's service worker: keeps the page's shell for opening it offline.
const COURIER_WORKER: &str = include_str!("../static/courier-sw.js");
/// The courier page's web app manifest (adding it to a phone's home screen).
const COURIER_MANIFEST: &str = include_str!("../static/courier.webmanifest");

/// What the health endpoints look at, and the API when this process serves it.
#[derive(Clone)]
pub struct GatewayState {
    pub nats: async_nats::Client,
    pub consumers: Vec<(&'static str, Arc<ProjectionStatus>)>,
    /// Every RocksDB store of the process (the consumers' and the gateway's idempotency
    /// store): one that cannot write turns readiness off.
    pub stores: Vec<(&'static str, Arc<lifeline_store::ProjectionStore>)>,
    pub api: Option<Arc<Api>>,
    /// `/readyz` is 503 while any consumer is further than this behind the stream head.
    pub ready_max_lag: u64,
    /// How much `/v1` work is taken on at once (`--max-in-flight`, `--queue-timeout-ms`).
    pub admission: admission::Admission,
}

pub fn router(state: GatewayState) -> Router {
    let api = state.api.clone();
    let admission = state.admission.clone();
    let health = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(Arc::new(state));
    let mut router = health;
    if let Some(api) = api {
        router = router
            .merge(
                api::router(api).route_layer(axum::middleware::from_fn_with_state(
                    admission,
                    admission::admit,
                )),
            )
            .route("/openapi.json", get(openapi))
            .route("/courier", get(|| async { Html(COURIER_PAGE) }))
            .route("/staff", get(|| async { Html(STAFF_PAGE) }))
            .route("/courier-sw.js", get(courier_worker))
            .route("/courier.webmanifest", get(courier_manifest));
    }
    router
        .route_layer(axum::middleware::from_fn(metrics::track))
        .layer(DefaultBodyLimit::max(api::BODY_LIMIT))
}

/// The service worker, allowed to serve the whole origin's `/courier` page.
async fn courier_worker() -> Response {
    (
        [
            (header::CONTENT_TYPE, "application/javascript"),
            (
                axum::http::HeaderName::from_static("service-worker-allowed"),
                "/",
            ),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        COURIER_WORKER,
    )
        .into_response()
}

async fn courier_manifest() -> Response {
    (
        [(header::CONTENT_TYPE, "application/manifest+json")],
        COURIER_MANIFEST,
    )
        .into_response()
}

async fn openapi() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        api::openapi_json(),
    )
        .into_response()
}

async fn healthz() -> impl IntoResponse {
    axum::Json(json!({"status": "ok"}))
}

/// Ready means: connected to NATS, the stream head readable, every store able to write
/// (a full disk turns it off until the store writes again), and every consumer reading
/// and within `ready_max_lag` events of that head (`--ready-max-lag`, default 1000): a
/// replica further behind answers 503, so a load balancer stops sending it commands it
/// would decide on stale state.
async fn readyz(State(state): State<Arc<GatewayState>>) -> Response {
    let connected = state.nats.connection_state() == async_nats::connection::State::Connected;
    let head = if connected {
        let jetstream = async_nats::jetstream::new(state.nats.clone());
        tokio::time::timeout(
            std::time::Duration::from_secs(1),
            lifeline_bus::stream_head(&jetstream, lifeline_events::EVENT_STREAM),
        )
        .await
        .ok()
        .and_then(Result::ok)
    } else {
        None
    };
    let max_lag = state.ready_max_lag;
    let mut ready = connected && head.is_some();
    let mut consumers = serde_json::Map::new();
    for (name, status) in &state.consumers {
        let reading = status.ready.load(Ordering::Relaxed);
        let position = status.position.load(Ordering::Relaxed);
        let lag = head.map(|head| head.saturating_sub(position));
        let caught_up = lag.is_some_and(|lag| lag <= max_lag);
        ready &= reading && caught_up;
        consumers.insert(
            (*name).to_owned(),
            json!({
                "ready": reading && caught_up,
                "reading": reading,
                "position": position,
                "lag_events": lag,
            }),
        );
    }
    // In memory: a store's last write failure, never a disk read.
    let mut stores = serde_json::Map::new();
    for (name, store) in &state.stores {
        let failure = store.write_failure();
        metrics::STORE_WRITABLE
            .with_label_values(&[name])
            .set(i64::from(failure.is_none()));
        ready &= failure.is_none();
        stores.insert(
            (*name).to_owned(),
            json!({"writable": failure.is_none(), "error": failure}),
        );
    }
    let code = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        code,
        axum::Json(json!({
            "ready": ready,
            "nats_connected": connected,
            "stream_head": head,
            "max_lag_events": max_lag,
            "consumers": consumers,
            "stores": stores,
        })),
    )
        .into_response()
}

async fn metrics(State(state): State<Arc<GatewayState>>) -> Response {
    // Touch the HTTP metrics so they are exported before the first request completes.
    let _ = (&*metrics::REQUESTS, &*metrics::DURATION);
    let connected = state.nats.connection_state() == async_nats::connection::State::Connected;
    metrics::NATS_CONNECTED.set(i64::from(connected));
    for (name, store) in &state.stores {
        metrics::STORE_WRITABLE
            .with_label_values(&[name])
            .set(i64::from(store.write_failure().is_none()));
    }
    // The projections' collectors read RocksDB at scrape time: gather on the blocking pool,
    // never on an async worker.
    let encoded = tokio::task::spawn_blocking(|| {
        prometheus::TextEncoder::new().encode_to_string(&prometheus::gather())
    })
    .await;
    match encoded {
        Ok(Ok(text)) => ([(header::CONTENT_TYPE, prometheus::TEXT_FORMAT)], text).into_response(),
        Ok(Err(error)) => {
            tracing::error!(%error, "cannot encode metrics");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
        Err(error) => {
            tracing::error!(%error, "metrics scrape failed");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// Serves until `shutdown` resolves.
pub async fn serve(
    address: SocketAddr,
    state: GatewayState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(address).await?;
    // The bound address: with port 0 the OS chose it, and this line is how callers learn it.
    let address = listener.local_addr()?;
    tracing::info!(%address, "http listening");
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
}
