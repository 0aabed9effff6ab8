//! The `/v1` API. Every command is validated against the projections before anything is
//! appended; a rejected command publishes nothing. Reads come from the projections and are
//! eventually consistent with the stream (usually milliseconds behind).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use axum::extract::{FromRequest, Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use lifeline_bus::async_nats::jetstream;
use lifeline_bus::{Publisher, read_dead_letters};
use lifeline_domain::delivery::{OrderRecord, RunRecord, RunState, validate_pick_lines};
use lifeline_domain::order::{Stage, Step};
use lifeline_events::{
    Actor, ActorKind, ArrivedAtCheckpoint, DropDelivered, DropFailed, DropFailure, EVENT_STREAM,
    Envelope, Event, EventMeta, ItemKind, OrderCancelled, OrderLine, OrderPicked, OrderPlaced,
    PickLine, Priority, Proof, RunDeparted, RunReturned, StockReceived, is_token,
};
use lifeline_store::ProjectionStore;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::access::{Access, Caller, HasAccess, Role};
use crate::error::{ApiError, ErrorBody};
use crate::idempotency::{Idempotency, key_from};

/// Request bodies above this are refused with 413.
pub const BODY_LIMIT: usize = 64 * 1024;

/// Delivery deadlines by priority: the operators' "late" list and the alert rules use them.
pub fn deadline_seconds(priority: Priority) -> i64 {
    match priority {
        Priority::Urgent => 2 * 3600,
        Priority::Priority => 6 * 3600,
        Priority::Routine => 12 * 3600,
    }
}

/// What the API needs: the publisher, the projections it validates against, the access table.
pub struct Api {
    pub publisher: Publisher,
    pub jetstream: jetstream::Context,
    pub registry: Arc<ProjectionStore>,
    pub delivery: Arc<ProjectionStore>,
    pub inventory: Arc<ProjectionStore>,
    pub idempotency: Idempotency,
    pub access: Access,
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
        .route("/v1/orders", post(place_order))
        .route("/v1/orders/{order}", get(get_order))
        .route("/v1/orders/{order}/cancel", post(cancel_order))
        .route("/v1/households/{household}/orders", get(household_orders))
        .route("/v1/partners/{partner}/orders", get(partner_orders))
        .route("/v1/partners/{partner}/picks", post(post_pick))
        .route(
            "/v1/partners/{partner}/stock",
            get(partner_stock).post(restock),
        )
        .route("/v1/communities/{community}/ready", get(ready_orders))
        .route("/v1/communities/{community}/arrivals", post(post_arrival))
        .route("/v1/communities/{community}/runs", get(community_runs))
        .route(
            "/v1/communities/{community}/summary",
            get(community_summary),
        )
        .route("/v1/runs/{run}/depart", post(depart_run))
        .route("/v1/runs/{run}/return", post(return_run))
        .route("/v1/runs/{run}/manifest", get(run_manifest))
        .route("/v1/runs/{run}/drops", post(post_drop))
        .route("/v1/stuck", get(stuck_orders))
        .route("/v1/dead-letters", get(dead_letters))
        .route("/v1/stock", get(all_stock))
        .with_state(api)
}

// ---- extraction and helpers -------------------------------------------------------------

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
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(value)| Params(value))
            .map_err(|rejection| ApiError::BadRequest(rejection.body_text()))
    }
}

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

impl Api {
    async fn order(&self, order: &str) -> Result<Option<OrderRecord>, ApiError> {
        let store = Arc::clone(&self.delivery);
        let order = order.to_owned();
        blocking(move || lifeline_delivery::order(&store, &order)).await
    }

    async fn run(&self, run: &str) -> Result<RunRecord, ApiError> {
        token_or_404(run, "run")?;
        let store = Arc::clone(&self.delivery);
        let id = run.to_owned();
        blocking(move || lifeline_delivery::run(&store, &id))
            .await?
            .ok_or_else(|| ApiError::NotFound(format!("no run {run}")))
    }

