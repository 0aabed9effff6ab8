//! Staff at the checkpoint: what is ready, vehicles arriving, runs leaving and returning.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use lifeline_domain::command;
use lifeline_domain::delivery::{OrderRecord, RunRecord};
use lifeline_events::Event;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{Accepted, Api, Body, Concurrency, OrderList, blocking, correlation_id, token_or_404};
use crate::access::{Caller, Role};
use crate::error::{ApiError, ErrorBody};
use crate::idempotency::key_from;

/// Reads of a community's checkpoint: its staff, and operators.
fn check_dispatcher(caller: &Caller, community: &str) -> Result<(), ApiError> {
    token_or_404(community, "community")?;
    let allowed = caller.reads_community(community);
    if allowed {
        Ok(())
    } else {
        Err(caller.forbidden("see this community's checkpoint"))
    }
}

/// Acts at a community's checkpoint (arrivals): its staff only.
fn check_dispatcher_acts(caller: &Caller, community: &str) -> Result<(), ApiError> {
    token_or_404(community, "community")?;
    if caller.is(Role::Staff) && caller.sees_community(community) {
        Ok(())
    } else {
        Err(caller.forbidden("dispatch for this community"))
    }
}

pub(super) async fn community_orders(
    api: &Api,
    community: &str,
) -> Result<Vec<OrderRecord>, ApiError> {
    let store = Arc::clone(&api.delivery);
    let community = community.to_owned();
    let orders = blocking(move || lifeline_readmodel::delivery::all_orders(&store)).await?;
    Ok(orders
        .into_iter()
        .filter(|order| order.community == community)
        .collect())
}

/// Orders at the checkpoint, waiting for a tricycle run.
#[utoipa::path(get, path = "/v1/communities/{community}/ready", tag = "dispatch",
    params(("community" = String, Path)),
    responses((status = 200, body = OrderList), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = [])))]
pub(super) async fn ready_orders(
    State(api): State<Arc<Api>>,
    caller: Caller,
    Path(community): Path<String>,
) -> Result<Response, ApiError> {
    check_dispatcher(&caller, &community)?;
    let orders: Vec<OrderRecord> = community_orders(&api, &community)
        .await?
        .into_iter()
        .filter(|order| order.status.waits_for_run())
        .collect();
    Ok(Json(OrderList { orders }).into_response())
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PostArrival {
    pub partner: String,
    /// Picked orders the vehicle brought, named one by one (each once; with the batches'
    /// orders, 1 to 1000 in all).
    #[serde(default)]
    pub orders: Vec<String>,
    /// The registered vehicle (`PUT /v1/communities/{community}/vehicles/{vehicle}`).
    #[serde(default)]
    pub vehicle: Option<String>,
    /// Who drove it (1 to 64 characters).
    #[serde(default)]
    pub driver: Option<String>,
    /// Pick sheets carried whole (their `batch` ids, up to 20): every order picked from
    /// them and not yet at the checkpoint comes with the vehicle.
    #[serde(default)]
    pub batches: Vec<String>,
}

/// Record a partner vehicle's arrival at the checkpoint with picked orders.
#[utoipa::path(post, path = "/v1/communities/{community}/arrivals", tag = "dispatch", request_body = PostArrival,
    params(("community" = String, Path), ("Idempotency-Key" = Option<String>, Header)),
    responses((status = 202, body = Accepted), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 409, description = "`not_picked`: an order is not picked", body = ErrorBody),
        (status = 422, description = "`arrival_size`, `duplicate_order`, `unknown_order`, `order_elsewhere`, `unknown_vehicle`, `invalid_text`, `out_of_range`", body = ErrorBody)),
    security(("bearer" = [])))]
pub(super) async fn post_arrival(
    State(api): State<Arc<Api>>,
    caller: Caller,
    headers: HeaderMap,
    Path(community): Path<String>,
    Body(request): Body<PostArrival>,
) -> Result<Response, ApiError> {
    check_dispatcher_acts(&caller, &community)?;
    let key = key_from(&headers)?;
    for id in request.batches.iter().chain(&request.vehicle) {
        super::token_or_404(id, "batch or vehicle")?;
    }
    let subject = lifeline_events::subject_for(&Event::ArrivedAtCheckpoint(
        lifeline_events::ArrivedAtCheckpoint {
            arrival: String::new(),
            community: community.clone(),
            partner: request.partner.clone(),
            orders: Vec::new(),
            vehicle: None,
            driver: None,
            batches: Vec::new(),
        },
    ));
    api.execute(
        &caller,
        key,
        correlation_id(&headers),
        |_| subject,
        // Two arrivals carrying the same order share this subject: the second is decided
        // after the first is applied, or its append fails with a conflict.
        Concurrency::Settled,
        move |views, event_id| {
            let command = command::Arrival {
                arrival: event_id.to_string(),
                community,
                partner: request.partner,
                orders: request.orders,
                vehicle: request.vehicle,
                driver: request.driver,
                batches: request.batches,
            };
            command::arrive(views, command).map(Event::ArrivedAtCheckpoint)
        },
        |_, appended| Accepted {
            arrival: Some(appended.event_id.to_string()),
            ..Accepted::from(appended)
        },
    )
    .await
}

