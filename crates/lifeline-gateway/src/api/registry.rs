//! Staff keep their community's registry, and read it back for the staff console:
//! buildings with their units, the households of a building (with contact phones, personal
//! data shown only to staff and operators of the community), the orders of a building, and
//! one `PUT` per kind of registration. Rules in `lifeline_domain::command` (registry.rs);
//! each write is one registration event on `lifeline.registry.<community>.<id>`.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use lifeline_domain::command::{self, CommandError, Views};
use lifeline_domain::delivery::OrderRecord;
use lifeline_events::{Event, Vulnerability, subject_for};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{Api, Body, Concurrency, Params, blocking, correlation_id, token_or_404};
use crate::access::{Caller, Role};
use crate::error::{ApiError, ErrorBody};
use crate::idempotency::key_from;

#[derive(Debug, Serialize, ToSchema)]
pub struct UnitInfo {
    pub unit: String,
    pub name: Option<String>,
    pub name_zh: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BuildingInfo {
    pub building: String,
    pub name: String,
    pub name_zh: Option<String>,
    pub x_m: i32,
    pub y_m: i32,
    pub units: Vec<UnitInfo>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BuildingList {
    pub community: String,
    pub buildings: Vec<BuildingInfo>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct BuildingFilter {
    /// The building (required).
    pub building: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HouseholdInfo {
    pub household: String,
    pub building: String,
    pub unit: String,
    pub door: String,
    pub head_count: u32,
    #[schema(value_type = Vec<String>)]
    pub vulnerabilities: Vec<Vulnerability>,
    /// The contact phone (personal data: staff and operators of the community only).
    pub phone: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HouseholdList {
    pub community: String,
    pub building: String,
    pub households: Vec<HouseholdInfo>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BuildingOrders {
    pub orders: Vec<OrderRecord>,
}

/// What a registration returns: the id registered and where the event landed.
#[derive(Debug, Serialize, ToSchema)]
pub struct Registered {
    pub id: String,
    pub event_id: String,
    pub stream_sequence: u64,
}

impl Registered {
    /// The answer to a registration: the id is the last token of the event's subject
    /// (`lifeline.registry.<community>.<id>`, `lifeline.catalogue.partner.<partner>`).
    fn of(event: &Event, appended: super::command::Appended) -> Registered {
        Registered {
            id: subject_for(event)
                .rsplit('.')
                .next()
                .unwrap_or_default()
                .to_owned(),
            event_id: appended.event_id.to_string(),
            stream_sequence: appended.stream_sequence,
        }
    }
}

fn staff_of(caller: &Caller, community: &str, what: &str) -> Result<(), ApiError> {
    token_or_404(community, "community")?;
    if caller.reads_community(community) {
        Ok(())
    } else {
        Err(caller.forbidden(what))
    }
}

fn required_building(filter: BuildingFilter) -> Result<String, ApiError> {
    let building = filter.building.ok_or_else(|| {
        ApiError::BadRequest("the query parameter `building` is required".to_owned())
    })?;
    token_or_404(&building, "building")?;
    Ok(building)
}

/// The community's buildings with their units, names in English and Chinese and places.
#[utoipa::path(get, path = "/v1/communities/{community}/buildings", tag = "staff",
    params(("community" = String, Path)),
    responses((status = 200, body = BuildingList), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub(super) async fn buildings(
    State(api): State<Arc<Api>>,
    caller: Caller,
    Path(community): Path<String>,
) -> Result<Response, ApiError> {
    staff_of(&caller, &community, "read this community's registry")?;
    let store = Arc::clone(&api.registry);
    let wanted = community.clone();
    let rows =
        blocking(move || lifeline_readmodel::registry::buildings_of(&store, &wanted)).await?;
    let buildings = rows
        .into_iter()
        .map(|(building, units)| BuildingInfo {
            building: building.building,
            name: building.name,
            name_zh: building.name_zh,
            x_m: building.x_m,
            y_m: building.y_m,
            units: units
                .into_iter()
                .map(|unit| UnitInfo {
                    unit: unit.unit,
                    name: unit.name,
                    name_zh: unit.name_zh,
                })
                .collect(),
        })
        .collect();
    Ok(Json(BuildingList {
        community,
        buildings,
    })
    .into_response())
}

/// The households of a building, with their flags and contact phones.
#[utoipa::path(get, path = "/v1/communities/{community}/households", tag = "staff",
    params(("community" = String, Path), BuildingFilter),
    responses((status = 200, body = HouseholdList), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub(super) async fn households(
    State(api): State<Arc<Api>>,
    caller: Caller,
    Path(community): Path<String>,
    Params(filter): Params<BuildingFilter>,
) -> Result<Response, ApiError> {
    staff_of(&caller, &community, "read this community's households")?;
    let building = required_building(filter)?;
    let store = Arc::clone(&api.registry);
    let (wanted, within) = (community.clone(), building.clone());
    let households = blocking(move || {
        let mut households = Vec::new();
        for household in lifeline_readmodel::registry::households_of(&store, &wanted)? {
            if household.building != within {
                continue;
            }
            let phone = lifeline_readmodel::registry::contact(&store, &household.household)?;
            households.push(HouseholdInfo {
                household: household.household,
                building: household.building,
                unit: household.unit,
                door: household.door,
                head_count: household.head_count,
                vulnerabilities: household.vulnerabilities,
                phone,
            });
        }
        Ok(households)
    })
    .await?;
    Ok(Json(HouseholdList {
        community,
        building,
        households,
    })
    .into_response())
}

/// The orders of a building, open and closed, each as `GET /v1/orders/{order}` shows it.
#[utoipa::path(get, path = "/v1/communities/{community}/orders", tag = "staff",
    params(("community" = String, Path), BuildingFilter),
    responses((status = 200, body = BuildingOrders), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub(super) async fn building_orders(
    State(api): State<Arc<Api>>,
    caller: Caller,
    Path(community): Path<String>,
    Params(filter): Params<BuildingFilter>,
) -> Result<Response, ApiError> {
    staff_of(&caller, &community, "read this community's orders")?;
    let building = required_building(filter)?;
    let store = Arc::clone(&api.delivery);
    let orders =
        blocking(move || lifeline_readmodel::delivery::orders_in_building(&store, &building))
            .await?;
    let orders = orders
        .into_iter()
        .filter(|order| order.community == community)
        .collect();
    Ok(Json(BuildingOrders { orders }).into_response())
}

/// Runs one registration: staff of the community only (operators read but do not act).
async fn register<D>(
    api: Arc<Api>,
    caller: Caller,
    headers: HeaderMap,
    community: String,
    id: String,
    decide: D,
) -> Result<Response, ApiError>
where
    D: FnOnce(&Views<'_>) -> Result<Event, CommandError> + Send + 'static,
{
    token_or_404(&community, "community")?;
    token_or_404(&id, "registration")?;
    let key = key_from(&headers)?;
    if !(caller.is(Role::Staff) && caller.sees_community(&community)) {
        return Err(caller.forbidden("change this community's registry"));
    }
    // Every registration of a community lands on lifeline.registry.<community>.<id>.
    let subject = format!("lifeline.registry.{community}.{id}");
    api.execute(
        &caller,
        key,
        correlation_id(&headers),
        |_| subject,
        Concurrency::Settled,
        move |views, _| decide(views),
        Registered::of,
    )
    .await
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutHousehold {
    pub building: String,
    pub unit: String,
    pub door: String,
    pub head_count: u32,
    /// The flags; absent keeps the household's flags as they are (none for a new one).
    #[serde(default)]
    #[schema(value_type = Option<Vec<String>>)]
    pub vulnerabilities: Option<Vec<Vulnerability>>,
}

/// Register a household, or correct one: `household.registered.v1`. A household found
/// vulnerable has its open routine orders raised to `priority` (`order.reprioritized.v1`).
#[utoipa::path(put, path = "/v1/communities/{community}/households/{household}", tag = "staff", request_body = PutHousehold,
    params(("community" = String, Path), ("household" = String, Path), ("Idempotency-Key" = Option<String>, Header)),
    responses((status = 202, body = Registered), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "`no_change`, `registered_elsewhere`, `open_orders` (a move while orders are on their way)", body = ErrorBody), (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 422, description = "`unknown_building`, `unknown_unit`, `invalid_text`, `out_of_range`", body = ErrorBody)),
    security(("bearer" = [])))]
pub(super) async fn put_household(
    State(api): State<Arc<Api>>,
    caller: Caller,
    headers: HeaderMap,
    Path((community, household)): Path<(String, String)>,
    Body(request): Body<PutHousehold>,
) -> Result<Response, ApiError> {
    token_or_404(&request.building, "building")?;
    token_or_404(&request.unit, "unit")?;
    let command = command::RegisterHousehold {
        community: community.clone(),
        household: household.clone(),
        building: request.building,
        unit: request.unit,
        door: request.door,
        head_count: request.head_count,
        vulnerabilities: request.vulnerabilities,
    };
    register(api, caller, headers, community, household, move |views| {
        command::register_household(views, command).map(Event::HouseholdRegistered)
    })
    .await
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutContact {
    /// 5 to 20 digits with an optional leading `+` (spaces, dashes and brackets are
    /// dropped); `null` removes the number.
    pub phone: Option<String>,
}

/// Set a household's contact phone: `contact.changed.v1`. Personal data: only the registry
/// keeps it, only staff and operators of the community read it, it is never logged.
#[utoipa::path(put, path = "/v1/communities/{community}/households/{household}/contact", tag = "staff", request_body = PutContact,
    params(("community" = String, Path), ("household" = String, Path), ("Idempotency-Key" = Option<String>, Header)),
    responses((status = 202, body = Registered), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "`no_change`", body = ErrorBody), (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 422, description = "`unknown_household`, `invalid_phone`", body = ErrorBody)),
    security(("bearer" = [])))]
pub(super) async fn put_contact(
    State(api): State<Arc<Api>>,
    caller: Caller,
    headers: HeaderMap,
    Path((community, household)): Path<(String, String)>,
    Body(request): Body<PutContact>,
) -> Result<Response, ApiError> {
    let command = command::SetContact {
        community: community.clone(),
        household: household.clone(),
        phone: request.phone,
    };
    register(api, caller, headers, community, household, move |views| {
        command::set_contact(views, command).map(Event::ContactChanged)
    })
    .await
}

const REFUSALS: &str = "`unknown_community`, `unknown_building`, `unknown_partner`, `unknown_group`, `invalid_text`, `out_of_range`, `weight_out_of_range`";

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutBuilding {
    pub name: String,
    pub name_zh: Option<String>,
    /// Metres east and north on the community's grid (routes use them).
    pub x_m: i32,
    pub y_m: i32,
}

/// Register a building, or correct its names and place: `building.registered.v1`.
#[utoipa::path(put, path = "/v1/communities/{community}/buildings/{building}", tag = "staff", request_body = PutBuilding,
    params(("community" = String, Path), ("building" = String, Path), ("Idempotency-Key" = Option<String>, Header)),
    responses((status = 202, body = Registered), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "`registered_elsewhere`", body = ErrorBody), (status = 413, body = ErrorBody), (status = 415, body = ErrorBody), (status = 422, description = REFUSALS, body = ErrorBody)),
    security(("bearer" = [])))]
pub(super) async fn put_building(
    State(api): State<Arc<Api>>,
    caller: Caller,
    headers: HeaderMap,
    Path((community, building)): Path<(String, String)>,
    Body(request): Body<PutBuilding>,
) -> Result<Response, ApiError> {
    let command = command::RegisterBuilding {
        community: community.clone(),
        building: building.clone(),
        name: request.name,
        name_zh: request.name_zh,
        x_m: request.x_m,
        y_m: request.y_m,
    };
    register(api, caller, headers, community, building, move |views| {
        command::register_building(views, command).map(Event::BuildingRegistered)
    })
    .await
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutUnit {
    pub building: String,
    pub name: Option<String>,
    pub name_zh: Option<String>,
}

/// Register a unit (stairwell, or a bungalow lane) of a building: `unit.registered.v1`.
#[utoipa::path(put, path = "/v1/communities/{community}/units/{unit}", tag = "staff", request_body = PutUnit,
    params(("community" = String, Path), ("unit" = String, Path), ("Idempotency-Key" = Option<String>, Header)),
    responses((status = 202, body = Registered), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "`registered_elsewhere`", body = ErrorBody), (status = 413, body = ErrorBody), (status = 415, body = ErrorBody), (status = 422, description = REFUSALS, body = ErrorBody)),
    security(("bearer" = [])))]
pub(super) async fn put_unit(
    State(api): State<Arc<Api>>,
    caller: Caller,
    headers: HeaderMap,
    Path((community, unit)): Path<(String, String)>,
    Body(request): Body<PutUnit>,
) -> Result<Response, ApiError> {
    token_or_404(&request.building, "building")?;
    let command = command::RegisterUnit {
        community: community.clone(),
        building: request.building,
        unit: unit.clone(),
        name: request.name,
        name_zh: request.name_zh,
    };
    register(api, caller, headers, community, unit, move |views| {
        command::register_unit(views, command).map(Event::UnitRegistered)
    })
    .await
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutVolunteer {
    pub name: String,
    /// One of the story's work groups: rapid_delivery, supplies, security, disinfection,
    /// medicine_runs, liaison, residents_requests.
    pub group: String,
}

/// Register a volunteer in a work group, or move them: `volunteer.registered.v1`.
#[utoipa::path(put, path = "/v1/communities/{community}/volunteers/{volunteer}", tag = "staff", request_body = PutVolunteer,
    params(("community" = String, Path), ("volunteer" = String, Path), ("Idempotency-Key" = Option<String>, Header)),
    responses((status = 202, body = Registered), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "`registered_elsewhere`", body = ErrorBody), (status = 413, body = ErrorBody), (status = 415, body = ErrorBody), (status = 422, description = REFUSALS, body = ErrorBody)),
    security(("bearer" = [])))]