    /// A registry row by id; `None` when unknown or not even a valid id.
    async fn registered<T, F>(&self, id: &str, read: F) -> Result<Option<T>, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&ProjectionStore, &str) -> Result<Option<T>, lifeline_store::StoreError>
            + Send
            + 'static,
    {
        if !is_token(id) {
            return Ok(None);
        }
        let registry = Arc::clone(&self.registry);
        let id = id.to_owned();
        blocking(move || read(&registry, &id)).await
    }

    async fn item(&self, item: &str) -> Result<Option<lifeline_events::ItemRegistered>, ApiError> {
        self.registered(item, lifeline_registry::item).await
    }

    fn meta(&self, caller: &Caller, correlation_id: Uuid) -> EventMeta {
        let kind = match caller.0.role {
            Role::Resident => ActorKind::Resident,
            Role::Staff => ActorKind::Staff,
            Role::Partner => ActorKind::Partner,
            Role::Courier => ActorKind::Courier,
            Role::Operator => ActorKind::Operator,
        };
        EventMeta {
            time: time::OffsetDateTime::now_utc(),
            source: "lifeline-gateway".to_owned(),
            actor: Actor::new(kind, caller.0.id.clone()),
            correlation_id,
            causation_id: None,
        }
    }

    /// Publishes one event; `expected` is the aggregate subject's last sequence.
    async fn append(&self, envelope: &Envelope, expected: Option<u64>) -> Result<u64, ApiError> {
        let published = self.publisher.publish(envelope, expected).await?;
        tracing::info!(
            event_id = %envelope.id,
            correlation_id = %envelope.correlation_id,
            r#type = envelope.event_type(),
            sequence = published.sequence,
            duplicate = published.duplicate,
            "command appended"
        );
        Ok(published.sequence)
    }

    /// Optimistic concurrency on one aggregate: the sequence of the last message on its
    /// subject, once the delivery projection has applied it. Validating after this and
    /// publishing with it as the expected last subject sequence means any write to the
    /// aggregate in between makes the publish fail with a conflict (409).
    async fn settled_sequence(&self, subject: &str) -> Result<u64, ApiError> {
        let expected = self.last_sequence(subject).await?;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
        loop {
            let store = Arc::clone(&self.delivery);
            if blocking(move || store.position()).await? >= expected {
                return Ok(expected);
            }
            if std::time::Instant::now() > deadline {
                // The projection is behind: the client retries later.
                return Err(ApiError::Unavailable);
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }

    /// The stream sequence of the event with this id on `subject`, if the stream holds it:
    /// a retry whose first attempt was published (and its acknowledgement lost) finds it
    /// here, even after JetStream's duplicate window.
    async fn stored(&self, subject: &str, event_id: Uuid) -> Result<Option<u64>, ApiError> {
        let stream = self
            .jetstream
            .get_stream(EVENT_STREAM)
            .await
            .map_err(|_| ApiError::Unavailable)?;
        let mut from = 1;
        loop {
            match stream
                .direct_get_next_for_subject(subject, Some(from))
                .await
            {
                Ok(message) => {
                    if Envelope::decode(&message.payload)
                        .is_ok_and(|envelope| envelope.id == event_id)
                    {
                        return Ok(Some(message.sequence));
                    }
                    from = message.sequence + 1;
                }
                Err(error) if error.kind() == jetstream::stream::DirectGetErrorKind::NotFound => {
                    return Ok(None);
                }
                Err(_) => return Err(ApiError::Unavailable),
            }
        }
    }

    /// For a retry whose first attempt may have been published: where the stream holds it.
    async fn already_stored(
        &self,
        maybe_published: bool,
        envelope: &Envelope,
    ) -> Result<Option<u64>, ApiError> {
        if !maybe_published {
            return Ok(None);
        }
        self.stored(&envelope.subject, envelope.id).await
    }

    /// The sequence of the last message on `subject` (0 when none), for optimistic
    /// concurrency on that aggregate.
    async fn last_sequence(&self, subject: &str) -> Result<u64, ApiError> {
        let stream = self
            .jetstream
            .get_stream(EVENT_STREAM)
            .await
            .map_err(|_| ApiError::Unavailable)?;
        match stream.get_last_raw_message_by_subject(subject).await {
            Ok(message) => Ok(message.sequence),
            Err(error)
                if error.kind() == jetstream::stream::LastRawMessageErrorKind::NoMessageFound =>
            {
                Ok(0)
            }
            Err(_) => Err(ApiError::Unavailable),
        }
    }
}

/// The correlation id of a request: the trace id of an incoming W3C `traceparent`, an
/// `X-Correlation-Id` UUID, or a fresh one. It travels in every event the request causes.
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

fn respond(status: StatusCode, body: serde_json::Value) -> Response {
    (status, Json(body)).into_response()
}

fn to_json<T: Serialize>(value: &T) -> serde_json::Value {
    serde_json::to_value(value).unwrap_or(serde_json::Value::Null)
}

// ---- residents and staff ----------------------------------------------------------------

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LineRequest {
    /// A catalogue item or set package, e.g. `veg-pack`.
    pub item: String,
    /// 1 to 100.
    pub quantity: u32,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlaceOrder {
    pub household: String,
    /// The supermarket partner that picks it, e.g. `yonghui`.
    pub partner: String,
    pub lines: Vec<LineRequest>,
    /// At least this priority; medicine makes an order urgent and a vulnerable household
    /// makes it priority whatever is asked.
    #[serde(default)]
    #[schema(value_type = Option<String>, example = "routine")]
    pub priority: Option<Priority>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OrderAccepted {
    pub order: String,
    pub community: String,
    pub household: String,
    #[schema(value_type = String, example = "urgent")]
    pub priority: Priority,
    pub event_id: String,
    pub stream_sequence: u64,
}

/// Place an order for a household (a resident for their own, staff for any household in
/// their community; staff orders are recorded as placed on the household's behalf).
#[utoipa::path(post, path = "/v1/orders", tag = "residents", request_body = PlaceOrder,
    params(("Idempotency-Key" = Option<String>, Header, description = "Client-chosen key; a retry with the same key returns the first answer and appends nothing")),
    responses(
        (status = 202, description = "order placed", body = OrderAccepted),
        (status = 400, description = "malformed JSON", body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 413, body = ErrorBody),
        (status = 422, description = "unknown household, partner or item, or a bad quantity", body = ErrorBody),
    ),
    security(("bearer" = [])))]
async fn place_order(
    State(api): State<Arc<Api>>,
    caller: Caller,
    headers: HeaderMap,
    Body(request): Body<PlaceOrder>,
) -> Result<Response, ApiError> {
    let key = key_from(&headers)?;
    let correlation = correlation_id(&headers);
    if !matches!(caller.0.role, Role::Resident | Role::Staff) {
        return Err(caller.forbidden("place orders"));
    }
    if request.lines.is_empty() {
        return Err(ApiError::Unprocessable(
            "an order needs at least one line".into(),
        ));
    }
    let household = api
        .registered(&request.household, lifeline_registry::household)
        .await?
        .ok_or_else(|| {
            ApiError::Unprocessable(format!("unknown household {:?}", request.household))
        })?;
    if !caller.acts_for_household(&household.community, &household.household) {
        return Err(caller.forbidden("order for this household"));
    }
    let partner = request.partner.clone();
    let inventory = Arc::clone(&api.inventory);
    let partner_stock = if is_token(&partner) {
        blocking(move || lifeline_inventory::stock(&inventory, Some(&partner))).await?
    } else {
        Vec::new()
    };
    if partner_stock.is_empty() {
        return Err(ApiError::Unprocessable(format!(
            "unknown partner {:?}",
            request.partner
        )));
    }
    let mut seen = BTreeSet::new();
    let mut weight_g: u32 = 0;
    let mut has_medicine = false;
    let mut lines = Vec::with_capacity(request.lines.len());
    for line in &request.lines {
        if !(1..=100).contains(&line.quantity) {
            return Err(ApiError::Unprocessable(format!(
                "quantity of {} must be 1 to 100",
                line.item
            )));
        }
        if !seen.insert(line.item.clone()) {
            return Err(ApiError::Unprocessable(format!(
                "item {} appears twice",
                line.item
            )));
        }
        let item = api
            .item(&line.item)
            .await?
            .ok_or_else(|| ApiError::Unprocessable(format!("unknown item {:?}", line.item)))?;
        has_medicine |= item.kind == ItemKind::Medicine;
        weight_g = weight_g.saturating_add(item.weight_g.saturating_mul(line.quantity));
        lines.push(OrderLine {
            item: line.item.clone(),
            quantity: line.quantity,
        });
    }
    let floor = if has_medicine {
        Priority::Urgent
    } else if household.vulnerabilities.is_empty() {
        Priority::Routine
    } else {
        Priority::Priority
    };
    let priority = request.priority.unwrap_or_default().max(floor);
    let (status, body) = api
        .idempotency
        .run(&caller.0.id, key, |event_id, maybe_published| {
            let (api, caller) = (&api, &caller);
            async move {
                let order = event_id.to_string();
                let placed = OrderPlaced {
                    order: order.clone(),
                    community: household.community.clone(),
                    building: household.building.clone(),
                    unit: household.unit.clone(),
                    household: household.household.clone(),
                    partner: request.partner.clone(),
                    lines,
                    priority,
                    weight_g,
                    on_behalf_by: caller.is(Role::Staff).then(|| caller.0.id.clone()),
                };
                let envelope = Envelope::with_id(
                    event_id,
                    Event::OrderPlaced(placed),
                    api.meta(caller, correlation),
                );
                // A new order's subject must be empty: a second order with this id is refused.
                let sequence = match api.already_stored(maybe_published, &envelope).await? {
                    Some(sequence) => sequence,
                    None => api.append(&envelope, Some(0)).await?,
                };
                let accepted = OrderAccepted {
                    order,
                    community: household.community.clone(),
                    household: household.household.clone(),
                    priority,
                    event_id: event_id.to_string(),
                    stream_sequence: sequence,
                };
                Ok((StatusCode::ACCEPTED, to_json(&accepted)))
            }
        })
        .await?;
    Ok(respond(status, body))
}

/// An order's stage, items and full history.
#[utoipa::path(get, path = "/v1/orders/{order}", tag = "residents",
    params(("order" = String, Path)),
    responses((status = 200, description = "the order with its history", body = Object), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
async fn get_order(
    State(api): State<Arc<Api>>,
    caller: Caller,
    Path(order): Path<String>,
) -> Result<Response, ApiError> {
    let record = visible_order(&api, &caller, &order).await?;
    Ok(Json(record).into_response())
}

/// Loads an order the caller may see: its household's people, staff of its community,
/// its partner, operators.
async fn visible_order(api: &Api, caller: &Caller, order: &str) -> Result<OrderRecord, ApiError> {
    token_or_404(order, "order")?;
    let record = api
        .order(order)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no order {order}")))?;
    let allowed = caller.acts_for_household(&record.community, &record.household)
        || caller.is_partner(&record.partner);
    if !allowed {
        return Err(caller.forbidden("see this order"));
    }
    Ok(record)
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelOrder {
    #[serde(default)]
    pub reason: Option<String>,
}

/// Cancel an order before its partner picks it.
#[utoipa::path(post, path = "/v1/orders/{order}/cancel", tag = "residents", request_body = CancelOrder,
    params(("order" = String, Path)),
    responses((status = 202, body = Object), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "already picked, delivered or cancelled, or changed concurrently", body = ErrorBody)),
    security(("bearer" = [])))]
