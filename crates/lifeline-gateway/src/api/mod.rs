//! The `/v1` API, one file per role. Every command goes through [`Api::execute`]: settle
//! on the aggregate, decide with `lifeline_domain::command` (no rule lives here), append,
//! answer. A refused command publishes nothing. Reads come from the projections and are
//! eventually consistent with the stream (usually milliseconds behind).
//!
//! Architecture invariant: this module checks who may act for whom (tokens, roles, scopes)
//! and nothing else; whether an act is allowed is decided in the domain.

mod campaigns;
mod command;
mod couriers;
mod dispatch;
mod doc;
mod errands;
mod escalations;
mod ledgers;
mod operators;
mod partitions;
mod partners;
mod registry;
mod residents;
mod seals;
mod sheets;

use std::sync::Arc;

use axum::extract::{FromRequest, FromRequestParts, Query, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post, put};
use axum::{Json, Router};
use lifeline_bus::Publisher;
use lifeline_bus::async_nats::jetstream;
use lifeline_domain::command::{CommandError, Views};
use lifeline_domain::delivery::{OrderRecord, RunRecord};
use lifeline_events::{Actor, ActorKind, EventMeta, is_token};
use lifeline_projection::StoreState;
use lifeline_store::ProjectionStore;
use serde::Serialize;
use uuid::Uuid;

use crate::access::{Access, Caller, HasAccess, Role};
use crate::error::ApiError;
use crate::idempotency::Idempotency;

pub use command::AggregateLocks;
use command::{Appended, Concurrency};
pub use couriers::{Manifest, ManifestItem, ManifestOrder, ManifestStop, Outcome, PostDrop};
pub use dispatch::{DepartRun, PostArrival};
pub use doc::{ApiDoc, openapi_json};
pub use partners::{PostPick, Restock};
pub use residents::{CancelOrder, LineRequest, OrderAccepted, PlaceOrder};

/// Request bodies above this are refused with 413.
pub const BODY_LIMIT: usize = 64 * 1024;

/// What the API needs: the publisher, the projections it validates against, the access table.
pub struct Api {
    pub publisher: Publisher,
    pub jetstream: jetstream::Context,
    pub registry: Arc<ProjectionStore>,
    pub delivery: Arc<ProjectionStore>,
    /// The committed positions of the delivery and inventory consumers, watched (not
    /// polled) to settle.
    pub registry_status: Arc<lifeline_projection::ProjectionStatus>,
    pub delivery_status: Arc<lifeline_projection::ProjectionStatus>,
    pub inventory_status: Arc<lifeline_projection::ProjectionStatus>,
    pub inventory: Arc<ProjectionStore>,
    pub idempotency: Idempotency,
    pub access: Access,
    /// Commands on one aggregate run one at a time in this process.
    pub aggregates: AggregateLocks,
    /// The event stream's head, one request at a time for every command waiting on it.
    pub head: lifeline_bus::HeadWatch,
    /// The highest stream sequence a command through this replica appended: a read waits
    /// until the projections have applied it (read-your-writes, without making every
    /// command's answer wait for them).
    pub last_appended: std::sync::atomic::AtomicU64,
    /// The communities this replica answers for (its per-community projections hold only
    /// those): a request for another is answered 421 with the partition that serves it.
    pub partitioning: lifeline_events::Partitioning,
}

impl std::fmt::Debug for Api {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Api").finish()
    }
}

impl HasAccess for Arc<Api> {
    fn access(&self) -> &Access {
        &self.access
    }
}

