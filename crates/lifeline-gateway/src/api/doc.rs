//! The OpenAPI document of the `/v1` API: every operation and schema, the bearer scheme,
//! and the 503 every operation may answer. Served at `/openapi.json`, checked in at
//! `docs/openapi.json`.

use super::*;

#[derive(utoipa::OpenApi)]
#[openapi(
    info(title = "lifeline API", description = "Orders, picks, runs and drops for sealed communities. Every command appends an event to NATS JetStream; reads come from projections. A refused command answers `{\"error\":{\"code\",\"message\"}}` with the rule's code (`unknown_item`, `quantity_out_of_range`, `not_cancellable`, ...; see docs/events.md)."),
    paths(residents::place_order, residents::get_order, residents::cancel_order, residents::household_orders,
        partners::partner_orders, partners::post_pick, partners::restock, partners::partner_stock,
        dispatch::ready_orders, dispatch::post_arrival, dispatch::community_runs, dispatch::depart_run, dispatch::return_run,
        couriers::run_manifest, couriers::post_drop,
        operators::community_summary, operators::stuck_orders, operators::dead_letters, operators::redrive_dead_letter, operators::all_stock,
        escalations::community_escalations, escalations::close_escalation,
        campaigns::start_campaign, campaigns::campaign_progress, seals::change_seal, escalations::coverage,
        errands::receive_parcel, errands::request_errand, errands::accept_errand, errands::collect_errand, errands::errand_drop,
        ledgers::import_ledger, ledgers::reconciliation, ledgers::settle_flags, campaigns::join_campaign,
        registry::buildings, registry::households, registry::building_orders, registry::put_household, registry::put_contact,
        registry::put_building, registry::put_unit, registry::put_volunteer, registry::put_tricycle, registry::put_vehicle, registry::put_partner, sheets::pick_sheet_of),
    components(schemas(crate::error::ErrorBody, crate::error::ErrorDetail, PlaceOrder, LineRequest, OrderAccepted, CancelOrder, PostPick, Restock,
        PostArrival, DepartRun, Manifest, ManifestStop, ManifestOrder, ManifestItem, PostDrop, Outcome, Accepted,
        escalations::CloseEscalation, escalations::EscalationList, escalations::EscalatedOrder,
        campaigns::StartCampaign, campaigns::CampaignAccepted, campaigns::CampaignProgress, campaigns::BuildingProgress,
        seals::ChangeSeal, seals::SealAccepted, escalations::Coverage, escalations::CoveredHousehold,
        errands::ReceiveParcel, errands::RequestErrand, errands::CollectErrand, errands::ErrandDrop, errands::OrderCreated,
        ledgers::LedgerAccepted, ledgers::Reconciliation, ledgers::SettleFlags, ledgers::FlagsSettled,
        campaigns::JoinCampaign, campaigns::Joined,
        registry::BuildingList, registry::BuildingInfo, registry::UnitInfo, registry::HouseholdList, registry::HouseholdInfo,
        registry::BuildingOrders, registry::Registered, registry::PutHousehold, registry::PutContact, registry::PutBuilding,
        registry::PutUnit, registry::PutVolunteer, registry::PutTricycle, registry::PutVehicle, registry::PutPartner, sheets::PickSheetView, sheets::Names)),
    modifiers(&BearerAuth),
    tags((name = "residents"), (name = "partners"), (name = "dispatch"), (name = "couriers"), (name = "operators"), (name = "staff")),
)]
pub struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        // Any /v1 request may be refused for a moment (admission control, NATS away, a
        // projection behind): 503 with `Retry-After`, documented once for every operation.
        use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
        let unavailable = ResponseBuilder::new()
            .description("`overloaded`, `unavailable` or `not_yet_visible`: retry after the `Retry-After` seconds")
            .header("Retry-After", utoipa::openapi::header::HeaderBuilder::new().description(Some("seconds")).build())
            .content("application/json", ContentBuilder::new().schema(Some(Ref::from_schema_name("ErrorBody"))).build())
            .build();
        // The refusals every operation of a kind can give, whatever its own rules: listed
        // once here so the document names every status the API answers (schemathesis
        // checks it in CI, scripts/api-contract.sh). An operation's own description wins.
        let error = |description: &str| {
            ResponseBuilder::new()
                .description(description)
                .content(
                    "application/json",
                    ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name("ErrorBody")))
                        .build(),
                )
                .build()
        };
        let always = [
            ("401", error("`unauthorized`: no or unknown bearer token")),
            (
                "403",
                error("`forbidden`: the token's role or scope may not do this"),
            ),
            (
                "421",
                error(
                    "`misdirected`: this replica serves some partitions only, and the request's community is in another; the `Lifeline-Partition` header names it (docs/operations.md, Partitions)",
                ),
            ),
        ];
        let with_body = [
            (
                "400",
                error(
                    "`bad_request`: the body is not JSON, or the Idempotency-Key is not visible ASCII",
                ),
            ),
            (
                "413",
                error("`payload_too_large`: the body is larger than 64 KiB"),
            ),
            (
                "415",
                error(
                    "`unsupported_media_type`: the body is not `application/json` (or `text/csv` where stated)",
                ),
            ),
            (
                "422",
                error(
                    "`unprocessable` (the body does not fit the schema) or the rule the command broke",
                ),
            ),
        ];
        for item in openapi.paths.paths.values_mut() {
            for (operation, command) in [(item.get.as_mut(), false), (item.post.as_mut(), true)]
                .into_iter()
                .filter_map(|(operation, command)| operation.map(|o| (o, command)))
            {
                let parameters = operation.parameters.as_deref().unwrap_or_default();
                let in_path = parameters
                    .iter()
                    .any(|p| p.parameter_in == utoipa::openapi::path::ParameterIn::Path);
                let in_query = parameters
                    .iter()
                    .any(|p| p.parameter_in == utoipa::openapi::path::ParameterIn::Query);
                let responses = &mut operation.responses.responses;
                let mut add = |status: &str, response: &utoipa::openapi::Response| {
                    responses
                        .entry(status.to_owned())
                        .or_insert_with(|| response.clone().into());
                };
                for (status, response) in &always {
                    add(status, response);
                }
                if command {
                    for (status, response) in &with_body {
                        add(status, response);
                    }
                }
                if !command {
                    // Any read may ask to reflect a write made through another replica.
                    let hint = utoipa::openapi::path::ParameterBuilder::new()
                        .name("Lifeline-Min-Sequence")
                        .parameter_in(utoipa::openapi::path::ParameterIn::Header)
                        .required(utoipa::openapi::Required::False)
                        .description(Some(
                            "Answer only once this replica has applied this stream sequence \
                             (a command's `stream_sequence`, through any replica): waits up to \
                             5 s, then 503",
                        ))
                        .schema(Some(
                            utoipa::openapi::ObjectBuilder::new()
                                .schema_type(utoipa::openapi::schema::Type::Integer)
                                .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(
                                    utoipa::openapi::KnownFormat::Int64,
                                )))
                                .minimum(Some(0)),
                        ))
                        .build();
                    operation.parameters.get_or_insert_with(Vec::new).push(hint);
                    add(
                        "400",
                        &error(
                            "`bad_request`: a query parameter does not parse, or \
                             Lifeline-Min-Sequence is not a sequence of this stream",
                        ),
                    );
                } else if in_query {
                    add(
                        "400",
                        &error("`bad_request`: a query parameter does not parse"),
                    );
                }
                if in_path {
                    add(
                        "404",
                        &error("`not_found`: nothing with that id (or not visible to this token)"),
                    );
                }
                add("503", &unavailable);
            }
        }
    }
}

/// The OpenAPI document as served at `/openapi.json` and checked in at `docs/openapi.json`.
pub fn openapi_json() -> String {
    let mut document = <ApiDoc as utoipa::OpenApi>::openapi();
    document.info.version = env!("CARGO_PKG_VERSION").to_owned();
    document
        .to_pretty_json()
        .expect("the OpenAPI document serializes")
        + "\n"
}