async fn cancel_order(
    State(api): State<Arc<Api>>,
    caller: Caller,
    headers: HeaderMap,
    Path(order): Path<String>,
    Body(request): Body<CancelOrder>,
) -> Result<Response, ApiError> {
    let record = visible_order(&api, &caller, &order).await?;
    if !caller.acts_for_household(&record.community, &record.household) {
        return Err(caller.forbidden("cancel this order"));
    }
    let expected = api
        .settled_sequence(&lifeline_events::order_subject(&record.community, &order))
        .await?;
    let record = visible_order(&api, &caller, &order).await?;
    if record.status.next(Step::Cancel).is_err() {
        return Err(ApiError::Conflict(format!(
            "order {order} is {} and can no longer be cancelled",
            record.status.stage.as_str()
        )));
    }
    let event = Event::OrderCancelled(OrderCancelled {
        order: order.clone(),
        community: record.community.clone(),
        reason: request
            .reason
            .unwrap_or_else(|| "cancelled by the household".into()),
    });
    let envelope = Envelope::new(event, api.meta(&caller, correlation_id(&headers)));
    let sequence = api.append(&envelope, Some(expected)).await?;
    Ok(respond(
        StatusCode::ACCEPTED,
        serde_json::json!({"order": order, "event_id": envelope.id, "stream_sequence": sequence}),
    ))
}

/// A household's orders.
#[utoipa::path(get, path = "/v1/households/{household}/orders", tag = "residents",
    params(("household" = String, Path)),
    responses((status = 200, body = Object), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
async fn household_orders(
    State(api): State<Arc<Api>>,
    caller: Caller,
    Path(household): Path<String>,
) -> Result<Response, ApiError> {
    token_or_404(&household, "household")?;
    let known = api
        .registered(&household, lifeline_registry::household)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no household {household}")))?;
    if !caller.acts_for_household(&known.community, &known.household) {
        return Err(caller.forbidden("see this household"));
    }
    let store = Arc::clone(&api.delivery);
    let orders =
        blocking(move || lifeline_delivery::orders_of_household(&store, &household)).await?;
    Ok(Json(serde_json::json!({ "orders": orders })).into_response())
}

// ---- partners -------------------------------------------------------------------------

#[derive(Debug, Deserialize, IntoParams)]
pub struct StageFilter {
    /// Stage to list (default `placed`: waiting to be picked).
    pub stage: Option<String>,
}

fn check_partner(caller: &Caller, partner: &str) -> Result<(), ApiError> {
    token_or_404(partner, "partner")?;
    if caller.is_partner(partner) || caller.is(Role::Operator) {
        Ok(())
    } else {
        Err(caller.forbidden("act for this partner"))
    }
}

/// The partner's orders in a stage (default: waiting to be picked).
#[utoipa::path(get, path = "/v1/partners/{partner}/orders", tag = "partners",
    params(("partner" = String, Path), StageFilter),
    responses((status = 200, body = Object), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = [])))]
async fn partner_orders(
    State(api): State<Arc<Api>>,
    caller: Caller,
    Path(partner): Path<String>,
    Params(filter): Params<StageFilter>,
) -> Result<Response, ApiError> {
    check_partner(&caller, &partner)?;
    let stage = filter.stage.unwrap_or_else(|| "placed".into());
    if !Stage::ALL.iter().any(|s| s.as_str() == stage) {
        return Err(ApiError::BadRequest(format!("unknown stage {stage:?}")));
    }
    let store = Arc::clone(&api.delivery);
    let orders = blocking(move || lifeline_delivery::orders_of_partner(&store, &partner)).await?;
    let orders: Vec<OrderRecord> = orders
        .into_iter()
        .filter(|o| o.status.stage.as_str() == stage)
        .collect();
    Ok(Json(serde_json::json!({ "orders": orders })).into_response())
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PostPick {
    pub order: String,
    /// One line per ordered item: `outcome` `picked` (picked == ordered), `short`
    /// (picked < ordered) or `substituted` (with `substitute`).
    #[schema(value_type = Vec<Object>)]
    pub lines: Vec<PickLine>,
}

/// Post the pick of one of the partner's orders.
#[utoipa::path(post, path = "/v1/partners/{partner}/picks", tag = "partners", request_body = PostPick,
    params(("partner" = String, Path), ("Idempotency-Key" = Option<String>, Header)),
    responses((status = 202, body = Object), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, description = "another partner's order", body = ErrorBody),
        (status = 409, description = "not waiting to be picked", body = ErrorBody),
        (status = 422, description = "unknown order or item, or lines that do not match the order", body = ErrorBody)),
    security(("bearer" = [])))]
