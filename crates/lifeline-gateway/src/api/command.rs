//! The command path: every command goes through [`Api::execute`]. Under its idempotency
//! key, it takes its aggregate (one command at a time per order or run in this process),
//! reads the aggregate's last stream sequence, waits until the projections have applied
//! everything in the stream, decides in the domain, and appends with the sequence as the
//! expected last subject sequence, so a write from anywhere else in between is a 409.

use std::hash::{DefaultHasher, Hash, Hasher};

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use lifeline_domain::command::{CommandError, Views};
use lifeline_events::{Envelope, Event};
use serde::Serialize;
use uuid::Uuid;

use super::{Api, Trace, to_json};
use crate::access::Caller;
use crate::error::ApiError;

/// How a command guards its aggregate against concurrent writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Concurrency {
    /// No guard (a restock adds to whatever is there; an arrival is its own aggregate).
    None,
    /// The aggregate is new: its subject must be empty.
    New,
    /// Append only if nothing landed on the command's subject since it decided (409).
    Settled,
    /// Like `Settled`, but the guard is on another subject of the same aggregate: a pick
    /// (on its pick subject) appends only if nothing landed on the order's own subject
    /// (a cancel, an escalation close) since it decided.
    SettledOn(String),
    /// Append only if nothing was ever published on `filter` (wildcards allowed): a cancel
    /// (on the order's subject) appends only if no pick of the order landed.
    SettledNoneOn(String),
}

impl Concurrency {
    /// The subject naming the aggregate a command changes: the order's own subject for a
    /// pick and a cancel, so that two picks, two cancels or one of each queue behind each
    /// other. `None` for commands that create their aggregate or need no guard.
    fn aggregate<'a>(&'a self, subject: &'a str) -> Option<&'a str> {
        match self {
            Concurrency::None | Concurrency::New => None,
            Concurrency::Settled | Concurrency::SettledNoneOn(_) => Some(subject),
            Concurrency::SettledOn(guard) => Some(guard),
        }
    }
}

/// One lock per aggregate (striped), held from deciding until the projections have applied
/// the command's event. The stream's expected-sequence check guards one subject; an order's
/// events sit on several (its own, its picks), so two picks of one order, or two cancels,
/// would each pass their check. Serialising them here makes the second decide on the
/// first's effect and be refused by the domain. Across replicas the stream check remains
/// the guard (a pick and a cancel always contend on a subject; two picks through two
/// replicas at the same instant can both land, and the second is parked by the consumers).
#[derive(Debug)]
pub struct AggregateLocks(Vec<tokio::sync::Mutex<()>>);

impl Default for AggregateLocks {
    fn default() -> Self {
        AggregateLocks((0..1024).map(|_| tokio::sync::Mutex::new(())).collect())
    }
}

impl AggregateLocks {
    async fn lock(&self, aggregate: &str) -> tokio::sync::MutexGuard<'_, ()> {
        let mut hasher = DefaultHasher::new();
        aggregate.hash(&mut hasher);
        let stripe = (hasher.finish() % self.0.len() as u64) as usize;
        self.0[stripe].lock().await
    }
}

/// Where a command's event landed.
#[derive(Debug, Clone, Copy)]
pub(super) struct Appended {
    pub event_id: Uuid,
    pub stream_sequence: u64,
}

impl Api {
    /// The sequence of the last message on `subject` (0 for none): the expected last
    /// subject sequence of the append.
    async fn last_sequence(&self, subject: &str) -> Result<u64, ApiError> {
        lifeline_bus::last_subject_sequence(&self.jetstream, subject)
            .await
            .map_err(|_| ApiError::Unavailable)
    }

    /// Waits until inventory has seen everything delivery has (a pick reads the order from
    /// delivery and its reservation from inventory). `Unavailable` after 3 s.
    pub(super) async fn inventory_caught_up(&self) -> Result<(), ApiError> {
        let target = self
            .delivery_status
            .position
            .load(std::sync::atomic::Ordering::Relaxed);
        if self
            .inventory_status
            .reached(target, std::time::Duration::from_secs(3))
            .await
        {
            Ok(())
        } else {
            Err(ApiError::Unavailable)
        }
    }

