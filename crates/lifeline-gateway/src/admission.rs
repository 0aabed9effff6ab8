//! Admission control for the `/v1` API: at most `max_in_flight` requests are worked on at
//! once; a request that cannot start within `queue_timeout` is answered 503 `overloaded`
//! with `Retry-After`, so phones retry (the courier page does) instead of waiting behind
//! seconds of queue. Health, readiness and metrics are never refused.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tokio::sync::Semaphore;

use crate::error::ApiError;

/// The work the API takes on at once, and how long a request may wait for its turn.
#[derive(Debug, Clone)]
pub struct Admission {
    permits: Arc<Semaphore>,
    queue_timeout: Duration,
}

impl Admission {
    pub fn new(max_in_flight: usize, queue_timeout: Duration) -> Self {
        Admission {
            permits: Arc::new(Semaphore::new(max_in_flight.max(1))),
            queue_timeout,
        }
    }
}

impl Default for Admission {
    /// 256 requests in flight, 500 ms in the queue.
    fn default() -> Self {
        Admission::new(256, Duration::from_millis(500))
    }
}

/// The middleware: waits for a permit up to the queue timeout, else refuses.
pub async fn admit(State(admission): State<Admission>, request: Request, next: Next) -> Response {
    let permit =
        tokio::time::timeout(admission.queue_timeout, admission.permits.acquire_owned()).await;
    match permit {
        Ok(Ok(permit)) => {
            let response = next.run(request).await;
            drop(permit);
            response
        }
        // Counted in lifeline_http_requests_total{status="503"} like every answer.
        _ => ApiError::Overloaded.into_response(),
    }
}