pub(super) async fn put_volunteer(
    State(api): State<Arc<Api>>,
    caller: Caller,
    headers: HeaderMap,
    Path((community, volunteer)): Path<(String, String)>,
    Body(request): Body<PutVolunteer>,
) -> Result<Response, ApiError> {
    let command = command::RegisterVolunteer {
        community: community.clone(),
        volunteer: volunteer.clone(),
        name: request.name,
        group: request.group,
    };
    register(api, caller, headers, community, volunteer, move |views| {
        command::register_volunteer(views, command).map(Event::VolunteerRegistered)
    })
    .await
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutTricycle {
    /// Load capacity, grams (10,000 to 1,000,000).
    pub capacity_g: u32,
}

/// Register a tricycle, or correct its capacity: `tricycle.registered.v1`. Dispatch plans
/// with it from the next event.
#[utoipa::path(put, path = "/v1/communities/{community}/tricycles/{tricycle}", tag = "staff", request_body = PutTricycle,
    params(("community" = String, Path), ("tricycle" = String, Path), ("Idempotency-Key" = Option<String>, Header)),
    responses((status = 202, body = Registered), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "`registered_elsewhere`", body = ErrorBody), (status = 413, body = ErrorBody), (status = 415, body = ErrorBody), (status = 422, description = REFUSALS, body = ErrorBody)),
    security(("bearer" = [])))]