async fn post_pick(
    State(api): State<Arc<Api>>,
    caller: Caller,
    headers: HeaderMap,
    Path(partner): Path<String>,
    Body(request): Body<PostPick>,
) -> Result<Response, ApiError> {
    check_partner(&caller, &partner)?;
    let key = key_from(&headers)?;
    let correlation = correlation_id(&headers);
    // Checked inside the idempotent section: a retry of an accepted pick finds the order
    // picked already, and must get the first answer rather than a conflict.
    let (status, body) = api
        .idempotency
        .run(&caller.0.id, key, |event_id, maybe_published| {
            let (api, caller) = (&api, &caller);
            async move {
                if maybe_published
                    && let Some(record) = api.order(&request.order).await?
                    && let Some(sequence) = api
                        .stored(&lifeline_events::pick_subject(&record.community, &partner, &record.order), event_id)
                        .await?
                {
                    return Ok((StatusCode::ACCEPTED, serde_json::json!({"order": record.order, "event_id": event_id, "stream_sequence": sequence})));
                }
                let (picked, expected) = checked_pick(api, caller, &partner, request).await?;
                let order = picked.order.clone();
                let envelope = Envelope::with_id(event_id, Event::OrderPicked(picked), api.meta(caller, correlation));
                let sequence = api.append(&envelope, Some(expected)).await?;
                Ok((StatusCode::ACCEPTED, serde_json::json!({"order": order, "event_id": event_id, "stream_sequence": sequence})))
            }
        })
        .await?;
    Ok(respond(status, body))
}

/// The pick as an event, if the order is the partner's, waiting to be picked, and the lines
/// answer each ordered line once with known items.
async fn checked_pick(
    api: &Api,
    caller: &Caller,
    partner: &str,
    request: PostPick,
) -> Result<(OrderPicked, u64), ApiError> {
    let record = if is_token(&request.order) {
        api.order(&request.order).await?
    } else {
        None
    };
    let record = record
        .ok_or_else(|| ApiError::Unprocessable(format!("unknown order {:?}", request.order)))?;
    if record.partner != partner {
        return Err(caller.forbidden("pick another partner's order"));
    }
    let expected = api
        .settled_sequence(&lifeline_events::pick_subject(
            &record.community,
            partner,
            &record.order,
        ))
        .await?;
    let record = api.order(&record.order).await?.unwrap_or(record);
    if record.status.stage != Stage::Placed {
        return Err(ApiError::Conflict(format!(
            "order {} is {}, not waiting to be picked",
            record.order,
            record.status.stage.as_str()
        )));
    }
    let picked = OrderPicked {
        order: record.order.clone(),
        community: record.community.clone(),
        partner: partner.to_owned(),
        lines: request.lines,
    };
    validate_pick_lines(&picked).map_err(|rejection| ApiError::Unprocessable(rejection.detail))?;
    let ordered: BTreeMap<&str, u32> = record
        .items
        .iter()
        .map(|line| (line.item.as_str(), line.quantity))
        .collect();
    let answered: BTreeMap<&str, u32> = picked
        .lines
        .iter()
        .map(|line| (line.item.as_str(), line.ordered))
        .collect();
    if ordered != answered || answered.len() != picked.lines.len() {
        return Err(ApiError::Unprocessable(
            "the pick must answer each ordered line once, with its ordered quantity".into(),
        ));
    }
    for substitute in picked
        .lines
        .iter()
        .filter_map(|line| line.substitute.as_ref())
    {
        if api.item(&substitute.item).await?.is_none() {
            return Err(ApiError::Unprocessable(format!(
                "unknown substitute item {:?}",
                substitute.item
            )));
        }
    }
    check_pick_stock(api, &picked).await?;
    Ok((picked, expected))
}

/// What the pick takes off the shelf must be there: beyond each line's own reservation it
/// needs available stock, and a substitute needs its own. Otherwise inventory would refuse
/// the pick while delivery accepted it (409 here instead).
async fn check_pick_stock(api: &Api, picked: &OrderPicked) -> Result<(), ApiError> {
    let inventory = Arc::clone(&api.inventory);
    let order = picked.order.clone();
    let partner = picked.partner.clone();
    let (reservation, stock) = blocking(move || {
        Ok((
            lifeline_inventory::reservation(&inventory, &order)?,
            lifeline_inventory::stock(&inventory, Some(&partner))?,
        ))
    })
    .await?;
    // The inventory projection has not seen the order yet: try again in a moment.
    let reservation = reservation.ok_or(ApiError::Unavailable)?;
    let mut available: BTreeMap<String, u64> = stock
        .iter()
        .map(|row| (row.item.clone(), row.available))
        .collect();
    // The pick releases the order's whole reservation first.
    for line in &reservation.lines {
        *available.entry(line.item.clone()).or_default() += u64::from(line.reserved);
    }
    let mut take = |item: &str, quantity: u32| -> Result<(), ApiError> {
        let left = available.entry(item.to_owned()).or_default();
        if *left < u64::from(quantity) {
            return Err(ApiError::Conflict(format!(
                "only {left} of {item} can be picked, not {quantity}"
            )));
        }
        *left -= u64::from(quantity);
        Ok(())
    };
    for line in &picked.lines {
        take(&line.item, line.picked)?;
        if let Some(substitute) = &line.substitute {
            take(&substitute.item, substitute.quantity)?;
        }
    }
    Ok(())
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Restock {
    pub item: String,
    /// 1 to 1,000,000.
    pub quantity: u32,
}

/// Record goods received into the partner's stock.
#[utoipa::path(post, path = "/v1/partners/{partner}/stock", tag = "partners", request_body = Restock,
    params(("partner" = String, Path), ("Idempotency-Key" = Option<String>, Header)),
    responses((status = 202, body = Object), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
async fn restock(
    State(api): State<Arc<Api>>,
    caller: Caller,
    headers: HeaderMap,
    Path(partner): Path<String>,
    Body(request): Body<Restock>,
) -> Result<Response, ApiError> {
    check_partner(&caller, &partner)?;
    let key = key_from(&headers)?;
    let correlation = correlation_id(&headers);
    if !(1..=1_000_000).contains(&request.quantity) {
        return Err(ApiError::Unprocessable(
            "quantity must be 1 to 1,000,000".into(),
        ));
    }
    let known = api.item(&request.item).await?.is_some();
    if !known {
        return Err(ApiError::Unprocessable(format!(
            "unknown item {:?}",
            request.item
        )));
    }
    let (status, body) = api
        .idempotency
        .run(&caller.0.id, key, |event_id, maybe_published| {
            let (api, caller) = (&api, &caller);
            async move {
                let event = Event::StockReceived(StockReceived {
                    partner,
                    item: request.item,
                    quantity: request.quantity,
                });
                let envelope = Envelope::with_id(event_id, event, api.meta(caller, correlation));
                let sequence = match api.already_stored(maybe_published, &envelope).await? {
                    Some(sequence) => sequence,
                    None => api.append(&envelope, None).await?,
                };
                Ok((
                    StatusCode::ACCEPTED,
                    serde_json::json!({"event_id": event_id, "stream_sequence": sequence}),
                ))
            }
        })
        .await?;
    Ok(respond(status, body))
}

/// The partner's stock: on hand, reserved by orders, available.
#[utoipa::path(get, path = "/v1/partners/{partner}/stock", tag = "partners",
    params(("partner" = String, Path)),
    responses((status = 200, body = Object), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = [])))]