pub fn router(api: Arc<Api>) -> Router {
    Router::new()
        .route("/v1/orders", post(residents::place_order))
        .route("/v1/orders/{order}", get(residents::get_order))
        .route("/v1/orders/{order}/cancel", post(residents::cancel_order))
        .route(
            "/v1/orders/{order}/escalation/close",
            post(escalations::close_escalation),
        )
        .route(
            "/v1/communities/{community}/coverage",
            get(escalations::coverage),
        )
        .route(
            "/v1/communities/{community}/seals",
            post(seals::change_seal),
        )
        .route(
            "/v1/communities/{community}/campaigns",
            post(campaigns::start_campaign),
        )
        .route(
            "/v1/communities/{community}/campaigns/{campaign}",
            get(campaigns::campaign_progress),
        )
        .route(
            "/v1/communities/{community}/escalations",
            get(escalations::community_escalations),
        )
        .route(
            "/v1/households/{household}/orders",
            get(residents::household_orders),
        )
        .route(
            "/v1/partners/{partner}/orders",
            get(partners::partner_orders),
        )
        .route("/v1/partners/{partner}/picks", post(partners::post_pick))
        .route("/v1/partners/{partner}", put(registry::put_partner))
        .route(
            "/v1/partners/{partner}/pick-sheet",
            get(sheets::pick_sheet_of),
        )
        .route(
            "/v1/partners/{partner}/stock",
            get(partners::partner_stock).post(partners::restock),
        )
        .route(
            "/v1/communities/{community}/ready",
            get(dispatch::ready_orders),
        )
        .route(
            "/v1/communities/{community}/arrivals",
            post(dispatch::post_arrival),
        )
        .route(
            "/v1/communities/{community}/runs",
            get(dispatch::community_runs),
        )
        .route(
            "/v1/communities/{community}/summary",
            get(operators::community_summary),
        )
        .route("/v1/runs/{run}/depart", post(dispatch::depart_run))
        .route("/v1/runs/{run}/return", post(dispatch::return_run))
        .route("/v1/runs/{run}/manifest", get(couriers::run_manifest))
        .route("/v1/runs/{run}/drops", post(couriers::post_drop))
        .route(
            "/v1/communities/{community}/parcels",
            post(errands::receive_parcel),
        )
        .route(
            "/v1/communities/{community}/ledgers/reconciliation",
            get(ledgers::reconciliation),
        )
        .route(
            "/v1/communities/{community}/ledgers/{ledger}",
            post(ledgers::import_ledger),
        )
        .route(
            "/v1/communities/{community}/households/{household}/vulnerabilities",
            post(ledgers::settle_flags),
        )
        .route(
            "/v1/campaigns/{campaign}/join",
            post(campaigns::join_campaign),
        )
        .route("/v1/errands", post(errands::request_errand))
        .route("/v1/errands/{order}/accept", post(errands::accept_errand))
        .route("/v1/errands/{order}/collect", post(errands::collect_errand))
        .route("/v1/errands/{order}/drops", post(errands::errand_drop))
        .route("/v1/stuck", get(operators::stuck_orders))
        .route("/v1/dead-letters", get(operators::dead_letters))
        .route(
            "/v1/dead-letters/{sequence}/redrive",
            post(operators::redrive_dead_letter),
        )
        .route("/v1/stock", get(operators::all_stock))
        .route(
            "/v1/communities/{community}/buildings",
            get(registry::buildings),
        )
        .route(
            "/v1/communities/{community}/households",
            get(registry::households),
        )
        .route(
            "/v1/communities/{community}/orders",
            get(registry::building_orders),
        )
        .route(
            "/v1/communities/{community}/households/{household}",
            put(registry::put_household),
        )
        .route(
            "/v1/communities/{community}/households/{household}/contact",
            put(registry::put_contact),
        )
        .route(
            "/v1/communities/{community}/buildings/{building}",
            put(registry::put_building),
        )
        .route(
            "/v1/communities/{community}/units/{unit}",
            put(registry::put_unit),
        )
        .route(
            "/v1/communities/{community}/volunteers/{volunteer}",
            put(registry::put_volunteer),
        )
        .route(
            "/v1/communities/{community}/tricycles/{tricycle}",
            put(registry::put_tricycle),
        )
        .route(
            "/v1/communities/{community}/vehicles/{vehicle}",
            put(registry::put_vehicle),
        )
        .route_layer(axum::middleware::from_fn_with_state(
            Arc::clone(&api),
            partitions::served_here,
        ))
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&api),
            not_older_than,
        ))
        .with_state(api)
}