pub(super) async fn put_tricycle(
    State(api): State<Arc<Api>>,
    caller: Caller,
    headers: HeaderMap,
    Path((community, tricycle)): Path<(String, String)>,
    Body(request): Body<PutTricycle>,
) -> Result<Response, ApiError> {
    let command = command::RegisterTricycle {
        community: community.clone(),
        tricycle: tricycle.clone(),
        capacity_g: request.capacity_g,
    };
    register(api, caller, headers, community, tricycle, move |views| {
        command::register_tricycle(views, command).map(Event::TricycleRegistered)
    })
    .await
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutVehicle {
    pub name: String,
    pub name_zh: Option<String>,
    pub plate: Option<String>,
    /// The partner whose van it is; absent for a car lent to the community.
    pub partner: Option<String>,
}

/// Register a vehicle that brings goods to the checkpoint: `vehicle.registered.v1`.
#[utoipa::path(put, path = "/v1/communities/{community}/vehicles/{vehicle}", tag = "staff", request_body = PutVehicle,
    params(("community" = String, Path), ("vehicle" = String, Path), ("Idempotency-Key" = Option<String>, Header)),
    responses((status = 202, body = Registered), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "`registered_elsewhere`", body = ErrorBody), (status = 413, body = ErrorBody), (status = 415, body = ErrorBody), (status = 422, description = REFUSALS, body = ErrorBody)),
    security(("bearer" = [])))]