async fn partner_stock(
    State(api): State<Arc<Api>>,
    caller: Caller,
    Path(partner): Path<String>,
) -> Result<Response, ApiError> {
    check_partner(&caller, &partner)?;
    let store = Arc::clone(&api.inventory);
    let stock = blocking(move || lifeline_inventory::stock(&store, Some(&partner))).await?;
    Ok(Json(serde_json::json!({ "stock": stock })).into_response())
}

// ---- dispatch at the checkpoint ----------------------------------------------------------

fn check_dispatcher(caller: &Caller, community: &str) -> Result<(), ApiError> {
    token_or_404(community, "community")?;
    let allowed =
        (caller.is(Role::Staff) && caller.sees_community(community)) || caller.is(Role::Operator);
    if allowed {
        Ok(())
    } else {
        Err(caller.forbidden("dispatch for this community"))
    }
}

async fn community_orders(api: &Api, community: &str) -> Result<Vec<OrderRecord>, ApiError> {
    let store = Arc::clone(&api.delivery);
    let community = community.to_owned();
    let orders = blocking(move || lifeline_delivery::all_orders(&store)).await?;
    Ok(orders
        .into_iter()
        .filter(|order| order.community == community)
        .collect())
}

/// Orders at the checkpoint, waiting for a tricycle run.
#[utoipa::path(get, path = "/v1/communities/{community}/ready", tag = "dispatch",
    params(("community" = String, Path)),
    responses((status = 200, body = Object), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = [])))]
async fn ready_orders(
    State(api): State<Arc<Api>>,
    caller: Caller,
    Path(community): Path<String>,
) -> Result<Response, ApiError> {
    check_dispatcher(&caller, &community)?;
    let ready: Vec<OrderRecord> = community_orders(&api, &community)
        .await?
        .into_iter()
        .filter(|order| {
            order.status.stage == Stage::AtCheckpoint
                || (order.status.stage == Stage::Failed && !order.is_final)
        })
        .collect();
    Ok(Json(serde_json::json!({ "orders": ready })).into_response())
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PostArrival {
    pub partner: String,
    /// Picked orders the vehicle brought.
    pub orders: Vec<String>,
}

/// Record a partner vehicle's arrival at the checkpoint with picked orders.
#[utoipa::path(post, path = "/v1/communities/{community}/arrivals", tag = "dispatch", request_body = PostArrival,
    params(("community" = String, Path), ("Idempotency-Key" = Option<String>, Header)),
    responses((status = 202, body = Object), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 409, description = "an order is not picked", body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
async fn post_arrival(
    State(api): State<Arc<Api>>,
    caller: Caller,
    headers: HeaderMap,
    Path(community): Path<String>,
    Body(request): Body<PostArrival>,
) -> Result<Response, ApiError> {
    check_dispatcher(&caller, &community)?;
    let key = key_from(&headers)?;
    let correlation = correlation_id(&headers);
    if request.orders.is_empty() || request.orders.len() > 1000 {
        return Err(ApiError::Unprocessable(
            "an arrival carries 1 to 1000 orders".into(),
        ));
    }
    if request.orders.iter().collect::<BTreeSet<_>>().len() != request.orders.len() {
        return Err(ApiError::Unprocessable("an order appears twice".into()));
    }
    let (status, body) = api
        .idempotency
        .run(&caller.0.id, key, |event_id, maybe_published| {
            let (api, caller) = (&api, &caller);
            async move {
                let probe = Envelope::with_id(
                    event_id,
                    Event::ArrivedAtCheckpoint(ArrivedAtCheckpoint {
                        arrival: event_id.to_string(),
                        community: community.clone(),
                        partner: request.partner.clone(),
                        orders: Vec::new(),
                    }),
                    api.meta(caller, correlation),
                );
                if let Some(sequence) = api.already_stored(maybe_published, &probe).await? {
                    return Ok((StatusCode::ACCEPTED, serde_json::json!({"arrival": event_id, "event_id": event_id, "stream_sequence": sequence})));
                }
                // Inside the idempotent section: a retry finds the orders at the checkpoint
                // already and must get the first answer.
                for order in &request.orders {
                    let record = if is_token(order) { api.order(order).await? } else { None };
                    let record = record.ok_or_else(|| ApiError::Unprocessable(format!("unknown order {order:?}")))?;
                    if record.community != community || record.partner != request.partner {
                        return Err(ApiError::Unprocessable(format!(
                            "order {order} is not {}'s order for {community}",
                            request.partner
                        )));
                    }
                    if record.status.stage != Stage::Picked {
                        return Err(ApiError::Conflict(format!(
                            "order {order} is {}, not picked",
                            record.status.stage.as_str()
                        )));
                    }
                }
                let event = Event::ArrivedAtCheckpoint(ArrivedAtCheckpoint {
                    arrival: event_id.to_string(),
                    community,
                    partner: request.partner,
                    orders: request.orders,
                });
                let envelope = Envelope::with_id(event_id, event, api.meta(caller, correlation));
                let sequence = api.append(&envelope, None).await?;
                Ok((StatusCode::ACCEPTED, serde_json::json!({"arrival": event_id, "event_id": event_id, "stream_sequence": sequence})))
            }
        })
        .await?;
    Ok(respond(status, body))
}

/// The community's tricycle runs, planned by dispatch.
#[utoipa::path(get, path = "/v1/communities/{community}/runs", tag = "dispatch",
    params(("community" = String, Path)),
    responses((status = 200, body = Object), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = [])))]
