//! Parcels recorded at the checkpoint, and medicine errands run by volunteers. Rules in
//! `lifeline_domain::command` (`receive_parcel`, `request_errand`, `accept_errand`,
//! `collect_errand`, `record_drop`); who may ask is decided here.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use lifeline_domain::command::{self, CommandError, DropOutcome};
use lifeline_domain::delivery::OrderRecord;
use lifeline_events::{DropFailure, ErrandRoute, Event, Proof, order_subject};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::couriers::Outcome;
use super::{Accepted, Api, Body, Concurrency, correlation_id, token_or_404};
use crate::access::{Caller, Role};
use crate::error::{ApiError, ErrorBody};
use crate::idempotency::key_from;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReceiveParcel {
    pub household: String,
    /// The courier company, 1 to 120 characters.
    pub carrier: String,
    /// The tracking number on the parcel, 1 to 120 characters.
    pub tracking: String,
    /// 1 to 30,000 grams.
    pub weight_g: u32,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RequestErrand {
    pub household: String,
    /// The hospital or pharmacy to collect from, 1 to 120 characters.
    pub place: String,
    /// The medicine, as the prescription names it, 1 to 120 characters.
    pub medicine: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CollectErrand {
    /// `checkpoint` (a tricycle run takes it on) or `door` (the volunteer takes it there
    /// and posts the drop to `/v1/errands/{order}/drops`).
    #[schema(value_type = String, example = "door")]
    pub route: ErrandRoute,
    /// 1 to 30,000 grams.
    pub weight_g: u32,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ErrandDrop {
    pub outcome: Outcome,
    /// Required when failed (the reasons of a run's drops).
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub reason: Option<DropFailure>,
    #[serde(default)]
    pub note: Option<String>,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub proof: Option<Proof>,
}

/// The 202 answer to a new parcel or errand.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrderCreated {
    pub order: String,
    pub community: String,
    pub household: String,
    pub event_id: String,
    pub stream_sequence: u64,
}

fn created(event: &Event, appended: super::Appended) -> Option<OrderCreated> {
    let (order, community, household) = match event {
        Event::ParcelReceived(p) => (&p.order, &p.community, &p.household),
        Event::ErrandRequested(e) => (&e.order, &e.community, &e.household),
        _ => return None,
    };
    Some(OrderCreated {
        order: order.clone(),
        community: community.clone(),
        household: household.clone(),
        event_id: appended.event_id.to_string(),
        stream_sequence: appended.stream_sequence,
    })
}

/// Record a courier company's parcel handed in at the checkpoint (staff of the community).
/// It starts at the checkpoint, rides that day's runs and is due within 6 hours.
#[utoipa::path(post, path = "/v1/communities/{community}/parcels", tag = "staff", request_body = ReceiveParcel,
    params(("community" = String, Path), ("Idempotency-Key" = Option<String>, Header)),
    responses((status = 202, body = OrderCreated), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 422, description = "`unknown_household` (or not in this community), `invalid_text`, `weight_out_of_range`", body = ErrorBody)),
    security(("bearer" = [])))]
pub(super) async fn receive_parcel(
    State(api): State<Arc<Api>>,
    caller: Caller,
    headers: HeaderMap,
    Path(community): Path<String>,
    Body(request): Body<ReceiveParcel>,
) -> Result<Response, ApiError> {
    token_or_404(&community, "community")?;
    let key = key_from(&headers)?;
    if !(caller.is(Role::Staff) && caller.sees_community(&community)) {
        return Err(caller.forbidden("record parcels in this community"));
    }
    let subject_community = community.clone();
    api.execute(
        &caller,
        key,
        correlation_id(&headers),
        |event_id| order_subject(&subject_community, &event_id.to_string()),
        Concurrency::New,
        move |views, event_id| {
            let parcel = command::receive_parcel(
                views,
                command::ReceiveParcel {
                    order: event_id.to_string(),
                    household: request.household.clone(),
                    carrier: request.carrier,
                    tracking: request.tracking,
                    weight_g: request.weight_g,
                },
            )?;
            if parcel.community != community {
                return Err(CommandError::UnknownHousehold {
                    household: request.household,
                });
            }
            Ok(Event::ParcelReceived(parcel))
        },
        created,
    )
    .await
}

/// Ask for a prescription to be collected (the household's resident, or staff of its
/// community on its behalf). Always urgent: 2 hours to the door.
#[utoipa::path(post, path = "/v1/errands", tag = "residents", request_body = RequestErrand,
    params(("Idempotency-Key" = Option<String>, Header)),
    responses((status = 202, body = OrderCreated), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 422, description = "`unknown_household`, `invalid_text`", body = ErrorBody)),
    security(("bearer" = [])))]
pub(super) async fn request_errand(
    State(api): State<Arc<Api>>,
    caller: Caller,
    headers: HeaderMap,
    Body(request): Body<RequestErrand>,
) -> Result<Response, ApiError> {
    let key = key_from(&headers)?;
    if !matches!(caller.0.role, Role::Resident | Role::Staff) {
        return Err(caller.forbidden("ask for errands"));
    }
    let household = api
        .household_acted_for(&caller, &request.household, "ask for this household")
        .await?;
    let on_behalf_by = caller.is(Role::Staff).then(|| caller.0.id.clone());
    let community = household.community;
    api.execute(
        &caller,
        key,
        correlation_id(&headers),
        |event_id| order_subject(&community, &event_id.to_string()),
        Concurrency::New,
        move |views, event_id| {
            command::request_errand(
                views,
                command::RequestErrand {
                    order: event_id.to_string(),
                    household: request.household,
                    place: request.place,
                    medicine: request.medicine,
                    on_behalf_by,
                },
            )
            .map(Event::ErrandRequested)
        },
        created,
    )
    .await
}

