//! Partitions in the API: a replica serving some partitions only answers for their
//! communities, and 421 (`misdirected`, with the `Lifeline-Partition` header naming the
//! partition that serves it) for the others, before anything is read or decided.

use std::sync::Arc;

use axum::extract::{FromRequestParts, Request, State};
use axum::response::IntoResponse;
use lifeline_events::is_token;

use super::Api;
use crate::error::ApiError;

/// On a replica serving some partitions only: a request naming a community (or a
/// household, which the registry places in one) of another partition is answered 421,
/// before anything is read or decided. Orders, runs and campaigns named by id alone are
/// placed when they are looked up ([`Api::order`], [`Api::run`], [`Api::campaign`]);
/// commands whose body names the household, by their aggregate's subject.
pub(super) async fn served_here(
    State(api): State<Arc<Api>>,
    request: Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    if api.partitioning.serves_all() {
        return next.run(request).await;
    }
    let (mut parts, body) = request.into_parts();
    let params = axum::extract::RawPathParams::from_request_parts(&mut parts, &())
        .await
        .map(|params| {
            params
                .iter()
                .map(|(name, value)| (name.to_owned(), value.to_owned()))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    for (name, value) in params {
        let served = match name.as_str() {
            "community" => api.serves(&value),
            "household" => api.serves_household(&value).await,
            _ => Ok(()),
        };
        if let Err(error) = served {
            return error.into_response();
        }
    }
    let mut response = next.run(Request::from_parts(parts, body)).await;
    // Every answer says what it covers: a list across communities (stuck orders, a
    // partner's orders) holds these partitions' only.
    if let Ok(served) = axum::http::HeaderValue::from_str(&api.partitioning.to_string()) {
        response.headers_mut().insert(SERVED_HEADER, served);
    }
    response
}

/// On every `/v1` answer of a replica serving some partitions only: which (`1,3 of 4`).
pub const SERVED_HEADER: &str = "lifeline-partitions-served";

impl Api {
    /// 421 when `community` is in a partition this replica does not serve.
    pub(crate) fn serves(&self, community: &str) -> Result<(), ApiError> {
        if self.partitioning.serves_community(community) {
            return Ok(());
        }
        Err(ApiError::Misdirected {
            community: community.to_owned(),
            partition: self.partitioning.partition_of(community),
            count: self.partitioning.count(),
            served: self
                .partitioning
                .served()
                .map(|p| p.to_string())
                .collect::<Vec<_>>()
                .join(","),
        })
    }

    /// [`Api::serves`] for the community of the aggregate on `subject`.
    pub(crate) fn serves_subject(&self, subject: &str) -> Result<(), ApiError> {
        match lifeline_events::community_of_subject(subject) {
            Some(community) => self.serves(community),
            None => Ok(()),
        }
    }

    /// [`Api::serves`] for a household's community (the registry holds every community);
    /// an unknown household passes, for the handler to answer as it does.
    async fn serves_household(&self, household: &str) -> Result<(), ApiError> {
        if !is_token(household) {
            return Ok(());
        }
        let id = household.to_owned();
        match self.decide(move |views| views.household(&id)).await? {
            Some(found) => self.serves(&found.community),
            None => Ok(()),
        }
    }

    /// For an aggregate not in this replica's projections, named by id alone: 421 when the
    /// stream holds it in a community of another partition (`pattern` is its subject with
    /// `*` for the community). Asked only on a partitioned replica, only on a miss.
    pub(super) async fn served_by_id(&self, pattern: &str) -> Result<(), ApiError> {
        if self.partitioning.serves_all() {
            return Ok(());
        }
        match lifeline_bus::last_subject_matching(&self.jetstream, pattern).await {
            Ok(Some(subject)) => self.serves_subject(&subject),
            Ok(None) => Ok(()),
            Err(_) => Err(ApiError::Unavailable),
        }
    }
}
