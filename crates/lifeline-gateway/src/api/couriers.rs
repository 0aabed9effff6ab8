//! Couriers on a tricycle: the run's manifest and each drop at a door.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use lifeline_domain::command::{self, CommandError, DropOutcome};
use lifeline_events::{DropFailure, Event, Proof};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{Accepted, Api, Body, Concurrency, blocking, correlation_id};
use crate::access::{Caller, Role};
use crate::error::{ApiError, ErrorBody};
use crate::idempotency::key_from;

#[derive(Debug, Serialize, ToSchema)]
pub struct ManifestItem {
    pub item: String,
    pub name: String,
    /// The name in Chinese, when the catalogue has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name_zh: Option<String>,
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
    /// The building's names in English and Chinese, when the registry has them (the page
    /// shows the courier's language first).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub building_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub building_name_zh: Option<String>,
    pub unit: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unit_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unit_name_zh: Option<String>,
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
    /// The route's length in metres, from the checkpoint along the stops and back, when
    /// the run was routed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub distance_m: Option<u32>,
    /// In driving order.
    pub stops: Vec<ManifestStop>,
}

/// The run's manifest: stops in driving order and what to leave at which door.
#[utoipa::path(get, path = "/v1/runs/{run}/manifest", tag = "couriers",
    params(("run" = String, Path)),
    responses((status = 200, body = Manifest), (status = 401, body = ErrorBody), (status = 403, description = "another courier's run", body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub(super) async fn run_manifest(
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
    let stops = blocking(move || {
        let mut stops: Vec<ManifestStop> = Vec::new();
        for order_id in &orders {
            let Some(order) = lifeline_readmodel::delivery::order(&delivery, order_id)? else {
                continue;
            };
            let door = lifeline_readmodel::registry::household(&registry, &order.household)?
                .map(|h| h.door)
                .unwrap_or_default();
            let mut items = Vec::new();
            for line in &order.items {
                let (name, name_zh) = lifeline_readmodel::registry::item(&registry, &line.item)?
                    .map_or((line.item.clone(), None), |i| (i.name, i.name_zh));
                items.push(ManifestItem {
                    item: line.item.clone(),
                    name,
                    name_zh,
                    quantity: line.quantity,
                });
            }
            // A parcel or an errand has no catalogue lines: say what it is.
            let what = match (&order.parcel, &order.errand) {
                (Some(parcel), _) => Some((
                    "parcel",
                    format!("parcel {} ({})", parcel.tracking, parcel.carrier),
                )),
                (_, Some(errand)) => Some((
                    "errand",
                    format!("{} from {}", errand.medicine, errand.place),
                )),
                _ => None,
            };
            if let Some((item, name)) = what {
                items.push(ManifestItem {
                    item: item.to_owned(),
                    name,
                    name_zh: None,
                    quantity: 1,
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
                None => {
                    let building =
                        lifeline_readmodel::registry::building(&registry, &order.building)?;
                    let unit = lifeline_readmodel::registry::unit(&registry, &order.unit)?;
                    stops.push(ManifestStop {
                        building: order.building,
                        building_name: building.as_ref().map(|b| b.name.clone()),
                        building_name_zh: building.and_then(|b| b.name_zh),
                        unit: order.unit,
                        unit_name: unit.as_ref().and_then(|u| u.name.clone()),
                        unit_name_zh: unit.and_then(|u| u.name_zh),
                        household: order.household,
                        door,
                        orders: vec![entry],
                    });
                }
            }
        }
        Ok(stops)
    })
    .await?;
    Ok(Json(Manifest {
        run,
        community: record.community,
        tricycle: record.tricycle,
        state: record.state.as_str().to_owned(),
        courier: record.courier,
        distance_m: record.distance_m,
        stops,
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
    responses((status = 202, description = "recorded; a retry with the same key gets this first answer again", body = Accepted),
        (status = 400, description = "malformed JSON or no Idempotency-Key", body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, description = "another courier's run", body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "`run_not_out`, `not_on_run` (not on this run, or already dropped)", body = ErrorBody),
        (status = 422, description = "`unknown_order`, `failure_needs_reason`", body = ErrorBody)),
    security(("bearer" = [])))]
pub(super) async fn post_drop(
    State(api): State<Arc<Api>>,
    caller: Caller,
    headers: HeaderMap,
    Path(run): Path<String>,
    Body(request): Body<PostDrop>,
) -> Result<Response, ApiError> {
    let key = key_from(&headers)?
        .ok_or_else(|| ApiError::BadRequest("an Idempotency-Key header is required".into()))?;
    let record = api.run(&run).await?;
    if !(caller.is(Role::Courier) && record.courier.as_deref() == Some(caller.0.id.as_str())) {
        return Err(caller.forbidden("acknowledge drops of this run"));
    }
    let order = api
        .order(&request.order)
        .await?
        .ok_or_else(|| CommandError::UnknownOrder {
            order: request.order.clone(),
        })?;
    // Two different acknowledgements of one order race on its drop subject: the second
    // is decided after the first is applied, or its append fails with a conflict.
    let subject = lifeline_events::drop_subject(&order.community, &order.order);
    let outcome = match request.outcome {
        Outcome::Delivered => DropOutcome::Delivered {
            proof: request.proof.unwrap_or_default(),
        },
        Outcome::Failed => DropOutcome::Failed {
            reason: request.reason,
            note: request.note,
        },
    };
    let answered_outcome = match request.outcome {
        Outcome::Delivered => "delivered",
        Outcome::Failed => "failed",
    };
    let answered_order = order.order.clone();
    api.execute(
        &caller,
        Some(key),
        correlation_id(&headers),
        |_| subject,
        Concurrency::Settled,
        move |views, _| {
            let command = command::RecordDrop {
                run,
                order: order.order,
                outcome,
            };
            command::record_drop(views, command)
        },
        // From the event as stored: a retry answers what was recorded, not what it asked.
        |event, appended| {
            let outcome = match event {
                Event::DropDelivered(_) => "delivered",
                Event::DropFailed(_) => "failed",
                _ => answered_outcome,
            };
            Accepted {
                order: Some(event.order_id().map_or(answered_order, str::to_owned)),
                outcome: Some(outcome.to_owned()),
                ..Accepted::from(appended)
            }
        },
    )
    .await
}
