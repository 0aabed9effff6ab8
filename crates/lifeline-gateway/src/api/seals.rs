//! Staff seal and unseal a community, a building or a unit. Rules in
//! `lifeline_domain::command::change_seal`; what a seal changes is decided there and in the
//! run and drop commands.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use lifeline_domain::command;
use lifeline_events::{Event, SealScope};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{Api, Body, Concurrency, correlation_id, token_or_404};
use crate::access::{Caller, Role};
use crate::error::{ApiError, ErrorBody};
use crate::idempotency::key_from;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeSeal {
    /// `{"level": "community"}`, `{"level": "building", "building": ...}` or
    /// `{"level": "unit", "building": ..., "unit": ...}`.
    #[schema(value_type = Object)]
    pub scope: SealScope,
    /// `true` seals, `false` lifts the seal.
    pub sealed: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SealAccepted {
    pub community: String,
    pub sealed: bool,
    pub event_id: String,
    pub stream_sequence: u64,
}

/// Seal or unseal a scope of the community. Behind a sealed building or unit, only the
/// door-to-door group rides (`courier_not_cleared` otherwise) and a delivered drop needs a
/// proof code or photo (`proof_required`).
#[utoipa::path(post, path = "/v1/communities/{community}/seals", tag = "staff", request_body = ChangeSeal,
    params(("community" = String, Path), ("Idempotency-Key" = Option<String>, Header)),
    responses((status = 202, body = SealAccepted), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 422, description = "`unknown_building`, or a body of the wrong shape", body = ErrorBody)),
    security(("bearer" = [])))]
pub(super) async fn change_seal(
    State(api): State<Arc<Api>>,
    caller: Caller,
    headers: HeaderMap,
    Path(community): Path<String>,
    Body(request): Body<ChangeSeal>,
) -> Result<Response, ApiError> {
    token_or_404(&community, "community")?;
    let key = key_from(&headers)?;
    if !(caller.is(Role::Staff) && caller.sees_community(&community)) {
        return Err(caller.forbidden("seal in this community"));
    }
    let subject = format!("lifeline.registry.{community}.seal");
    api.execute(
        &caller,
        key,
        correlation_id(&headers),
        |_| subject,
        Concurrency::None,
        move |views, _| {
            command::change_seal(
                views,
                command::ChangeSeal {
                    community,
                    scope: request.scope,
                    sealed: request.sealed,
                },
            )
            .map(Event::SealChanged)
        },
        |event, appended| match event {
            Event::SealChanged(changed) => Some(SealAccepted {
                community: changed.community.clone(),
                sealed: changed.sealed,
                event_id: appended.event_id.to_string(),
                stream_sequence: appended.stream_sequence,
            }),
            _ => None,
        },
    )
    .await
}
