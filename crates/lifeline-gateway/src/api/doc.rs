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
        ledgers::import_ledger, ledgers::reconciliation, ledgers::settle_flags, campaigns::join_campaign),
    components(schemas(crate::error::ErrorBody, crate::error::ErrorDetail, PlaceOrder, LineRequest, OrderAccepted, CancelOrder, PostPick, Restock,
        PostArrival, DepartRun, Manifest, ManifestStop, ManifestOrder, ManifestItem, PostDrop, Outcome, Accepted,
        escalations::CloseEscalation, escalations::EscalationList, escalations::EscalatedOrder,
        campaigns::StartCampaign, campaigns::CampaignAccepted, campaigns::CampaignProgress, campaigns::BuildingProgress,
        seals::ChangeSeal, seals::SealAccepted, escalations::Coverage, escalations::CoveredHousehold,
        errands::ReceiveParcel, errands::RequestErrand, errands::CollectErrand, errands::ErrandDrop, errands::OrderCreated,
        ledgers::LedgerAccepted, ledgers::Reconciliation, ledgers::SettleFlags, ledgers::FlagsSettled,
        campaigns::JoinCampaign, campaigns::Joined)),
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
        for item in openapi.paths.paths.values_mut() {
            for operation in [item.get.as_mut(), item.post.as_mut()]
                .into_iter()
                .flatten()
            {
                operation
                    .responses
                    .responses
                    .entry("503".to_owned())
                    .or_insert_with(|| unavailable.clone().into());
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
