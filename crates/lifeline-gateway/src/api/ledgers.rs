//! The keepers' vulnerable-household lists: staff upload each as CSV, read what the lists
//! and the registry disagree on, and settle a household's flags in the registry. Rules in
//! `lifeline_domain::ledger` (columns, reconciliation) and `lifeline_domain::command`
//! (`import_ledger`, `set_vulnerabilities`).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{FromRequest, Path, Request, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use lifeline_domain::command;
use lifeline_domain::ledger::{Discrepancy, reconcile};
use lifeline_events::{Event, LedgerSource, Vulnerability};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{Api, BODY_LIMIT, Body, Concurrency, blocking, correlation_id, token_or_404};
use crate::access::{Caller, Role};
use crate::error::{ApiError, ErrorBody};
use crate::idempotency::key_from;

/// A `text/csv` body, UTF-8, at most [`BODY_LIMIT`] bytes.
pub struct CsvBody(pub String);

impl<S: Send + Sync> FromRequest<S> for CsvBody {
    type Rejection = ApiError;

    async fn from_request(request: Request, _state: &S) -> Result<Self, Self::Rejection> {
        let is_csv = request
            .headers()
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .is_some_and(|value| value.trim().to_ascii_lowercase().starts_with("text/csv"));
        if !is_csv {
            return Err(ApiError::UnsupportedMediaType(
                "a ledger is sent as Content-Type: text/csv".into(),
            ));
        }
        let bytes = axum::body::to_bytes(request.into_body(), BODY_LIMIT)
            .await
            .map_err(|_| ApiError::PayloadTooLarge(BODY_LIMIT))?;
        String::from_utf8(bytes.to_vec())
            .map(CsvBody)
            .map_err(|_| ApiError::BadRequest("the CSV is not UTF-8".into()))
    }
}

fn source_or_404(source: &str) -> Result<LedgerSource, ApiError> {
    serde_json::from_value(serde_json::Value::String(source.to_owned())).map_err(|_| {
        ApiError::NotFound(format!(
            "no ledger {source:?}: residents_committee, property_office or volunteer_group"
        ))
    })
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LedgerAccepted {
    pub community: String,
    #[schema(value_type = String, example = "residents_committee")]
    pub ledger: LedgerSource,
    /// Households on the list.
    pub households: usize,
    pub event_id: String,
    pub stream_sequence: u64,
}

/// Upload one keeper's list of vulnerable households (staff of the community), as CSV with
/// a header row: `household` (required) and `vulnerabilities` (flags separated by `;`);
/// other columns are ignored and never stored. It replaces that keeper's previous list.
#[utoipa::path(post, path = "/v1/communities/{community}/ledgers/{ledger}", tag = "staff",
    request_body(content = String, content_type = "text/csv"),
    params(("community" = String, Path), ("ledger" = String, Path, description = "`residents_committee`, `property_office` or `volunteer_group`"), ("Idempotency-Key" = Option<String>, Header)),
    responses((status = 202, body = LedgerAccepted), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 415, description = "not `text/csv`", body = ErrorBody),
        (status = 422, description = "`invalid_ledger` (names the line), `unknown_household`", body = ErrorBody)),
    security(("bearer" = [])))]