/// The errand, for a courier (volunteer) of its community.
async fn errand_for_courier(
    api: &Api,
    caller: &Caller,
    order: &str,
) -> Result<OrderRecord, ApiError> {
    token_or_404(order, "errand")?;
    let record = api
        .order(order)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no errand {order}")))?;
    if !(caller.is(Role::Courier) && caller.sees_community(&record.community)) {
        return Err(caller.forbidden("run errands in this community"));
    }
    Ok(record)
}

fn errand_accepted(event: &Event, appended: super::Appended) -> Accepted {
    Accepted {
        order: event.order_id().map(str::to_owned),
        ..Accepted::from(appended)
    }
}

/// Take on an errand (a courier of its community; the courier is the volunteer). A second
/// volunteer gets 409 `errand_not_open`.
#[utoipa::path(post, path = "/v1/errands/{order}/accept", tag = "couriers",
    params(("order" = String, Path), ("Idempotency-Key" = Option<String>, Header)),
    responses((status = 202, body = Accepted), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "`errand_not_open`, or another command on the errand landed first", body = ErrorBody),
        (status = 422, description = "`not_an_errand`, `unknown_courier` (not a registered volunteer of the community)", body = ErrorBody)),
    security(("bearer" = [])))]
pub(super) async fn accept_errand(
    State(api): State<Arc<Api>>,
    caller: Caller,
    headers: HeaderMap,
    Path(order): Path<String>,
) -> Result<Response, ApiError> {
    let key = key_from(&headers)?;
    let record = errand_for_courier(&api, &caller, &order).await?;
    let volunteer = caller.0.id.clone();
    let subject = order_subject(&record.community, &order);
    api.execute(
        &caller,
        key,
        correlation_id(&headers),
        |_| subject,
        Concurrency::Settled,
        move |views, _| {
            command::accept_errand(views, command::AcceptErrand { order, volunteer })
                .map(Event::ErrandAccepted)
        },
        errand_accepted,
    )
    .await
}

/// The volunteer who accepted the errand has collected the medicine.
#[utoipa::path(post, path = "/v1/errands/{order}/collect", tag = "couriers", request_body = CollectErrand,
    params(("order" = String, Path), ("Idempotency-Key" = Option<String>, Header)),
    responses((status = 202, body = Accepted), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, description = "`not_your_errand`, or not a courier of the community", body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "`errand_not_open` (not accepted, or already collected)", body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 422, description = "`not_an_errand`, `weight_out_of_range`", body = ErrorBody)),
    security(("bearer" = [])))]
pub(super) async fn collect_errand(
    State(api): State<Arc<Api>>,
    caller: Caller,
    headers: HeaderMap,
    Path(order): Path<String>,
    Body(request): Body<CollectErrand>,
) -> Result<Response, ApiError> {
    let key = key_from(&headers)?;
    let record = errand_for_courier(&api, &caller, &order).await?;
    let volunteer = caller.0.id.clone();
    let subject = order_subject(&record.community, &order);
    api.execute(
        &caller,
        key,
        correlation_id(&headers),
        |_| subject,
        Concurrency::Settled,
        move |views, _| {
            command::collect_errand(
                views,
                command::CollectErrand {
                    order,
                    volunteer,
                    route: request.route,
                    weight_g: request.weight_g,
                },
            )
            .map(Event::ErrandCollected)
        },
        errand_accepted,
    )
    .await
}

/// The drop of an errand its volunteer took straight to the door. Requires an
/// `Idempotency-Key`, like a run's drops.
#[utoipa::path(post, path = "/v1/errands/{order}/drops", tag = "couriers", request_body = ErrandDrop,
    params(("order" = String, Path), ("Idempotency-Key" = String, Header)),
    responses((status = 202, body = Accepted), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, description = "not the volunteer carrying it", body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "`not_on_run` (not on its way to the door, or already dropped)", body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 422, description = "`failure_needs_reason`, `proof_required`", body = ErrorBody)),
    security(("bearer" = [])))]
pub(super) async fn errand_drop(
    State(api): State<Arc<Api>>,
    caller: Caller,
    headers: HeaderMap,
    Path(order): Path<String>,
    Body(request): Body<ErrandDrop>,
) -> Result<Response, ApiError> {
    let key = key_from(&headers)?
        .ok_or_else(|| ApiError::BadRequest("an Idempotency-Key header is required".into()))?;
    let record = errand_for_courier(&api, &caller, &order).await?;
    let carrier = record.errand.as_ref().and_then(|e| e.volunteer.as_deref());
    if carrier != Some(caller.0.id.as_str()) {
        return Err(caller.forbidden("drop this errand"));
    }
    let subject = lifeline_events::drop_subject(&record.community, &order);
    let outcome = match request.outcome {
        Outcome::Delivered => DropOutcome::Delivered {
            proof: request.proof.unwrap_or_default(),
        },
        Outcome::Failed => DropOutcome::Failed {
            reason: request.reason,
            note: request.note,
        },
    };
    api.execute(
        &caller,
        Some(key),
        correlation_id(&headers),
        |_| subject,
        Concurrency::Settled,
        move |views, _| {
            command::record_drop(
                views,
                command::RecordDrop {
                    run: order.clone(),
                    order,
                    outcome,
                },
            )
        },
        |event, appended| Accepted {
            order: event.order_id().map(str::to_owned),
            outcome: Some(
                match event {
                    Event::DropDelivered(_) => "delivered",
                    _ => "failed",
                }
                .to_owned(),
            ),
            ..Accepted::from(appended)
        },
    )
    .await
}
