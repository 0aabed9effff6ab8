//! Operators (and staff of a community): the board, stuck orders, dead letters, stock.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use lifeline_domain::command::deadline_seconds;
use lifeline_domain::delivery::OrderRecord;
use lifeline_domain::order::Stage;
use lifeline_events::{Priority, SealScope};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::dispatch::community_orders;
use super::partners::StockList;
use super::{Api, Params, blocking, token_or_404};
use crate::access::{Caller, Role};
use crate::error::{ApiError, ErrorBody};

fn check_operator_or_staff(caller: &Caller, community: Option<&str>) -> Result<(), ApiError> {
    let allowed = match community {
        Some(community) => caller.reads_community(community),
        None => caller.is(Role::Operator),
    };
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

/// An order past its delivery deadline.
#[derive(Debug, Serialize, ToSchema)]
pub struct LateOrder {
    pub order: String,
    pub household: String,
    pub building: String,
    pub priority: Priority,
    pub stage: Stage,
    pub age_seconds: i64,
}

/// A community's board.
#[derive(Debug, Serialize, ToSchema)]
pub struct Summary {
    pub community: String,
    /// Every stage, with its count of orders.
    pub orders_by_stage: BTreeMap<String, u64>,
    /// Per building, the stages it has orders in.
    pub orders_by_building: BTreeMap<String, BTreeMap<String, u64>>,
    pub late_orders: Vec<LateOrder>,
    #[schema(value_type = Vec<Object>)]
    pub vulnerable_households_unserved_today: Vec<serde_json::Value>,
    pub runs_in_progress: u64,
    /// The scopes sealed now, each with its orders not yet final.
    pub sealed: Vec<SealedScope>,
}

/// A sealed scope and what is still on its way into it.
#[derive(Debug, Serialize, ToSchema)]
pub struct SealedScope {
    /// `{"level": "community"}`, `{"level": "building", "building": ...}` or
    /// `{"level": "unit", "building": ..., "unit": ...}`.
    #[schema(value_type = Object)]
    pub scope: SealScope,
    /// Orders for households behind it that are not yet delivered, cancelled or final.
    pub open_orders: u64,
}

/// Per community and building: orders by stage, late orders, vulnerable households not yet
/// served today, runs in progress.
#[utoipa::path(get, path = "/v1/communities/{community}/summary", tag = "operators",
    params(("community" = String, Path)),
    responses((status = 200, body = Summary), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = [])))]
pub(super) async fn community_summary(
    State(api): State<Arc<Api>>,
    caller: Caller,
    Path(community): Path<String>,
) -> Result<Response, ApiError> {
    token_or_404(&community, "community")?;
    check_operator_or_staff(&caller, Some(&community))?;
    let orders = community_orders(&api, &community).await?;
    let now = time::OffsetDateTime::now_utc();
    let mut by_stage: BTreeMap<String, u64> = Stage::ALL
        .iter()
        .map(|s| (s.as_str().to_owned(), 0))
        .collect();
    let mut by_building: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    let mut late = Vec::new();
    for order in &orders {
        let stage = order.status.stage.as_str().to_owned();
        *by_stage.entry(stage.clone()).or_default() += 1;
        *by_building
            .entry(order.building.clone())
            .or_default()
            .entry(stage)
            .or_default() += 1;
        let age = age_seconds(order, now);
        if !order.is_final && age > deadline_seconds(order.priority) {
            late.push(LateOrder {
                order: order.order.clone(),
                household: order.household.clone(),
                building: order.building.clone(),
                priority: order.priority,
                stage: order.status.stage,
                age_seconds: age,
            });
        }
    }
    let store = Arc::clone(&api.delivery);
    let snapshot = blocking(move || lifeline_readmodel::delivery::ops_snapshot(&store)).await?;
    let store = Arc::clone(&api.delivery);
    let wanted = community.clone();
    let unserved =
        blocking(move || lifeline_readmodel::delivery::vulnerable_unserved(&store, &wanted))
            .await?;
    let registry = Arc::clone(&api.registry);
    let wanted = community.clone();
    let scopes =
        blocking(move || lifeline_readmodel::registry::sealed_scopes(&registry, &wanted)).await?;
    let sealed = scopes
        .into_iter()
        .map(|scope| {
            let open_orders = orders
                .iter()
                .filter(|order| !order.is_final)
                .filter(|order| match &scope {
                    SealScope::Community => true,
                    SealScope::Building { building } => &order.building == building,
                    SealScope::Unit { unit, .. } => &order.unit == unit,
                })
                .count() as u64;
            SealedScope { scope, open_orders }
        })
        .collect();
    let runs_in_progress = snapshot
        .runs_in_progress
        .get(&community)
        .copied()
        .unwrap_or(0);
    Ok(Json(Summary {
        community,
        orders_by_stage: by_stage,
        orders_by_building: by_building,
        late_orders: late,
        vulnerable_households_unserved_today: unserved,
        runs_in_progress,
        sealed,
    })
    .into_response())
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StuckFilter {
    /// Orders whose last change is older than this many minutes (default 60).
    pub minutes: Option<i64>,
}

/// An order that has not moved for a while.
#[derive(Debug, Serialize, ToSchema)]
pub struct StuckOrder {
    pub order: String,
    pub community: String,
    pub household: String,
    pub stage: Stage,
    /// RFC 3339 time of its last change.
    pub since: String,
    pub idle_seconds: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StuckOrders {
    pub orders: Vec<StuckOrder>,
}

/// Orders not final whose last change is older than `minutes`.
#[utoipa::path(get, path = "/v1/stuck", tag = "operators", params(StuckFilter),
    responses((status = 200, body = StuckOrders), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = [])))]