/// A community's runs.
#[derive(Debug, Serialize, ToSchema)]
pub struct RunList {
    pub runs: Vec<RunRecord>,
}

/// The community's tricycle runs, planned by dispatch.
#[utoipa::path(get, path = "/v1/communities/{community}/runs", tag = "dispatch",
    params(("community" = String, Path)),
    responses((status = 200, body = RunList), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = [])))]
pub(super) async fn community_runs(
    State(api): State<Arc<Api>>,
    caller: Caller,
    Path(community): Path<String>,
) -> Result<Response, ApiError> {
    check_dispatcher(&caller, &community)?;
    let store = Arc::clone(&api.delivery);
    let runs = blocking(move || lifeline_readmodel::delivery::all_runs(&store)).await?;
    let runs: Vec<RunRecord> = runs
        .into_iter()
        .filter(|run| run.community == community)
        .collect();
    Ok(Json(RunList { runs }).into_response())
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
    params(("run" = String, Path), ("Idempotency-Key" = Option<String>, Header)),
    responses((status = 202, body = Accepted), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "`run_not_planned`", body = ErrorBody), (status = 422, description = "`unknown_courier`, or staff named no courier", body = ErrorBody)),
    security(("bearer" = [])))]
pub(super) async fn depart_run(
    State(api): State<Arc<Api>>,
    caller: Caller,
    headers: HeaderMap,
    Path(run): Path<String>,
    Body(request): Body<DepartRun>,
) -> Result<Response, ApiError> {
    let key = key_from(&headers)?;
    let record = api.run(&run).await?;
    // Who may send it out, and for whom: a courier only as themself.
    let courier = match caller.0.role {
        Role::Courier if caller.sees_community(&record.community) => {
            if request.courier.as_ref().is_some_and(|c| *c != caller.0.id) {
                return Err(caller.forbidden("depart a run for someone else"));
            }
            Some(caller.0.id.clone())
        }
        Role::Staff if caller.sees_community(&record.community) => request.courier.clone(),
        _ => return Err(caller.forbidden("depart this run")),
    };
    let (answered_run, answered_courier) = (run.clone(), courier.clone());
    let subject = lifeline_events::run_subject(&record.community, &run);
    api.execute(
        &caller,
        key,
        correlation_id(&headers),
        |_| subject,
        Concurrency::Settled,
        move |views, _| {
            command::depart_run(views, command::DepartRun { run, courier }).map(Event::RunDeparted)
        },
        |_, appended| Accepted {
            run: Some(answered_run),
            courier: answered_courier,
            ..Accepted::from(appended)
        },
    )
    .await
}

/// Mark a departed run back at the checkpoint (staff, or its courier).
#[utoipa::path(post, path = "/v1/runs/{run}/return", tag = "dispatch",
    params(("run" = String, Path), ("Idempotency-Key" = Option<String>, Header)),
    responses((status = 202, body = Accepted), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "`run_not_out`", body = ErrorBody)),
    security(("bearer" = [])))]
pub(super) async fn return_run(
    State(api): State<Arc<Api>>,
    caller: Caller,
    headers: HeaderMap,
    Path(run): Path<String>,
) -> Result<Response, ApiError> {
    let key = key_from(&headers)?;
    let record = api.run(&run).await?;
    let own = caller.is(Role::Courier) && record.courier.as_deref() == Some(caller.0.id.as_str());
    let staff = caller.is(Role::Staff) && caller.sees_community(&record.community);
    if !(own || staff) {
        return Err(caller.forbidden("return this run"));
    }
    let answered = run.clone();
    let subject = lifeline_events::run_subject(&record.community, &run);
    api.execute(
        &caller,
        key,
        correlation_id(&headers),
        |_| subject,
        Concurrency::Settled,
        move |views, _| {
            command::return_run(views, command::ReturnRun { run }).map(Event::RunReturned)
        },
        |_, appended| Accepted {
            run: Some(answered),
            ..Accepted::from(appended)
        },
    )
    .await
}