/// The request header asking that a read reflect at least stream sequence N (the
/// `stream_sequence` a command answered, through any replica).
pub const MIN_SEQUENCE_HEADER: &str = "lifeline-min-sequence";

/// How long a request with [`MIN_SEQUENCE_HEADER`] waits for this replica to catch up.
const MIN_SEQUENCE_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Read-your-writes for every read (GET): it runs once this replica's projections have
/// applied every command this replica appended before the read arrived, and, with
/// [`MIN_SEQUENCE_HEADER`], that sequence too (a write made through another replica).
/// 503 with `Retry-After` when they do not within 5 s (a replica far behind; another may
/// answer). 400 for a hint that is not a sequence number, or one beyond the stream's head
/// (no command was ever answered with it).
async fn not_older_than(
    State(api): State<Arc<Api>>,
    request: Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    if request.method() != axum::http::Method::GET {
        return next.run(request).await;
    }
    let mut target = api.last_appended.load(std::sync::atomic::Ordering::Relaxed);
    if let Some(value) = request.headers().get(MIN_SEQUENCE_HEADER) {
        let Some(sequence) = value
            .to_str()
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
        else {
            return ApiError::BadRequest(format!(
                "{MIN_SEQUENCE_HEADER} must be a stream sequence number"
            ))
            .into_response();
        };
        let Ok(head) = api.head.head().await else {
            return ApiError::Unavailable.into_response();
        };
        if sequence > head {
            return ApiError::BadRequest(format!(
                "{MIN_SEQUENCE_HEADER} {sequence} is beyond the stream's head ({head})"
            ))
            .into_response();
        }
        target = target.max(sequence);
    }
    if target > 0 && !api.applied(target, MIN_SEQUENCE_WAIT).await {
        return ApiError::Unavailable.into_response();
    }
    next.run(request).await
}

// ---- extraction ---------------------------------------------------------------------------

/// A JSON body whose rejections are API errors: bad syntax 400, wrong shape 422, too
/// large 413, not JSON 415.
pub struct Body<T>(pub T);

impl<S, T> FromRequest<S> for Body<T>
where
    Json<T>: FromRequest<S, Rejection = axum::extract::rejection::JsonRejection>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(request, state).await {
            Ok(Json(value)) => Ok(Body(value)),
            Err(rejection) => Err(match rejection.status() {
                StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge(BODY_LIMIT),
                StatusCode::UNSUPPORTED_MEDIA_TYPE => {
                    ApiError::UnsupportedMediaType(rejection.body_text())
                }
                StatusCode::UNPROCESSABLE_ENTITY => ApiError::Unprocessable(rejection.body_text()),
                _ => ApiError::BadRequest(rejection.body_text()),
            }),
        }
    }
}

/// Query parameters whose rejection is a JSON 400 like every other error.
pub struct Params<T>(pub T);

impl<S, T> axum::extract::FromRequestParts<S> for Params<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        <Query<T> as FromRequestParts<S>>::from_request_parts(parts, state)
            .await
            .map(|Query(value)| Params(value))
            .map_err(|rejection| ApiError::BadRequest(rejection.body_text()))
    }
}

/// The correlation id of a request: the trace id of an incoming W3C `traceparent`, an
/// `X-Correlation-Id` UUID, or a fresh one. It travels in every event the request causes.
/// Which request or event a command follows: its correlation id, and the event that caused
/// it when there is one (a pick follows its order's `order.placed`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Trace {
    pub correlation: Uuid,
    pub causation: Option<Uuid>,
}

impl From<Uuid> for Trace {
    fn from(correlation: Uuid) -> Self {
        Trace {
            correlation,
            causation: None,
        }
    }
}

pub fn correlation_id(headers: &HeaderMap) -> Uuid {
    let from_traceparent = headers
        .get("traceparent")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split('-').nth(1))
        .and_then(|trace| Uuid::try_parse(trace).ok());
    let from_header = headers
        .get("x-correlation-id")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| Uuid::try_parse(value).ok());
    from_traceparent
        .or(from_header)
        .unwrap_or_else(lifeline_events::new_event_id)
}