    /// One command, end to end, under its idempotency key: a retry whose first attempt is
    /// in the stream answers with it; otherwise settle on the aggregate's `subject`,
    /// decide, append with the expected sequence, and answer.
    /// `answer` builds the 202 body from the event and where it was stored.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn execute<D, A, R>(
        &self,
        caller: &Caller,
        key: Option<String>,
        trace: impl Into<Trace>,
        subject: impl FnOnce(Uuid) -> String,
        concurrency: Concurrency,
        decide: D,
        answer: A,
    ) -> Result<Response, ApiError>
    where
        D: FnOnce(&Views<'_>, Uuid) -> Result<Event, CommandError> + Send + 'static,
        A: FnOnce(&Event, Appended) -> R,
        R: Serialize,
    {
        self.execute_then(
            caller,
            key,
            trace,
            subject,
            concurrency,
            decide,
            |event, appended| std::future::ready(answer(event, appended)),
        )
        .await
    }

    /// [`Api::execute`] whose answer waits for something after the append (the place-order
    /// answer waits for inventory to say what it reserved). The answer is stored under the
    /// idempotency key like any other.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn execute_then<D, A, F, R>(
        &self,
        caller: &Caller,
        key: Option<String>,
        trace: impl Into<Trace>,
        subject: impl FnOnce(Uuid) -> String,
        concurrency: Concurrency,
        decide: D,
        answer: A,
    ) -> Result<Response, ApiError>
    where
        D: FnOnce(&Views<'_>, Uuid) -> Result<Event, CommandError> + Send + 'static,
        A: FnOnce(&Event, Appended) -> F,
        F: std::future::Future<Output = R>,
        R: Serialize,
    {
        let trace = trace.into();
        let (status, body) = self
            .idempotency
            .run(&caller.0.id, key, |event_id, maybe_published| async move {
                let subject = subject(event_id);
                self.serves_subject(&subject)?;
                if maybe_published
                    && let Some((sequence, stored)) =
                        lifeline_bus::find_event_on_subject(&self.jetstream, &subject, event_id)
                            .await
                            .map_err(|_| ApiError::Unavailable)?
                {
                    let appended = Appended {
                        event_id,
                        stream_sequence: sequence,
                    };
                    return Ok((
                        StatusCode::ACCEPTED,
                        to_json(&answer(&stored.event, appended).await),
                    ));
                }
                // One command at a time per aggregate in this process, each deciding on
                // what the one before it appended (see `AggregateLocks`).
                let _serial = match concurrency.aggregate(&subject) {
                    Some(aggregate) => Some(self.aggregates.lock(aggregate).await),
                    None => None,
                };
                let expected = match &concurrency {
                    Concurrency::None => None,
                    Concurrency::New => Some(0.into()),
                    Concurrency::Settled => Some(self.last_sequence(&subject).await?.into()),
                    Concurrency::SettledOn(guard) => Some(lifeline_bus::Expected {
                        sequence: self.last_sequence(guard).await?,
                        subject: Some(guard.clone()),
                    }),
                    Concurrency::SettledNoneOn(filter) => Some(lifeline_bus::Expected {
                        sequence: 0,
                        subject: Some(filter.clone()),
                    }),
                };
                // Never decide on stale state: the projections the decision reads must have
                // applied everything in the stream when the command got here (after a NATS
                // restart, or on a replica behind), else 503 with Retry-After.
                self.caught_up_with_stream().await?;
                let event = self.decide(move |views| decide(views, event_id)).await?;
                let envelope = Envelope::with_id(event_id, event, self.meta(caller, trace));
                let published = self
                    .publisher
                    .publish_expecting(&envelope, expected)
                    .await?;
                tracing::info!(
                    event_id = %envelope.id,
                    correlation_id = %envelope.correlation_id,
                    r#type = envelope.event_type(),
                    sequence = published.sequence,
                    duplicate = published.duplicate,
                    "command appended"
                );
                // Read-your-writes: every read this replica starts from now on waits
                // until its projections have applied this event (see `not_older_than`).
                self.last_appended
                    .fetch_max(published.sequence, std::sync::atomic::Ordering::Relaxed);
                if _serial.is_some() {
                    // The next command on this aggregate decides on this one: hold the
                    // aggregate until the projections have applied it (bounded; a slow
                    // projection only delays the next command's own catch-up wait).
                    let applied = std::time::Duration::from_secs(3);
                    self.delivery_status
                        .reached(published.sequence, applied)
                        .await;
                    self.inventory_status
                        .reached(published.sequence, applied)
                        .await;
                }
                let appended = Appended {
                    event_id,
                    stream_sequence: published.sequence,
                };
                Ok((
                    StatusCode::ACCEPTED,
                    to_json(&answer(&envelope.event, appended).await),
                ))
            })
            .await?;
        Ok((status, Json(body)).into_response())
    }
}
