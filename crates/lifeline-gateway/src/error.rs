//! One error type for every API response: a status code and a JSON body
//! `{"error": {"code": ..., "message": ...}}`. Internals are logged, not sent.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use lifeline_domain::command::Refusal;
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("a valid bearer token is required")]
    Unauthorized,
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Unprocessable(String),
    #[error("{0}")]
    Conflict(String),
    #[error("the request body is larger than {0} bytes")]
    PayloadTooLarge(usize),
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// NATS did not acknowledge: the client should retry with the same idempotency key.
    #[error("the event store is unavailable, retry later")]
    Unavailable,
    /// More requests in flight than the process takes on: retry after `Retry-After`.
    #[error("too many requests in flight, retry in a moment")]
    Overloaded,
    /// The community is in a partition this replica does not serve: send the request to
    /// one that does (the `Lifeline-Partition` header names it).
    #[error(
        "community {community} is in partition {partition} of {count}; this replica serves \
         {served}: send it to a replica serving partition {partition}"
    )]
    Misdirected {
        community: String,
        partition: u32,
        count: u32,
        served: String,
    },
    /// Something broke inside; the detail is in the log only.
    #[error("internal error")]
    Internal(String),
    /// The domain refused the command: the code is the rule's own.
    #[error(transparent)]
    Refused(#[from] lifeline_domain::command::CommandError),
}

/// On a 421: the partition that serves the request's community, for a router.
pub const PARTITION_HEADER: &str = "lifeline-partition";

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// A stable machine-readable code: the rule a command broke (`unknown_item`,
    /// `quantity_out_of_range`, `not_cancellable`, ...) or the kind of request error
    /// (`bad_request`, `unauthorized`, `forbidden`, `not_found`, `conflict`, ...).
    pub code: String,
    pub message: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Unavailable | ApiError::Overloaded => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Misdirected { .. } => StatusCode::MISDIRECTED_REQUEST,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::Refused(error) => match error.refusal() {
                Refusal::Invalid => StatusCode::UNPROCESSABLE_ENTITY,
                Refusal::NotFound => StatusCode::NOT_FOUND,
                Refusal::Conflict => StatusCode::CONFLICT,
                Refusal::Forbidden => StatusCode::FORBIDDEN,
                Refusal::NotYetVisible => StatusCode::SERVICE_UNAVAILABLE,
                Refusal::Unreadable => StatusCode::INTERNAL_SERVER_ERROR,
            },
        }
    }

    pub fn code(&self) -> String {
        let code = match self {
            ApiError::BadRequest(_) => "bad_request",
            ApiError::Unauthorized => "unauthorized",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::NotFound(_) => "not_found",
            ApiError::Unprocessable(_) => "unprocessable",
            ApiError::Conflict(_) => "conflict",
            ApiError::PayloadTooLarge(_) => "payload_too_large",
            ApiError::UnsupportedMediaType(_) => "unsupported_media_type",
            ApiError::Unavailable => "unavailable",
            ApiError::Overloaded => "overloaded",
            ApiError::Misdirected { .. } => "misdirected",
            ApiError::Internal(_) => "internal",
            ApiError::Refused(error) if error.refusal() == Refusal::Unreadable => "internal",
            ApiError::Refused(error) => return error.code().to_string(),
        };
        code.to_owned()
    }

    pub fn body(&self) -> ErrorBody {
        let message = match self {
            // Internals are logged, not sent.
            ApiError::Refused(error) if error.refusal() == Refusal::Unreadable => {
                "internal error".to_owned()
            }
            _ => self.to_string(),
        };
        ErrorBody {
            error: ErrorDetail {
                code: self.code(),
                message,
            },
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match &self {
            ApiError::Internal(detail) => tracing::error!(%detail, "request failed"),
            ApiError::Refused(error) if error.refusal() == Refusal::Unreadable => {
                tracing::error!(error = %error, source = ?std::error::Error::source(error), "request failed");
            }
            _ => {}
        }
        let status = self.status();
        let partition = match &self {
            ApiError::Misdirected { partition, .. } => Some(*partition),
            _ => None,
        };
        let mut response = (status, Json(self.body())).into_response();
        if let Some(partition) = partition {
            response
                .headers_mut()
                .insert(PARTITION_HEADER, axum::http::HeaderValue::from(partition));
        }
        // Every 503 is "retry in a moment": say when.
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from_static("1"),
            );
        }
        response
    }
}

impl From<lifeline_store::StoreError> for ApiError {
    fn from(error: lifeline_store::StoreError) -> Self {
        // A store that cannot write (a full disk) recovers by itself: retry in a moment.
        if error.is_transient() {
            tracing::error!(%error, "store unavailable");
            ApiError::Unavailable
        } else {
            ApiError::Internal(error.to_string())
        }
    }
}

impl From<lifeline_bus::PublishError> for ApiError {
    fn from(error: lifeline_bus::PublishError) -> Self {
        match error {
            lifeline_bus::PublishError::Conflict => {
                ApiError::Conflict("someone changed this first; read it again and retry".into())
            }
            lifeline_bus::PublishError::Unavailable { .. } => ApiError::Unavailable,
            lifeline_bus::PublishError::Rejected(detail) => ApiError::Internal(detail),
        }
    }
}