// ---- reading ------------------------------------------------------------------------------

/// Runs a RocksDB read on the blocking pool, never on an async worker.
async fn blocking<T, F>(read: F) -> Result<T, ApiError>
where
    F: FnOnce() -> Result<T, lifeline_store::StoreError> + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(read)
        .await
        .map_err(|error| ApiError::Internal(error.to_string()))?
        .map_err(ApiError::from)
}

fn token_or_404(value: &str, what: &str) -> Result<(), ApiError> {
    if is_token(value) {
        Ok(())
    } else {
        Err(ApiError::NotFound(format!("no {what} {value:?}")))
    }
}

fn to_json<T: Serialize>(value: &T) -> serde_json::Value {
    serde_json::to_value(value).unwrap_or(serde_json::Value::Null)
}

/// A list of orders, as every order list is answered.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct OrderList {
    pub orders: Vec<OrderRecord>,
}

/// The 202 answer to a command (a retry with the same idempotency key gets the same).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Accepted {
    /// The order acted on (cancel, pick, drop).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order: Option<String>,
    /// The run acted on (depart, return).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run: Option<String>,
    /// The arrival's id (an arrival).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arrival: Option<String>,
    /// The courier riding (a departure).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub courier: Option<String>,
    /// `delivered` or `failed` (a drop).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    #[schema(value_type = String, example = "0192f0c4-7a1e-7c3b-9d2e-5b6a8c9d0e1f")]
    pub event_id: Uuid,
    pub stream_sequence: u64,
}

impl From<Appended> for Accepted {
    fn from(appended: Appended) -> Self {
        Accepted {
            order: None,
            run: None,
            arrival: None,
            courier: None,
            outcome: None,
            event_id: appended.event_id,
            stream_sequence: appended.stream_sequence,
        }
    }
}