async fn community_runs(
    State(api): State<Arc<Api>>,
    caller: Caller,
    Path(community): Path<String>,
) -> Result<Response, ApiError> {
    check_dispatcher(&caller, &community)?;
    let store = Arc::clone(&api.delivery);
    let runs = blocking(move || lifeline_delivery::all_runs(&store)).await?;
    let runs: Vec<RunRecord> = runs
        .into_iter()
        .filter(|run| run.community == community)
        .collect();
    Ok(Json(serde_json::json!({ "runs": runs })).into_response())
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DepartRun {
    /// The volunteer riding; a courier departing their own run may leave it out.
    #[serde(default)]
    pub courier: Option<String>,
}

/// Mark a planned run departed with its courier (staff of the community, or the courier).
#[utoipa::path(post, path = "/v1/runs/{run}/depart", tag = "dispatch", request_body = DepartRun,
    params(("run" = String, Path)),
    responses((status = 202, body = Object), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "not planned", body = ErrorBody), (status = 422, description = "unknown courier", body = ErrorBody)),
    security(("bearer" = [])))]
async fn depart_run(
    State(api): State<Arc<Api>>,
    caller: Caller,
    headers: HeaderMap,
    Path(run): Path<String>,
    Body(request): Body<DepartRun>,
) -> Result<Response, ApiError> {
    let record = api.run(&run).await?;
    let courier = match caller.0.role {
        Role::Courier if caller.sees_community(&record.community) => {
            if request.courier.as_ref().is_some_and(|c| *c != caller.0.id) {
                return Err(caller.forbidden("depart a run for someone else"));
            }
            caller.0.id.clone()
        }
        Role::Staff | Role::Operator if caller.sees_community(&record.community) => request
            .courier
            .clone()
            .ok_or_else(|| ApiError::Unprocessable("name the courier".into()))?,
        _ => return Err(caller.forbidden("depart this run")),
    };
    let volunteer = api
        .registered(&courier, lifeline_registry::volunteer)
        .await?;
    if volunteer.is_none_or(|v| v.community != record.community) {
        return Err(ApiError::Unprocessable(format!(
            "unknown courier {courier:?} in {}",
            record.community
        )));
    }
    let expected = api
        .settled_sequence(&lifeline_events::run_subject(&record.community, &run))
        .await?;
    let record = api.run(&run).await?;
    if record.state != RunState::Planned {
        return Err(ApiError::Conflict(format!(
            "run {run} is {:?}, not planned",
            record.state
        )));
    }
    let event = Event::RunDeparted(RunDeparted {
        run: run.clone(),
        community: record.community,
        tricycle: record.tricycle,
        courier: courier.clone(),
    });
    let envelope = Envelope::new(event, api.meta(&caller, correlation_id(&headers)));
    let sequence = api.append(&envelope, Some(expected)).await?;
    Ok(respond(
        StatusCode::ACCEPTED,
        serde_json::json!({"run": run, "courier": courier, "event_id": envelope.id, "stream_sequence": sequence}),
    ))
}

/// Mark a departed run back at the checkpoint (staff, or its courier).
#[utoipa::path(post, path = "/v1/runs/{run}/return", tag = "dispatch",
    params(("run" = String, Path)),
    responses((status = 202, body = Object), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "not out", body = ErrorBody)),
    security(("bearer" = [])))]
async fn return_run(
    State(api): State<Arc<Api>>,
    caller: Caller,
    headers: HeaderMap,
    Path(run): Path<String>,
) -> Result<Response, ApiError> {
    let record = api.run(&run).await?;
    let own = caller.is(Role::Courier) && record.courier.as_deref() == Some(caller.0.id.as_str());
    let staff = (caller.is(Role::Staff) || caller.is(Role::Operator))
        && caller.sees_community(&record.community);
    if !(own || staff) {
        return Err(caller.forbidden("return this run"));
    }
    let expected = api
        .settled_sequence(&lifeline_events::run_subject(&record.community, &run))
        .await?;
    let record = api.run(&run).await?;
    if record.state != RunState::Departed {
        return Err(ApiError::Conflict(format!(
            "run {run} is {:?}, not out",
            record.state
        )));
    }
    let event = Event::RunReturned(RunReturned {
        run: run.clone(),
        community: record.community,
        tricycle: record.tricycle,
    });
    let envelope = Envelope::new(event, api.meta(&caller, correlation_id(&headers)));
    let sequence = api.append(&envelope, Some(expected)).await?;
    Ok(respond(
        StatusCode::ACCEPTED,
        serde_json::json!({"run": run, "event_id": envelope.id, "stream_sequence": sequence}),
    ))
}

// ---- couriers -------------------------------------------------------------------------

