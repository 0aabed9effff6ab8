//! Staff and campaigns: start a broadcast (the same lines to every household of a scope),
//! follow it per building. The campaigns process manager places the orders; rules in
//! `lifeline_domain::command::start_campaign` and `lifeline_domain::campaign`.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use lifeline_domain::command;
use lifeline_events::{CampaignScope, Event, OrderLine, Priority};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{Api, Body, Concurrency, LineRequest, blocking, correlation_id, token_or_404};
use crate::access::{Caller, Role};
use crate::error::{ApiError, ErrorBody};
use crate::idempotency::key_from;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartCampaign {
    /// For people, 1 to 200 characters: "A free melon for every household".
    pub name: String,
    /// The partner that picks every order.
    pub partner: String,
    /// The same lines for every household (the order rules apply: 1 to 50 lines, 1 to 100
    /// each).
    pub lines: Vec<LineRequest>,
    /// Which households: buildings and/or vulnerabilities; empty or absent is everyone.
    #[serde(default)]
    pub scope: CampaignScope,
    /// At least this priority (each household's own floor still applies).
    #[serde(default)]
    #[schema(value_type = Option<String>, example = "routine")]
    pub priority: Option<Priority>,
    /// RFC 3339. Makes it a group buy: nothing is sent until households sign up
    /// (`POST /v1/campaigns/{campaign}/join`) before this time.
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, example = "2020-06-15T20:00:00+08:00")]
    pub signup_until: Option<time::OffsetDateTime>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CampaignAccepted {
    pub campaign: String,
    pub community: String,
    pub event_id: String,
    pub stream_sequence: u64,
}

/// Start a campaign: one order for every household of the scope, placed by the campaigns
/// process manager within moments (follow it with the progress view).
#[utoipa::path(post, path = "/v1/communities/{community}/campaigns", tag = "staff", request_body = StartCampaign,
    params(("community" = String, Path), ("Idempotency-Key" = Option<String>, Header)),
    responses((status = 202, body = CampaignAccepted), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 422, description = "`campaign_name`, `unknown_partner`, `unknown_item`, `unknown_building`, `empty_order`, `quantity_out_of_range`, `duplicate_line`, `too_many_lines`, or a body of the wrong shape", body = ErrorBody)),
    security(("bearer" = [])))]
pub(super) async fn start_campaign(
    State(api): State<Arc<Api>>,
    caller: Caller,
    headers: HeaderMap,
    Path(community): Path<String>,
    Body(request): Body<StartCampaign>,
) -> Result<Response, ApiError> {
    token_or_404(&community, "community")?;
    let key = key_from(&headers)?;
    if !(caller.is(Role::Staff) && caller.sees_community(&community)) {
        return Err(caller.forbidden("start campaigns in this community"));
    }
    let subject_community = community.clone();
    let campaign_slice = u32::try_from(lifeline_readmodel::campaign_slice()).unwrap_or(u32::MAX);
    api.execute(
        &caller,
        key,
        correlation_id(&headers),
        |event_id| lifeline_events::campaign_subject(&subject_community, &event_id.to_string()),
        Concurrency::New,
        move |views, event_id| {
            command::start_campaign(
                views,
                command::StartCampaign {
                    campaign: event_id.to_string(),
                    community,
                    name: request.name,
                    partner: request.partner,
                    lines: request
                        .lines
                        .into_iter()
                        .map(|line| OrderLine {
                            item: line.item,
                            quantity: line.quantity,
                        })
                        .collect(),
                    scope: request.scope,
                    priority: request.priority,
                    signup_until: request.signup_until,
                    slice: Some(campaign_slice),
                },
            )
            .map(Event::CampaignStarted)
        },
        |event, appended| match event {
            Event::CampaignStarted(started) => Some(CampaignAccepted {
                campaign: started.campaign.clone(),
                community: started.community.clone(),
                event_id: appended.event_id.to_string(),
                stream_sequence: appended.stream_sequence,
            }),
            _ => None,
        },
    )
    .await
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JoinCampaign {
    pub household: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Joined {
    pub campaign: String,
    /// The household's order for the group buy.
    pub order: String,
    pub household: String,
    pub event_id: String,
    pub stream_sequence: u64,
}

/// Sign a household up to a group buy before its cutoff (its resident, or staff of its
/// community): one order of the campaign's lines. Once per household: a second sign-up is
/// 409 `conflict`.
#[utoipa::path(post, path = "/v1/campaigns/{campaign}/join", tag = "residents", request_body = JoinCampaign,
    params(("campaign" = String, Path), ("Idempotency-Key" = Option<String>, Header)),
    responses((status = 202, body = Joined), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, description = "`unknown_campaign`", body = ErrorBody),
        (status = 409, description = "`not_a_group_buy`, `signup_closed`, or already signed up (`conflict`)", body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 422, description = "`unknown_household`, `not_in_scope`, or the order rules (`insufficient_stock` is not one: a short sign-up waits for restock)", body = ErrorBody)),
    security(("bearer" = [])))]
