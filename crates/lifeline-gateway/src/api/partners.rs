//! Supermarket partners: their orders, their picks, their stock.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use lifeline_domain::command::{self, CommandError};
use lifeline_domain::delivery::OrderRecord;
use lifeline_domain::order::Stage;
use lifeline_events::{Event, PickLine};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{
    Accepted, Api, Body, Concurrency, OrderList, Params, Trace, blocking, correlation_id,
    token_or_404,
};
use crate::access::{Caller, Role};
use crate::error::{ApiError, ErrorBody};
use crate::idempotency::key_from;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StageFilter {
    /// Stage to list (default `placed`: waiting to be picked).
    #[param(value_type = Option<String>)]
    pub stage: Option<Stage>,
}

/// Reads of a partner's orders and stock: the partner, and operators.
fn check_partner(caller: &Caller, partner: &str) -> Result<(), ApiError> {
    token_or_404(partner, "partner")?;
    if caller.is_partner(partner) || caller.is(Role::Operator) {
        Ok(())
    } else {
        Err(caller.forbidden("see this partner's orders and stock"))
    }
}

/// Picks and restocks: the partner only (operators read, they do not act).
fn check_partner_acts(caller: &Caller, partner: &str) -> Result<(), ApiError> {
    token_or_404(partner, "partner")?;
    if caller.is_partner(partner) {
        Ok(())
    } else {
        Err(caller.forbidden("act for this partner"))
    }
}

/// The partner's orders in a stage (default: waiting to be picked).
#[utoipa::path(get, path = "/v1/partners/{partner}/orders", tag = "partners",
    params(("partner" = String, Path), StageFilter),
    responses((status = 200, body = OrderList), (status = 400, description = "unknown stage", body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = [])))]
pub(super) async fn partner_orders(
    State(api): State<Arc<Api>>,
    caller: Caller,
    Path(partner): Path<String>,
    Params(filter): Params<StageFilter>,
) -> Result<Response, ApiError> {
    check_partner(&caller, &partner)?;
    let stage = filter.stage.unwrap_or(Stage::Placed);
    let store = Arc::clone(&api.delivery);
    let orders =
        blocking(move || lifeline_readmodel::delivery::orders_of_partner(&store, &partner)).await?;
    let orders: Vec<OrderRecord> = orders
        .into_iter()
        .filter(|order| order.status.stage == stage)
        .collect();
    Ok(Json(OrderList { orders }).into_response())
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PostPick {
    pub order: String,
    /// One line per ordered item: `outcome` `picked` (picked == ordered), `short`
    /// (picked < ordered) or `substituted` (with `substitute`).
    #[schema(value_type = Vec<Object>)]
    pub lines: Vec<PickLine>,
    /// The pick sheet it was picked from (the sheet's `batch`), so a vehicle can carry the
    /// sheet's orders as one batch.
    #[serde(default)]
    pub batch: Option<String>,
}

/// Post the pick of one of the partner's orders.
#[utoipa::path(post, path = "/v1/partners/{partner}/picks", tag = "partners", request_body = PostPick,
    params(("partner" = String, Path), ("Idempotency-Key" = Option<String>, Header)),
    responses((status = 202, body = Accepted), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, description = "`wrong_partner`: another partner's order", body = ErrorBody),
        (status = 409, description = "`not_waiting_for_pick`, `insufficient_stock`", body = ErrorBody),
        (status = 422, description = "`unknown_order`, `unknown_item`, `invalid_pick`, `pick_lines_mismatch`", body = ErrorBody)),
    security(("bearer" = [])))]
