//! Staff and escalations: the orders waiting for a person (failed for good, nothing
//! picked, overdue), and closing them with an outcome. Rules in
//! `lifeline_domain::delivery::escalation` and `lifeline_domain::command::close_escalation`.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use lifeline_domain::command;
use lifeline_domain::delivery::EscalationReason;
use lifeline_domain::order::Stage;
use lifeline_events::{EscalationOutcome, Event, OrderLine, Priority};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{Accepted, Api, Body, Concurrency, blocking, correlation_id, token_or_404};
use crate::access::{Caller, Role};
use crate::error::{ApiError, ErrorBody};
use crate::idempotency::key_from;

fn now_ms() -> u64 {
    u64::try_from(time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000).unwrap_or(0)
}

fn rfc3339(unix_ms: u64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(unix_ms) * 1_000_000)
        .ok()
        .and_then(|time| {
            time.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

/// An order waiting for staff.
#[derive(Debug, Serialize, ToSchema)]
pub struct EscalatedOrder {
    pub order: String,
    pub household: String,
    pub building: String,
    pub unit: String,
    pub partner: String,
    #[schema(value_type = String, example = "urgent")]
    pub priority: Priority,
    pub stage: Stage,
    pub failed_drops: u32,
    pub reason: EscalationReason,
    /// RFC 3339 time it escalated.
    pub since: String,
    #[schema(value_type = Vec<Object>)]
    pub items: Vec<OrderLine>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EscalationList {
    pub community: String,
    /// Most urgent first, then oldest.
    pub escalations: Vec<EscalatedOrder>,
}

/// A community's open escalations: orders that failed for good (three failed drops),
/// that nothing could be picked for, or that are past their deadline by a margin (urgent
/// 2 h 30 min, priority 7 h 30 min, routine 15 h after placing). Each stays here until
/// staff close it.
#[utoipa::path(get, path = "/v1/communities/{community}/escalations", tag = "staff",
    params(("community" = String, Path)),
    responses((status = 200, body = EscalationList), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub(super) async fn community_escalations(
    State(api): State<Arc<Api>>,
    caller: Caller,
    Path(community): Path<String>,
) -> Result<Response, ApiError> {
    token_or_404(&community, "community")?;
    let allowed = caller.reads_community(&community);
    if !allowed {
        return Err(caller.forbidden("see the escalations"));
    }
    let store = Arc::clone(&api.delivery);
    let wanted = community.clone();
    let list =
        blocking(move || lifeline_readmodel::delivery::escalations(&store, &wanted, now_ms()))
            .await?;
    let escalations = list
        .into_iter()
        .map(|escalated| EscalatedOrder {
            since: rfc3339(escalated.since_ms),
            reason: escalated.reason,
            order: escalated.record.order,
            household: escalated.record.household,
            building: escalated.record.building,
            unit: escalated.record.unit,
            partner: escalated.record.partner,
            priority: escalated.record.priority,
            stage: escalated.record.status.stage,
            failed_drops: escalated.record.status.failed_drops,
            items: escalated.record.items,
        })
        .collect();
    Ok(Json(EscalationList {
        community,
        escalations,
    })
    .into_response())
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CloseEscalation {
    pub outcome: EscalationOutcome,
    /// With `reordered`: the new order placed for the same household.
    #[serde(default)]
    pub replacement: Option<String>,
    /// Up to 500 characters.
    #[serde(default)]
    pub note: Option<String>,
}

/// Close an escalated order with what staff did about it. Staff of the order's community
/// only; operators read escalations but do not close them.
#[utoipa::path(post, path = "/v1/orders/{order}/escalation/close", tag = "staff", request_body = CloseEscalation,
    params(("order" = String, Path), ("Idempotency-Key" = Option<String>, Header)),
    responses((status = 202, body = Accepted), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "`not_escalated` (in progress, delivered, cancelled or already closed), or changed concurrently", body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 422, description = "`note_too_long`, `invalid_replacement`, or a body of the wrong shape", body = ErrorBody)),
    security(("bearer" = [])))]
pub(super) async fn close_escalation(
    State(api): State<Arc<Api>>,
    caller: Caller,
    headers: HeaderMap,
    Path(order): Path<String>,
    Body(request): Body<CloseEscalation>,
) -> Result<Response, ApiError> {
    let key = key_from(&headers)?;
    let record = api
        .order(&order)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no order {order}")))?;
    if !(caller.is(Role::Staff) && caller.sees_community(&record.community)) {
        return Err(caller.forbidden("close escalations of this community"));
    }
    let answered = order.clone();
    let subject = lifeline_events::order_subject(&record.community, &order);
    api.execute(
        &caller,
        key,
        correlation_id(&headers),
        |_| subject,
        Concurrency::Settled,
        move |views, _| {
            command::close_escalation(
                views,
                command::CloseEscalation {
                    order,
                    outcome: request.outcome,
                    replacement: request.replacement,
                    note: request.note,
                },
                now_ms(),
            )
            .map(Event::EscalationClosed)
        },
        |_, appended| Accepted {
            order: Some(answered),
            ..Accepted::from(appended)
        },
    )
    .await
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CoverageFilter {
    /// Households with no delivery in the last this many hours (default 24), by event time.
    pub hours: Option<u64>,
}

/// A household of the coverage ledger.
#[derive(Debug, Serialize, ToSchema)]
pub struct CoveredHousehold {
    pub household: String,
    pub building: String,
    pub vulnerable: bool,
    /// RFC 3339 times, absent when it never happened.
    pub last_order: Option<String>,
    pub last_delivery: Option<String>,
    pub last_attempt: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Coverage {
    pub community: String,
    pub hours: u64,
    /// The time the ledger is read at: the latest event's (event time, so a replayed day
    /// reads as it did live).
    pub as_of: String,
    /// Not delivered to in the last `hours` hours: vulnerable first, then never served,
    /// then longest since.
    pub unserved: Vec<CoveredHousehold>,
    /// Of those, how many never ordered at all.
    pub never_ordered: usize,
}

/// The coverage ledger: households of the community with no delivery in the last `hours`
/// hours, vulnerable first, with their last order, delivery and attempt at the door.
#[utoipa::path(get, path = "/v1/communities/{community}/coverage", tag = "staff",
    params(("community" = String, Path), CoverageFilter),
    responses((status = 200, body = Coverage), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub(super) async fn coverage(
    State(api): State<Arc<Api>>,
    caller: Caller,
    Path(community): Path<String>,
    super::Params(filter): super::Params<CoverageFilter>,
) -> Result<Response, ApiError> {
    token_or_404(&community, "community")?;
    let allowed = caller.reads_community(&community);
    if !allowed {
        return Err(caller.forbidden("see the coverage ledger"));
    }
    let hours = filter.hours.unwrap_or(24);
    let store = Arc::clone(&api.delivery);
    let wanted = community.clone();
    let (now_ms, rows) =
        blocking(move || lifeline_readmodel::delivery::unserved_households(&store, &wanted, hours))
            .await?;
    let time = |ms: Option<u64>| ms.map(rfc3339);
    let unserved: Vec<CoveredHousehold> = rows
        .into_iter()
        .map(|row| CoveredHousehold {
            last_order: time(row.last_order_ms),
            last_delivery: time(row.last_delivery_ms),
            last_attempt: time(row.last_attempt_ms),
            household: row.household,
            building: row.building,
            vulnerable: row.vulnerable,
        })
        .collect();
    Ok(Json(Coverage {
        never_ordered: unserved.iter().filter(|h| h.last_order.is_none()).count(),
        community,
        hours,
        as_of: rfc3339(now_ms),
        unserved,
    })
    .into_response())
}