pub(super) async fn import_ledger(
    State(api): State<Arc<Api>>,
    caller: Caller,
    headers: HeaderMap,
    Path((community, ledger)): Path<(String, String)>,
    body: Result<CsvBody, ApiError>,
) -> Result<Response, ApiError> {
    token_or_404(&community, "community")?;
    let ledger = source_or_404(&ledger)?;
    let key = key_from(&headers)?;
    if !(caller.is(Role::Staff) && caller.sees_community(&community)) {
        return Err(caller.forbidden("upload ledgers of this community"));
    }
    // The body is judged after the path and the caller: an unknown ledger is 404 whatever
    // was sent.
    let CsvBody(csv) = body?;
    let subject = format!("lifeline.registry.{community}.ledger-{}", ledger.as_str());
    api.execute(
        &caller,
        key,
        correlation_id(&headers),
        |_| subject,
        Concurrency::None,
        move |views, _| {
            command::import_ledger(
                views,
                command::ImportLedger {
                    community,
                    ledger,
                    csv,
                },
            )
            .map(Event::LedgerImported)
        },
        |event, appended| match event {
            Event::LedgerImported(imported) => Some(LedgerAccepted {
                community: imported.community.clone(),
                ledger: imported.ledger,
                households: imported.entries.len(),
                event_id: appended.event_id.to_string(),
                stream_sequence: appended.stream_sequence,
            }),
            _ => None,
        },
    )
    .await
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Reconciliation {
    pub community: String,
    /// The ledgers uploaded so far (only they take part).
    #[schema(value_type = Vec<String>)]
    pub ledgers: Vec<LedgerSource>,
    /// Every household on one list and not another, or with flags that differ.
    #[schema(value_type = Vec<Object>)]
    pub discrepancies: Vec<Discrepancy>,
}

/// What the uploaded ledgers and the registry disagree on (staff and operators).
#[utoipa::path(get, path = "/v1/communities/{community}/ledgers/reconciliation", tag = "staff",
    params(("community" = String, Path)),
    responses((status = 200, body = Reconciliation), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub(super) async fn reconciliation(
    State(api): State<Arc<Api>>,
    caller: Caller,
    Path(community): Path<String>,
) -> Result<Response, ApiError> {
    token_or_404(&community, "community")?;
    if !caller.reads_community(&community) {
        return Err(caller.forbidden("read this community's ledgers"));
    }
    let registry = Arc::clone(&api.registry);
    let wanted = community.clone();
    let (ledgers, discrepancies) = blocking(move || {
        let ledgers = lifeline_readmodel::registry::ledgers_of(&registry, &wanted)?;
        let flags: BTreeMap<String, Vec<Vulnerability>> =
            lifeline_readmodel::registry::households_of(&registry, &wanted)?
                .into_iter()
                .map(|household| (household.household, household.vulnerabilities))
                .collect();
        Ok((
            ledgers.keys().copied().collect(),
            reconcile(&flags, &ledgers),
        ))
    })
    .await?;
    Ok(Json(Reconciliation {
        community,
        ledgers,
        discrepancies,
    })
    .into_response())
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SettleFlags {
    /// The household's flags from now on (empty: not vulnerable).
    #[schema(value_type = Vec<String>)]
    pub vulnerabilities: Vec<Vulnerability>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FlagsSettled {
    pub household: String,
    #[schema(value_type = Vec<String>)]
    pub vulnerabilities: Vec<Vulnerability>,
    pub event_id: String,
    pub stream_sequence: u64,
}

/// Settle a household's vulnerability flags in the registry (staff of the community): one
/// `household.registered.v1` with the corrected flags. 409 `no_change` when they already are.
#[utoipa::path(post, path = "/v1/communities/{community}/households/{household}/vulnerabilities", tag = "staff", request_body = SettleFlags,
    params(("community" = String, Path), ("household" = String, Path), ("Idempotency-Key" = Option<String>, Header)),
    responses((status = 202, body = FlagsSettled), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "`no_change`, or another registration of the household landed first", body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 422, description = "`unknown_household`, or an unknown flag", body = ErrorBody)),
    security(("bearer" = [])))]
pub(super) async fn settle_flags(
    State(api): State<Arc<Api>>,
    caller: Caller,
    headers: HeaderMap,
    Path((community, household)): Path<(String, String)>,
    Body(request): Body<SettleFlags>,
) -> Result<Response, ApiError> {
    token_or_404(&community, "community")?;
    token_or_404(&household, "household")?;
    let key = key_from(&headers)?;
    if !(caller.is(Role::Staff) && caller.sees_community(&community)) {
        return Err(caller.forbidden("change this community's registry"));
    }
    let subject = format!("lifeline.registry.{community}.{household}");
    api.execute(
        &caller,
        key,
        correlation_id(&headers),
        |_| subject,
        Concurrency::Settled,
        move |views, _| {
            command::set_vulnerabilities(
                views,
                command::SetVulnerabilities {
                    community,
                    household,
                    vulnerabilities: request.vulnerabilities,
                },
            )
            .map(Event::HouseholdRegistered)
        },
        |event, appended| match event {
            Event::HouseholdRegistered(registered) => Some(FlagsSettled {
                household: registered.household.clone(),
                vulnerabilities: registered.vulnerabilities.clone(),
                event_id: appended.event_id.to_string(),
                stream_sequence: appended.stream_sequence,
            }),
            _ => None,
        },
    )
    .await
}