pub(super) async fn join_campaign(
    State(api): State<Arc<Api>>,
    caller: Caller,
    headers: HeaderMap,
    Path(campaign): Path<String>,
    Body(request): Body<JoinCampaign>,
) -> Result<Response, ApiError> {
    token_or_404(&campaign, "campaign")?;
    let key = key_from(&headers)?;
    if !matches!(caller.0.role, Role::Resident | Role::Staff) {
        return Err(caller.forbidden("sign up to campaigns"));
    }
    let household = api
        .household_acted_for(&caller, &request.household, "sign up for this household")
        .await?;
    // A campaign started a moment ago is found once the registry has caught up.
    if api.campaign(&campaign).await?.is_none() {
        return Err(command::CommandError::UnknownCampaign { campaign }.into());
    }
    let order = command::signup_order_id(&campaign, &household.household);
    let subject = lifeline_events::order_subject(&household.community, &order);
    let on_behalf_by = caller.is(Role::Staff).then(|| caller.0.id.clone());
    api.execute(
        &caller,
        key,
        correlation_id(&headers),
        |_| subject,
        Concurrency::New,
        move |views, _| {
            command::join_campaign(
                views,
                command::JoinCampaign {
                    campaign,
                    household: request.household,
                    at: time::OffsetDateTime::now_utc(),
                    on_behalf_by,
                },
            )
            .map(Event::OrderPlaced)
        },
        |event, appended| match event {
            Event::OrderPlaced(placed) => Some(Joined {
                campaign: placed.campaign.clone().unwrap_or_default(),
                order: placed.order.clone(),
                household: placed.household.clone(),
                event_id: appended.event_id.to_string(),
                stream_sequence: appended.stream_sequence,
            }),
            _ => None,
        },
    )
    .await
}

/// One building's orders of a campaign.
#[derive(Debug, Serialize, ToSchema)]
pub struct BuildingProgress {
    pub building: String,
    pub ordered: u64,
    /// Picked and on their way (picked, at the checkpoint, on a run).
    pub on_the_way: u64,
    pub delivered: u64,
    /// Failed for good, or nothing could be picked.
    pub failed: u64,
    pub cancelled: u64,
    /// Every stage with its count.
    pub by_stage: BTreeMap<String, u64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CampaignProgress {
    pub campaign: String,
    pub community: String,
    pub ordered: u64,
    pub delivered: u64,
    pub buildings: Vec<BuildingProgress>,
}

/// A campaign's progress per building (ordered, on the way, delivered, failed), from the
/// delivery projection. 404 until its first order is seen.
#[utoipa::path(get, path = "/v1/communities/{community}/campaigns/{campaign}", tag = "staff",
    params(("community" = String, Path), ("campaign" = String, Path)),
    responses((status = 200, body = CampaignProgress), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub(super) async fn campaign_progress(
    State(api): State<Arc<Api>>,
    caller: Caller,
    Path((community, campaign)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    token_or_404(&community, "community")?;
    token_or_404(&campaign, "campaign")?;
    let allowed = caller.reads_community(&community);
    if !allowed {
        return Err(caller.forbidden("see this community's campaigns"));
    }
    let store = Arc::clone(&api.delivery);
    let (wanted_community, wanted_campaign) = (community.clone(), campaign.clone());
    let progress = blocking(move || {
        lifeline_readmodel::delivery::campaign_progress(&store, &wanted_community, &wanted_campaign)
    })
    .await?;
    if progress.is_empty() {
        return Err(ApiError::NotFound(format!(
            "no campaign {campaign} in {community} (yet)"
        )));
    }
    let buildings: Vec<BuildingProgress> = progress
        .into_iter()
        .map(|(building, stages)| {
            let count = |names: &[&str]| -> u64 {
                names
                    .iter()
                    .map(|name| stages.get(name).copied().unwrap_or(0))
                    .sum()
            };
            BuildingProgress {
                ordered: stages.values().sum(),
                on_the_way: count(&["picked", "at_checkpoint", "on_run"]),
                delivered: count(&["delivered"]),
                failed: count(&["failed", "nothing_picked"]),
                cancelled: count(&["cancelled"]),
                by_stage: stages
                    .into_iter()
                    .map(|(stage, n)| (stage.to_owned(), n))
                    .collect(),
                building,
            }
        })
        .collect();
    Ok(Json(CampaignProgress {
        ordered: buildings.iter().map(|b| b.ordered).sum(),
        delivered: buildings.iter().map(|b| b.delivered).sum(),
        campaign,
        community,
        buildings,
    })
    .into_response())
}