impl Api {
    fn views_of<'a>(
        registry: &'a StoreState<'a>,
        inventory: &'a StoreState<'a>,
        delivery: &'a StoreState<'a>,
    ) -> Views<'a> {
        Views {
            registry,
            inventory,
            delivery,
        }
    }

    /// Runs a domain decision against the projections, on the blocking pool.
    async fn decide<T, F>(&self, decide: F) -> Result<T, ApiError>
    where
        F: FnOnce(&Views<'_>) -> Result<T, CommandError> + Send + 'static,
        T: Send + 'static,
    {
        let registry = Arc::clone(&self.registry);
        let inventory = Arc::clone(&self.inventory);
        let delivery = Arc::clone(&self.delivery);
        tokio::task::spawn_blocking(move || {
            let (registry, inventory, delivery) = (
                StoreState(&registry),
                StoreState(&inventory),
                StoreState(&delivery),
            );
            decide(&Api::views_of(&registry, &inventory, &delivery))
        })
        .await
        .map_err(|error| ApiError::Internal(error.to_string()))?
        .map_err(ApiError::from)
    }

    async fn order(&self, order: &str) -> Result<Option<OrderRecord>, ApiError> {
        if !is_token(order) {
            return Ok(None);
        }
        let id = order.to_owned();
        if let Some(record) = self.decide(move |views| views.order(&id)).await? {
            return Ok(Some(record));
        }
        // Not (yet) in the projection: before saying 404, let delivery catch up with the
        // stream as it is now, so an order placed a moment ago (or while this replica was
        // behind) is found, and a projection that cannot catch up says 503, not 404.
        self.caught_up_with_stream().await?;
        let id = order.to_owned();
        let found = self.decide(move |views| views.order(&id)).await?;
        if found.is_none() {
            self.served_by_id(&lifeline_events::order_subject("*", order))
                .await?;
        }
        Ok(found)
    }

    /// The household `id`, which the caller must act for (its resident, staff of its
    /// community): 422 `unknown_household`, or 403 saying the caller may not `what`.
    async fn household_acted_for(
        &self,
        caller: &Caller,
        id: &str,
        what: &str,
    ) -> Result<lifeline_events::HouseholdRegistered, ApiError> {
        let wanted = id.to_owned();
        let mut found = self.decide(move |views| views.household(&wanted)).await?;
        if found.is_none() {
            // Registered a moment ago, or this replica is behind: look again once the
            // registry has caught up with the stream (503 if it cannot), never a stale 422.
            self.caught_up_with_stream().await?;
            let wanted = id.to_owned();
            found = self.decide(move |views| views.household(&wanted)).await?;
        }
        let household = found.ok_or_else(|| {
            ApiError::from(CommandError::UnknownHousehold {
                household: id.to_owned(),
            })
        })?;
        if !caller.acts_for_household(&household.community, &household.household) {
            return Err(caller.forbidden(what));
        }
        Ok(household)
    }

    /// Whether the projections the API reads (registry, delivery, inventory) have all
    /// applied stream sequence `sequence`, waiting up to `limit` (without polling).
    pub(crate) async fn applied(&self, sequence: u64, limit: std::time::Duration) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        for status in [
            &self.registry_status,
            &self.delivery_status,
            &self.inventory_status,
        ] {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if !status.reached(sequence, left).await {
                return false;
            }
        }
        true
    }

    /// Waits (3 s at most) until the registry, delivery and inventory projections have
    /// applied everything in the stream now; `Unavailable` (503, `Retry-After`) when they
    /// cannot.
    async fn caught_up_with_stream(&self) -> Result<(), ApiError> {
        let head = self.head.head().await.map_err(|_| ApiError::Unavailable)?;
        let deadline = std::time::Duration::from_secs(3);
        for status in [
            &self.registry_status,
            &self.delivery_status,
            &self.inventory_status,
        ] {
            if !status.reached(head, deadline).await {
                return Err(ApiError::Unavailable);
            }
        }
        Ok(())
    }

    /// A campaign as started, looked up again once the projections caught up with the
    /// stream when it is not (yet) there.
    async fn campaign(
        &self,
        campaign: &str,
    ) -> Result<Option<lifeline_events::CampaignStarted>, ApiError> {
        let id = campaign.to_owned();
        if let Some(found) = self.decide(move |views| views.campaign(&id)).await? {
            return Ok(Some(found));
        }
        self.caught_up_with_stream().await?;
        let id = campaign.to_owned();
        let found = self.decide(move |views| views.campaign(&id)).await?;
        if found.is_none() && is_token(campaign) {
            self.served_by_id(&lifeline_events::campaign_subject("*", campaign))
                .await?;
        }
        Ok(found)
    }

    async fn run(&self, run: &str) -> Result<RunRecord, ApiError> {
        token_or_404(run, "run")?;
        let id = run.to_owned();
        if let Some(record) = self.decide(move |views| views.run(&id)).await? {
            return Ok(record);
        }
        // As for orders: a run planned a moment ago is found once delivery catches up.
        self.caught_up_with_stream().await?;
        let id = run.to_owned();
        match self.decide(move |views| views.run(&id)).await? {
            Some(record) => Ok(record),
            None => {
                self.served_by_id(&lifeline_events::run_subject("*", run))
                    .await?;
                Err(ApiError::NotFound(format!("no run {run}")))
            }
        }
    }

    fn meta(&self, caller: &Caller, trace: Trace) -> EventMeta {
        let kind = match caller.0.role {
            Role::Resident => ActorKind::Resident,
            Role::Staff => ActorKind::Staff,
            Role::Partner => ActorKind::Partner,
            Role::Courier => ActorKind::Courier,
            Role::Operator => ActorKind::Operator,
        };
        // A resident acts as their household (docs/events.md, the envelope's `actor`).
        let id = match (&caller.0.role, &caller.0.household) {
            (Role::Resident, Some(household)) => household.clone(),
            _ => caller.0.id.clone(),
        };
        EventMeta {
            time: time::OffsetDateTime::now_utc(),
            source: "lifeline-gateway".to_owned(),
            actor: Actor::new(kind, id),
            correlation_id: trace.correlation,
            causation_id: trace.causation,
        }
    }
}