pub(super) async fn put_vehicle(
    State(api): State<Arc<Api>>,
    caller: Caller,
    headers: HeaderMap,
    Path((community, vehicle)): Path<(String, String)>,
    Body(request): Body<PutVehicle>,
) -> Result<Response, ApiError> {
    if let Some(partner) = &request.partner {
        token_or_404(partner, "partner")?;
    }
    let command = command::RegisterVehicle {
        community: community.clone(),
        vehicle: vehicle.clone(),
        name: request.name,
        name_zh: request.name_zh,
        plate: request.plate,
        partner: request.partner,
    };
    register(api, caller, headers, community, vehicle, move |views| {
        command::register_vehicle(views, command).map(Event::VehicleRegistered)
    })
    .await
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutPartner {
    pub name: String,
    pub name_zh: Option<String>,
    /// The communities it supplies.
    #[serde(default)]
    pub communities: Vec<String>,
}

/// Register a supermarket partner, or change its names and communities:
/// `partner.registered.v1`. Operators only: the one registration that is not a
/// community's own.
#[utoipa::path(put, path = "/v1/partners/{partner}", tag = "operators", request_body = PutPartner,
    params(("partner" = String, Path), ("Idempotency-Key" = Option<String>, Header)),
    responses((status = 202, body = Registered), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 413, body = ErrorBody), (status = 415, body = ErrorBody), (status = 422, description = "`unknown_community`, `invalid_text`", body = ErrorBody)),
    security(("bearer" = [])))]
pub(super) async fn put_partner(
    State(api): State<Arc<Api>>,
    caller: Caller,
    headers: HeaderMap,
    Path(partner): Path<String>,
    Body(request): Body<PutPartner>,
) -> Result<Response, ApiError> {
    token_or_404(&partner, "partner")?;
    for community in &request.communities {
        token_or_404(community, "community")?;
    }
    let key = key_from(&headers)?;
    if !caller.is(Role::Operator) {
        return Err(caller.forbidden("register partners"));
    }
    let subject = format!("lifeline.catalogue.partner.{partner}");
    let command = command::RegisterPartner {
        partner,
        name: request.name,
        name_zh: request.name_zh,
        communities: request.communities,
    };
    api.execute(
        &caller,
        key,
        correlation_id(&headers),
        |_| subject,
        Concurrency::Settled,
        move |views, _| command::register_partner(views, command).map(Event::PartnerRegistered),
        Registered::of,
    )
    .await
}