pub(super) async fn post_pick(
    State(api): State<Arc<Api>>,
    caller: Caller,
    headers: HeaderMap,
    Path(partner): Path<String>,
    Body(request): Body<PostPick>,
) -> Result<Response, ApiError> {
    check_partner_acts(&caller, &partner)?;
    let key = key_from(&headers)?;
    if let Some(batch) = &request.batch {
        super::token_or_404(batch, "batch")?;
    }
    // The pick's subject needs the order's community.
    let record = api
        .order(&request.order)
        .await?
        .ok_or_else(|| CommandError::UnknownOrder {
            order: request.order.clone(),
        })?;
    let subject = lifeline_events::pick_subject(&record.community, &partner, &record.order);
    // A pick contends with everything on the order's own subject (a cancel above all): it
    // appends only if nothing landed there since it decided.
    let order_subject = lifeline_events::order_subject(&record.community, &record.order);
    // The pick's stock check reads the reservation: inventory must have seen the order.
    api.inventory_caught_up().await?;
    let trace = order_trace(&api, &record, correlation_id(&headers)).await;
    let answered = request.order.clone();
    api.execute(
        &caller,
        key,
        trace,
        |_| subject,
        Concurrency::SettledOn(order_subject),
        move |views, _| {
            let command = command::PostPick {
                order: request.order,
                partner,
                lines: request.lines,
                batch: request.batch,
            };
            command::pick_order(views, command).map(Event::OrderPicked)
        },
        |_, appended| Accepted {
            order: Some(answered),
            ..Accepted::from(appended)
        },
    )
    .await
}

/// A pick follows its order: the order's correlation id, caused by its `order.placed`
/// (read back from the order's subject). Falls back to the request's own correlation when
/// the placed event cannot be read.
async fn order_trace(api: &Api, record: &OrderRecord, fallback: uuid::Uuid) -> Trace {
    let placed_id = record
        .history
        .first()
        .and_then(|placed| uuid::Uuid::try_parse(&placed.event_id).ok());
    let subject = lifeline_events::order_subject(&record.community, &record.order);
    if let Some(placed_id) = placed_id
        && let Ok(Some((_, placed))) =
            lifeline_bus::find_event_on_subject(&api.jetstream, &subject, placed_id).await
    {
        return Trace {
            correlation: placed.correlation_id,
            causation: Some(placed.id),
        };
    }
    Trace::from(fallback)
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
    responses((status = 202, body = Accepted), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 422, description = "`unknown_item`, `quantity_out_of_range`", body = ErrorBody)),
    security(("bearer" = [])))]
pub(super) async fn restock(
    State(api): State<Arc<Api>>,
    caller: Caller,
    headers: HeaderMap,
    Path(partner): Path<String>,
    Body(request): Body<Restock>,
) -> Result<Response, ApiError> {
    check_partner_acts(&caller, &partner)?;
    let key = key_from(&headers)?;
    let command = command::Restock {
        partner,
        item: request.item,
        quantity: request.quantity,
    };
    let subject =
        lifeline_events::subject_for(&Event::StockReceived(lifeline_events::StockReceived {
            partner: command.partner.clone(),
            item: command.item.clone(),
            quantity: command.quantity,
        }));
    api.execute(
        &caller,
        key,
        correlation_id(&headers),
        |_| subject,
        Concurrency::None,
        move |views, _| command::restock(views, command).map(Event::StockReceived),
        |_, appended| Accepted::from(appended),
    )
    .await
}

/// A partner's stock rows.
#[derive(Debug, Serialize, ToSchema)]
pub struct StockList {
    pub stock: Vec<lifeline_readmodel::inventory::StockRow>,
}

/// The partner's stock: on hand, reserved by orders, available.
#[utoipa::path(get, path = "/v1/partners/{partner}/stock", tag = "partners",
    params(("partner" = String, Path)),
    responses((status = 200, body = StockList), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = [])))]
pub(super) async fn partner_stock(
    State(api): State<Arc<Api>>,
    caller: Caller,
    Path(partner): Path<String>,
) -> Result<Response, ApiError> {
    check_partner(&caller, &partner)?;
    let store = Arc::clone(&api.inventory);
    let stock =
        blocking(move || lifeline_readmodel::inventory::stock(&store, Some(&partner))).await?;
    Ok(Json(StockList { stock }).into_response())
}