pub(super) async fn stuck_orders(
    State(api): State<Arc<Api>>,
    caller: Caller,
    Params(filter): Params<StuckFilter>,
) -> Result<Response, ApiError> {
    check_operator_or_staff(&caller, None)?;
    let minutes = filter.minutes.unwrap_or(60).max(0);
    let store = Arc::clone(&api.delivery);
    let orders = blocking(move || lifeline_readmodel::delivery::all_orders(&store)).await?;
    let now = time::OffsetDateTime::now_utc();
    let orders: Vec<StuckOrder> = orders
        .into_iter()
        .filter(|order| !order.is_final)
        .filter_map(|order| {
            let last = order.history.last()?;
            let at = time::OffsetDateTime::parse(
                &last.at,
                &time::format_description::well_known::Rfc3339,
            )
            .ok()?;
            let idle = (now - at).whole_seconds();
            (idle > minutes.saturating_mul(60)).then(|| StuckOrder {
                since: last.at.clone(),
                order: order.order,
                community: order.community,
                household: order.household,
                stage: order.status.stage,
                idle_seconds: idle,
            })
        })
        .collect();
    Ok(Json(StuckOrders { orders }).into_response())
}

/// A parked message.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeadLetters {
    pub dead_letters: Vec<lifeline_bus::DeadLetterRecord>,
}

/// Messages parked on the dead-letter stream, with consumer, reason and original payload.
#[utoipa::path(get, path = "/v1/dead-letters", tag = "operators",
    responses((status = 200, body = DeadLetters), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = [])))]
pub(super) async fn dead_letters(
    State(api): State<Arc<Api>>,
    caller: Caller,
) -> Result<Response, ApiError> {
    check_operator_or_staff(&caller, None)?;
    let dead_letters = lifeline_bus::read_dead_letters(&api.jetstream, 1000)
        .await
        .map_err(|_| ApiError::Unavailable)?;
    Ok(Json(DeadLetters { dead_letters }).into_response())
}

/// Stock of every partner.
#[utoipa::path(get, path = "/v1/stock", tag = "operators",
    responses((status = 200, body = StockList), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = [])))]
pub(super) async fn all_stock(
    State(api): State<Arc<Api>>,
    caller: Caller,
) -> Result<Response, ApiError> {
    check_operator_or_staff(&caller, None)?;
    let store = Arc::clone(&api.inventory);
    let stock = blocking(move || lifeline_readmodel::inventory::stock(&store, None)).await?;
    Ok(Json(StockList { stock }).into_response())
}

/// Puts a dead letter back on the event stream, for the consumer that parked it, after the
/// cause was fixed (a registry correction, a deploy). Same event id, new causation (the
/// re-drive's id); the other consumers skip it. Operators only; once per dead letter.
#[utoipa::path(post, path = "/v1/dead-letters/{sequence}/redrive", tag = "operators",
    params(("sequence" = u64, Path, description = "The dead letter's sequence, as listed")),
    responses((status = 202, body = lifeline_bus::Redrive),
        (status = 400, body = ErrorBody, description = "not a sequence number"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "no such dead letter"),
        (status = 409, body = ErrorBody, description = "re-driven already"),
        (status = 422, body = ErrorBody, description = "the payload is not a lifeline event: the sender must publish a corrected one")),
    security(("bearer" = [])))]
pub(super) async fn redrive_dead_letter(
    State(api): State<Arc<Api>>,
    caller: Caller,
    Path(sequence): Path<String>,
) -> Result<Response, ApiError> {
    if !caller.is(Role::Operator) {
        return Err(caller.forbidden("re-drive dead letters"));
    }
    let sequence: u64 = sequence
        .parse()
        .map_err(|_| ApiError::BadRequest(format!("{sequence:?} is not a sequence number")))?;
    let redriven = lifeline_bus::redrive(&api.jetstream, sequence, &caller.0.id)
        .await
        .map_err(|error| match error {
            lifeline_bus::RedriveError::NotFound(_) => ApiError::NotFound(error.to_string()),
            lifeline_bus::RedriveError::AlreadyRedriven { .. } => {
                ApiError::Conflict(error.to_string())
            }
            lifeline_bus::RedriveError::NotRedrivable { .. } => {
                ApiError::Unprocessable(error.to_string())
            }
            lifeline_bus::RedriveError::Unavailable(_) => ApiError::Unavailable,
        })?;
    Ok((axum::http::StatusCode::ACCEPTED, Json(redriven)).into_response())
}