#[derive(Debug, Serialize, ToSchema)]
pub struct ManifestItem {
    pub item: String,
    pub name: String,
    pub quantity: u32,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ManifestOrder {
    pub order: String,
    pub stage: String,
    pub items: Vec<ManifestItem>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ManifestStop {
    pub building: String,
    pub unit: String,
    pub household: String,
    pub door: String,
    pub orders: Vec<ManifestOrder>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Manifest {
    pub run: String,
    pub community: String,
    pub tricycle: String,
    pub state: String,
    pub courier: Option<String>,
    /// In driving order.
    pub stops: Vec<ManifestStop>,
}

/// The run's manifest: stops in driving order and what to leave at which door.
#[utoipa::path(get, path = "/v1/runs/{run}/manifest", tag = "couriers",
    params(("run" = String, Path)),
    responses((status = 200, body = Manifest), (status = 401, body = ErrorBody), (status = 403, description = "another courier's run", body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
async fn run_manifest(
    State(api): State<Arc<Api>>,
    caller: Caller,
    Path(run): Path<String>,
) -> Result<Response, ApiError> {
    let record = api.run(&run).await?;
    let own = caller.is(Role::Courier) && record.courier.as_deref() == Some(caller.0.id.as_str());
    let staff = (caller.is(Role::Staff) || caller.is(Role::Operator))
        && caller.sees_community(&record.community);
    if !(own || staff) {
        return Err(caller.forbidden("see this run"));
    }
    let registry = Arc::clone(&api.registry);
    let delivery = Arc::clone(&api.delivery);
    let orders = record.orders.clone();
    let manifest = blocking(move || {
        let mut stops: Vec<ManifestStop> = Vec::new();
        for order_id in &orders {
            let Some(order) = lifeline_delivery::order(&delivery, order_id)? else {
                continue;
            };
            let door = lifeline_registry::household(&registry, &order.household)?
                .map(|h| h.door)
                .unwrap_or_default();
            let mut items = Vec::new();
            for line in &order.items {
                let name = lifeline_registry::item(&registry, &line.item)?
                    .map(|i| i.name)
                    .unwrap_or_else(|| line.item.clone());
                items.push(ManifestItem {
                    item: line.item.clone(),
                    name,
                    quantity: line.quantity,
                });
            }
            let entry = ManifestOrder {
                order: order.order.clone(),
                stage: order.status.stage.as_str().to_owned(),
                items,
            };
            match stops
                .iter_mut()
                .find(|stop| stop.household == order.household)
            {
                Some(stop) => stop.orders.push(entry),
                None => stops.push(ManifestStop {
                    building: order.building,
                    unit: order.unit,
                    household: order.household,
                    door,
                    orders: vec![entry],
                }),
            }
        }
        Ok(stops)
    })
    .await?;
    let state = match record.state {
        RunState::Planned => "planned",
        RunState::Departed => "departed",
        RunState::Returned => "returned",
    };
    Ok(Json(Manifest {
        run,
        community: record.community,
        tricycle: record.tricycle,
        state: state.into(),
        courier: record.courier,
        stops: manifest,
    })
    .into_response())
}

#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Delivered,
    Failed,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PostDrop {
    pub order: String,
    pub outcome: Outcome,
    /// Required when failed: no_answer, wrong_address, refused, access_blocked, damaged,
    /// unit_sealed, other.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub reason: Option<DropFailure>,
    #[serde(default)]
    pub note: Option<String>,
    /// Contactless proof: a photo's SHA-256 or a code the household gave.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub proof: Option<Proof>,
}

/// Acknowledge one drop of the courier's run, delivered or failed with a reason. Requires
/// an `Idempotency-Key`: a retry returns the first answer and appends nothing.
#[utoipa::path(post, path = "/v1/runs/{run}/drops", tag = "couriers", request_body = PostDrop,
    params(("run" = String, Path), ("Idempotency-Key" = String, Header, description = "The acknowledgement's id, generated on the phone")),
    responses((status = 202, description = "recorded; a retry with the same key gets this first answer again", body = Object),
        (status = 400, description = "malformed JSON or no Idempotency-Key", body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, description = "another courier's run", body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "the order is not on this run, or already dropped", body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
async fn post_drop(
    State(api): State<Arc<Api>>,
    caller: Caller,
    headers: HeaderMap,
    Path(run): Path<String>,
    Body(request): Body<PostDrop>,
) -> Result<Response, ApiError> {
    let key = key_from(&headers)?
        .ok_or_else(|| ApiError::BadRequest("an Idempotency-Key header is required".into()))?;
    let correlation = correlation_id(&headers);
    let record = api.run(&run).await?;
    if !(caller.is(Role::Courier) && record.courier.as_deref() == Some(caller.0.id.as_str())) {
        return Err(caller.forbidden("acknowledge drops of this run"));
    }
    let community = record.community.clone();
    let (status, body) = api
        .idempotency
        .run(&caller.0.id, Some(key), |event_id, maybe_published| {
            let (api, caller) = (&api, &caller);
            async move {
            let known = if is_token(&request.order) { api.order(&request.order).await? } else { None };
            let known = known.ok_or_else(|| ApiError::Unprocessable(format!("unknown order {:?}", request.order)))?;
            let outcome = match request.outcome {
                Outcome::Delivered => "delivered",
                Outcome::Failed => "failed",
            };
            if maybe_published
                && let Some(sequence) = api.stored(&lifeline_events::drop_subject(&known.community, &known.order), event_id).await?
            {
                return Ok((StatusCode::ACCEPTED, serde_json::json!({"order": known.order, "outcome": outcome, "event_id": event_id, "stream_sequence": sequence})));
            }
            // Two different acknowledgements of one order race on its drop subject: after
            // this, the projection has seen every earlier drop, and a later one makes the
            // publish fail with a conflict.
            let expected = api.settled_sequence(&lifeline_events::drop_subject(&known.community, &known.order)).await?;
            let record = api.run(&run).await?;
            if record.state != RunState::Departed {
                return Err(ApiError::Conflict(format!("run {run} is {:?}, not out", record.state)));
            }
            if !record.orders.contains(&request.order) {
                return Err(ApiError::Conflict(format!("order {:?} is not on run {run}", request.order)));
            }
            let order = api.order(&request.order).await?.unwrap_or(known);
            if order.status.stage != Stage::OnRun || order.run.as_deref() != Some(run.as_str()) {
                return Err(ApiError::Conflict(format!("order {} is {}, not out on run {run}", order.order, order.status.stage.as_str())));
            }
            let event = match request.outcome {
                Outcome::Delivered => Event::DropDelivered(DropDelivered {
                    order: order.order.clone(),
                    run: run.clone(),
                    community,
                    household: order.household.clone(),
                    proof: request.proof.unwrap_or_default(),
                }),
                Outcome::Failed => Event::DropFailed(DropFailed {
                    order: order.order.clone(),
                    run: run.clone(),
                    community,
                    household: order.household.clone(),
                    reason: request.reason.ok_or_else(|| ApiError::Unprocessable("a failed drop needs a reason".into()))?,
                    note: request.note,
                }),
            };
            let envelope = Envelope::with_id(event_id, event, api.meta(caller, correlation));
            let sequence = api.append(&envelope, Some(expected)).await?;
            Ok((StatusCode::ACCEPTED, serde_json::json!({"order": order.order, "outcome": outcome, "event_id": event_id, "stream_sequence": sequence})))
        }})
        .await?;
    Ok(respond(status, body))
}

// ---- operators ------------------------------------------------------------------------

fn check_operator_or_staff(caller: &Caller, community: Option<&str>) -> Result<(), ApiError> {
    let allowed = caller.is(Role::Operator)
        || (caller.is(Role::Staff) && community.is_some_and(|c| caller.sees_community(c)));
    if allowed {
        Ok(())
    } else {
        Err(caller.forbidden("see the operators' views"))
    }
}

fn age_seconds(record: &OrderRecord, now: time::OffsetDateTime) -> i64 {
    let placed_ms = i128::from(record.placed_at_ms);
    i64::try_from((now.unix_timestamp_nanos() / 1_000_000 - placed_ms) / 1000).unwrap_or(i64::MAX)
}

/// Per community and building: orders by stage, late orders, vulnerable households not yet
/// served today, runs in progress.
#[utoipa::path(get, path = "/v1/communities/{community}/summary", tag = "operators",
    params(("community" = String, Path)),
    responses((status = 200, body = Object), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = [])))]
async fn community_summary(
    State(api): State<Arc<Api>>,
    caller: Caller,
    Path(community): Path<String>,
) -> Result<Response, ApiError> {
    token_or_404(&community, "community")?;
    check_operator_or_staff(&caller, Some(&community))?;
    let orders = community_orders(&api, &community).await?;
    let now = time::OffsetDateTime::now_utc();
    let mut by_stage: BTreeMap<&str, u64> = Stage::ALL.iter().map(|s| (s.as_str(), 0)).collect();
    let mut by_building: BTreeMap<String, BTreeMap<&str, u64>> = BTreeMap::new();
    let mut late = Vec::new();
    for order in &orders {
        *by_stage.entry(order.status.stage.as_str()).or_default() += 1;
        *by_building
            .entry(order.building.clone())
            .or_default()
            .entry(order.status.stage.as_str())
            .or_default() += 1;
        let age = age_seconds(order, now);
        if !order.is_final && age > deadline_seconds(order.priority) {
            late.push(serde_json::json!({"order": order.order, "household": order.household, "building": order.building,
                "priority": order.priority.as_str(), "stage": order.status.stage.as_str(), "age_seconds": age}));
        }
    }
    let store = Arc::clone(&api.delivery);
    let snapshot = blocking(move || lifeline_delivery::ops_snapshot(&store)).await?;
    let store = Arc::clone(&api.delivery);
    let wanted = community.clone();
    let unserved =
        blocking(move || lifeline_delivery::vulnerable_unserved(&store, &wanted)).await?;
    Ok(Json(serde_json::json!({
        "community": community,
        "orders_by_stage": by_stage,
        "orders_by_building": by_building,
        "late_orders": late,
        "vulnerable_households_unserved_today": unserved,
        "runs_in_progress": snapshot.runs_in_progress.get(&community).copied().unwrap_or(0),
    }))
    .into_response())
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct StuckFilter {
    /// Orders whose last change is older than this many minutes (default 60).
    pub minutes: Option<i64>,
}

/// Orders not final whose last change is older than `minutes`.
#[utoipa::path(get, path = "/v1/stuck", tag = "operators", params(StuckFilter),
    responses((status = 200, body = Object), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = [])))]
async fn stuck_orders(
    State(api): State<Arc<Api>>,
    caller: Caller,
    Params(filter): Params<StuckFilter>,
) -> Result<Response, ApiError> {
    check_operator_or_staff(&caller, None)?;
    let minutes = filter.minutes.unwrap_or(60).max(0);
    let store = Arc::clone(&api.delivery);
    let orders = blocking(move || lifeline_delivery::all_orders(&store)).await?;
    let now = time::OffsetDateTime::now_utc();
    let stuck: Vec<serde_json::Value> = orders
        .iter()
        .filter(|order| !order.is_final)
        .filter_map(|order| {
            let last = order.history.last()?;
            let at = time::OffsetDateTime::parse(&last.at, &time::format_description::well_known::Rfc3339).ok()?;
            let idle = (now - at).whole_seconds();
            (idle > minutes * 60).then(|| serde_json::json!({"order": order.order, "community": order.community,
                "household": order.household, "stage": order.status.stage.as_str(), "since": last.at, "idle_seconds": idle}))
        })
        .collect();
    Ok(Json(serde_json::json!({ "orders": stuck })).into_response())
}

/// Messages parked on the dead-letter stream, with consumer, reason and original payload.
#[utoipa::path(get, path = "/v1/dead-letters", tag = "operators",
    responses((status = 200, body = Object), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = [])))]
