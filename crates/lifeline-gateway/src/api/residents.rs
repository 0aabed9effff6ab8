//! Residents, and staff ordering on a household's behalf: place, cancel, follow orders.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use lifeline_domain::command;
use lifeline_domain::delivery::OrderRecord;
use lifeline_events::{Event, OrderLine, Priority};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{Accepted, Api, Body, Concurrency, OrderList, blocking, correlation_id, token_or_404};
use crate::access::{Caller, Role};
use crate::error::{ApiError, ErrorBody};
use crate::idempotency::key_from;

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
    /// 1 to 50 lines, each item once.
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
    /// What the partner's stock could reserve for each line, and what is short and waits
    /// for the next restock (urgent orders first). Absent when inventory has not applied
    /// the order within 2 s of the append (read the order's partner stock view later).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lines: Option<Vec<LineReserved>>,
}

/// One line of a placed order as inventory reserved it.
#[derive(Debug, Serialize, ToSchema)]
pub struct LineReserved {
    pub item: String,
    pub requested: u32,
    pub reserved: u32,
    /// `requested - reserved`: waiting in the item's shortfall queue.
    pub short: u32,
}

/// What inventory reserved for `order`, once it has applied the append at `sequence`.
async fn reserved_lines(api: &Api, order: String, sequence: u64) -> Option<Vec<LineReserved>> {
    if !api
        .inventory_status
        .reached(sequence, std::time::Duration::from_secs(2))
        .await
    {
        return None;
    }
    let store = Arc::clone(&api.inventory);
    let reservation = blocking(move || lifeline_readmodel::inventory::reservation(&store, &order))
        .await
        .ok()??;
    Some(
        reservation
            .lines
            .iter()
            .map(|line| LineReserved {
                item: line.item.clone(),
                requested: line.requested,
                reserved: line.reserved,
                short: line.shortfall(),
            })
            .collect(),
    )
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
        (status = 422, description = "`unknown_household`, `unknown_partner`, `unknown_item`, `quantity_out_of_range`, `duplicate_line`, `empty_order`, `too_many_lines`", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub(super) async fn place_order(
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
    let household = api
        .household_acted_for(&caller, &request.household, "order for this household")
        .await?;
    let command = command::PlaceOrder {
        order: String::new(),
        household: request.household,
        partner: request.partner,
        lines: request
            .lines
            .into_iter()
            .map(|line| OrderLine {
                item: line.item,
                quantity: line.quantity,
            })
            .collect(),
        priority: request.priority,
        on_behalf_by: caller.is(Role::Staff).then(|| caller.0.id.clone()),
    };
    let community = household.community;
    api.execute_then(
        &caller,
        key,
        correlation,
        |event_id| lifeline_events::order_subject(&community, &event_id.to_string()),
        Concurrency::New,
        move |views, event_id| {
            let command = command::PlaceOrder {
                order: event_id.to_string(),
                ..command
            };
            command::place_order(views, command).map(Event::OrderPlaced)
        },
        |event, appended| {
            let placed = match event {
                Event::OrderPlaced(placed) => Some(placed.clone()),
                _ => None,
            };
            let api = Arc::clone(&api);
            async move {
                let placed = placed?;
                let lines =
                    reserved_lines(&api, placed.order.clone(), appended.stream_sequence).await;
                Some(OrderAccepted {
                    order: placed.order,
                    community: placed.community,
                    household: placed.household,
                    priority: placed.priority,
                    event_id: appended.event_id.to_string(),
                    stream_sequence: appended.stream_sequence,
                    lines,
                })
            }
        },
    )
    .await
}

/// An order's stage, items and full history.
#[utoipa::path(get, path = "/v1/orders/{order}", tag = "residents",
    params(("order" = String, Path)),
    responses((status = 200, description = "the order with its history", body = OrderRecord), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub(super) async fn get_order(
    State(api): State<Arc<Api>>,
    caller: Caller,
    Path(order): Path<String>,
) -> Result<Response, ApiError> {
    let record = visible_order(&api, &caller, &order).await?;
    Ok(Json(record).into_response())
}

/// Loads an order the caller may see: its household's people, staff of its community,
/// its partner, operators.
pub(super) async fn visible_order(
    api: &Api,
    caller: &Caller,
    order: &str,
) -> Result<OrderRecord, ApiError> {
    token_or_404(order, "order")?;
    let record = api
        .order(order)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no order {order}")))?;
    let allowed = caller.reads_household(&record.community, &record.household)
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
    params(("order" = String, Path), ("Idempotency-Key" = Option<String>, Header)),
    responses((status = 202, body = Accepted), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "`not_cancellable` (already picked, delivered or cancelled), or changed concurrently", body = ErrorBody)),
    security(("bearer" = [])))]
pub(super) async fn cancel_order(
    State(api): State<Arc<Api>>,
    caller: Caller,
    headers: HeaderMap,
    Path(order): Path<String>,
    Body(request): Body<CancelOrder>,
) -> Result<Response, ApiError> {
    let key = key_from(&headers)?;
    let record = visible_order(&api, &caller, &order).await?;
    if !caller.acts_for_household(&record.community, &record.household) {
        return Err(caller.forbidden("cancel this order"));
    }
    let answered = order.clone();
    let subject = lifeline_events::order_subject(&record.community, &order);
    // A cancel contends with the order's pick, which lands on another subject: it appends
    // only if no pick of the order is in the stream at all (decided or still in flight).
    let picks = format!("lifeline.picks.{}.*.{order}", record.community);
    api.execute(
        &caller,
        key,
        correlation_id(&headers),
        |_| subject,
        Concurrency::SettledNoneOn(picks),
        move |views, _| {
            command::cancel_order(
                views,
                command::CancelOrder {
                    order,
                    reason: request.reason,
                },
            )
            .map(Event::OrderCancelled)
        },
        |_, appended| Accepted {
            order: Some(answered),
            ..Accepted::from(appended)
        },
    )
    .await
}

/// A household's orders.
#[utoipa::path(get, path = "/v1/households/{household}/orders", tag = "residents",
    params(("household" = String, Path)),
    responses((status = 200, body = OrderList), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub(super) async fn household_orders(
    State(api): State<Arc<Api>>,
    caller: Caller,
    Path(household): Path<String>,
) -> Result<Response, ApiError> {
    token_or_404(&household, "household")?;
    let id = household.clone();
    let known = api
        .decide(move |views| views.household(&id))
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no household {household}")))?;
    if !caller.reads_household(&known.community, &known.household) {
        return Err(caller.forbidden("see this household"));
    }
    let store = Arc::clone(&api.delivery);
    let orders =
        blocking(move || lifeline_readmodel::delivery::orders_of_household(&store, &household))
            .await?;
    Ok(Json(OrderList { orders }).into_response())
}