async fn dead_letters(State(api): State<Arc<Api>>, caller: Caller) -> Result<Response, ApiError> {
    check_operator_or_staff(&caller, None)?;
    let letters = read_dead_letters(&api.jetstream, 1000)
        .await
        .map_err(|_| ApiError::Unavailable)?;
    Ok(Json(serde_json::json!({ "dead_letters": letters })).into_response())
}

/// Stock of every partner.
#[utoipa::path(get, path = "/v1/stock", tag = "operators",
    responses((status = 200, body = Object), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = [])))]
async fn all_stock(State(api): State<Arc<Api>>, caller: Caller) -> Result<Response, ApiError> {
    check_operator_or_staff(&caller, None)?;
    let store = Arc::clone(&api.inventory);
    let stock = blocking(move || lifeline_inventory::stock(&store, None)).await?;
    Ok(Json(serde_json::json!({ "stock": stock })).into_response())
}

#[derive(utoipa::OpenApi)]
#[openapi(
    info(title = "lifeline API", description = "Orders, picks, runs and drops for sealed communities. Every command appends an event to NATS JetStream; reads come from projections."),
    paths(place_order, get_order, cancel_order, household_orders, partner_orders, post_pick, restock, partner_stock,
        ready_orders, post_arrival, community_runs, depart_run, return_run, run_manifest, post_drop,
        community_summary, stuck_orders, dead_letters, all_stock),
    components(schemas(ErrorBody, crate::error::ErrorDetail, PlaceOrder, LineRequest, OrderAccepted, CancelOrder, PostPick, Restock,
        PostArrival, DepartRun, Manifest, ManifestStop, ManifestOrder, ManifestItem, PostDrop, Outcome)),
    modifiers(&BearerAuth),
    tags((name = "residents"), (name = "partners"), (name = "dispatch"), (name = "couriers"), (name = "operators")),
)]
pub struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The OpenAPI document as served at `/openapi.json` and checked in at `docs/openapi.json`.
pub fn openapi_json() -> String {
    let mut document = <ApiDoc as utoipa::OpenApi>::openapi();
    document.info.version = env!("CARGO_PKG_VERSION").to_owned();
    document
        .to_pretty_json()
        .expect("the OpenAPI document serializes")
        + "\n"
}
