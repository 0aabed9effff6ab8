//! Publishing events to JetStream exactly once per event id.

use std::time::Duration;

use async_nats::header::HeaderMap;
use async_nats::jetstream::{self, context::PublishErrorKind};
use lifeline_events::{EVENT_STREAM, Envelope, PARTNER_FEED_STREAM, PARTNER_FEED_SUBJECT_PREFIX};

use crate::metrics;

const MAX_ATTEMPTS: u32 = 6;
/// Messages sent before their acknowledgements are awaited; well under async-nats' default
/// limit of acknowledgements in flight.
pub const PIPELINE_WINDOW: usize = 1024;
const FIRST_BACKOFF: Duration = Duration::from_millis(50);
/// Longest one publish attempt may take, sending included: the acknowledgement itself is
/// bounded (5 s), but the send can wait on the client while it reconnects after a node
/// died, and a consumer once stood there past every deadline. Past this the attempt
/// counts as failed and is retried like any other.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(6);

/// What JetStream said about a stored event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Published {
    /// The event's stream sequence (the first one, for a duplicate).
    pub sequence: u64,
    /// True when an event with this id was already in the stream; nothing new was stored.
    pub duplicate: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// Another writer changed the aggregate first: re-read and decide again (HTTP 409).
    #[error("stale write: the subject moved past the expected sequence")]
    Conflict,
    /// JetStream did not acknowledge after every retry: try again later (HTTP 503).
    #[error("jetstream unavailable after {attempts} attempts: {message}")]
    Unavailable { attempts: u32, message: String },
    /// JetStream refused the message for good (no stream for the subject, too large).
    #[error("jetstream rejected the message: {0}")]
    Rejected(String),
}

impl PublishError {
    pub fn reason_code(&self) -> &'static str {
        match self {
            PublishError::Conflict => "conflict",
            PublishError::Unavailable { .. } => "unavailable",
            PublishError::Rejected(_) => "rejected",
        }
    }
}

/// Publishes envelopes with `Nats-Msg-Id` set to the event id.
#[derive(Clone)]
pub struct Publisher {
    jetstream: jetstream::Context,
    name: String,
}

impl std::fmt::Debug for Publisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publisher")
            .field("name", &self.name)
            .finish()
    }
}

/// An optimistic-concurrency guard on a publish: the last message on `subject` (the
/// event's own subject when `None`; it may hold wildcards) must have stream sequence
/// `sequence` (0: there is none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected {
    pub sequence: u64,
    pub subject: Option<String>,
}

impl From<u64> for Expected {
    fn from(sequence: u64) -> Self {
        Expected {
            sequence,
            subject: None,
        }
    }
}

fn headers(envelope: &Envelope, expected: Option<&Expected>) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert("Nats-Msg-Id", envelope.id.to_string().as_str());
    if let Some(expected) = expected {
        headers.insert(
            "Nats-Expected-Last-Subject-Sequence",
            expected.sequence.to_string().as_str(),
        );
        // nats-server 2.11+: the check is made on another subject (filter) than the
        // message's own.
        if let Some(subject) = &expected.subject {
            headers.insert(
                "Nats-Expected-Last-Subject-Sequence-Subject",
                subject.as_str(),
            );
        }
    }
    headers.insert("Lifeline-Type", envelope.event_type());
    headers.insert(
        "Lifeline-Correlation-Id",
        envelope.correlation_id.to_string().as_str(),
    );
    headers.insert("traceparent", traceparent(envelope).as_str());
    headers
}

/// A W3C trace context whose trace id is the correlation id and whose parent span id is
/// derived from the event id, so logs of every consumer join on one trace.
pub fn traceparent(envelope: &Envelope) -> String {
    let span = &envelope.id.simple().to_string()[16..];
    format!("00-{}-{}-01", envelope.correlation_id.simple(), span)
}

fn is_transient(kind: PublishErrorKind) -> bool {
    matches!(
        kind,
        PublishErrorKind::TimedOut
            | PublishErrorKind::BrokenPipe
            | PublishErrorKind::MaxAckPending
            | PublishErrorKind::Other
            // A cluster electing a new stream leader answers "no stream found" for a moment.
            | PublishErrorKind::StreamNotFound
    )
}

impl Publisher {
    pub fn new(jetstream: jetstream::Context, name: impl Into<String>) -> Self {
        Publisher {
            jetstream,
            name: name.into(),
        }
    }

    pub fn jetstream(&self) -> &jetstream::Context {
        &self.jetstream
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Publishes one event. With `expected_last_subject_sequence`, JetStream stores it only
    /// if the last message on its subject has that sequence (0: the subject is empty).
    /// Transient failures are retried with the same message id, so a retry whose first
    /// attempt was in fact stored comes back as a duplicate, not a second copy.
    pub async fn publish(
        &self,
        envelope: &Envelope,
        expected_last_subject_sequence: Option<u64>,
    ) -> Result<Published, PublishError> {
        self.publish_expecting(envelope, expected_last_subject_sequence.map(Expected::from))
            .await
    }

    /// [`Publisher::publish`] with any [`Expected`] guard, including one on another
    /// subject than the event's.
    pub async fn publish_expecting(
        &self,
        envelope: &Envelope,
        expected: Option<Expected>,
    ) -> Result<Published, PublishError> {
        let payload = bytes::Bytes::from(envelope.encode());
        let mut backoff = FIRST_BACKOFF;
        let mut attempt = 1;
        loop {
            let result = tokio::time::timeout(ATTEMPT_TIMEOUT, async {
                let ack = self
                    .jetstream
                    .publish_with_headers(
                        envelope.subject.clone(),
                        headers(envelope, expected.as_ref()),
                        payload.clone(),
                    )
                    .await?;
                ack.await
            })
            .await;
            let error = match result {
                Ok(Ok(ack)) => return Ok(self.record(ack.sequence, ack.duplicate)),
                Ok(Err(error)) => {
                    let kind = error.kind();
                    if kind == PublishErrorKind::WrongLastSequence {
                        metrics::FAILURES
                            .with_label_values(&[&self.name, "conflict"])
                            .inc();
                        return Err(PublishError::Conflict);
                    }
                    if !is_transient(kind) {
                        metrics::FAILURES
                            .with_label_values(&[&self.name, "rejected"])
                            .inc();
                        return Err(PublishError::Rejected(error.to_string()));
                    }
                    error.to_string()
                }
                Err(_) => format!("no acknowledgement within {ATTEMPT_TIMEOUT:?}"),
            };
            if attempt >= MAX_ATTEMPTS {
                metrics::FAILURES
                    .with_label_values(&[&self.name, "unavailable"])
                    .inc();
                return Err(PublishError::Unavailable {
                    attempts: attempt,
                    message: error,
                });
            }
            tracing::warn!(event_id = %envelope.id, attempt, %error, "publish failed, retrying");
            metrics::RETRIES.with_label_values(&[&self.name]).inc();
            tokio::time::sleep(backoff).await;
            backoff *= 2;
            attempt += 1;
        }
    }

    /// Publishes many events pipelined, in windows of [`PIPELINE_WINDOW`]: every message of a
    /// window is sent before any of its acknowledgements is awaited, then each is checked in
    /// order and any failed one is retried on its own (with the same id). The window keeps
    /// the client's limit of acknowledgements in flight from ever blocking the sender.
    /// Results are in input order.
    pub async fn publish_all(
        &self,
        envelopes: &[Envelope],
    ) -> Result<Vec<Published>, PublishError> {
        self.publish_pipelined(envelopes, false).await
    }

    /// [`Publisher::publish_all`] for a process manager's follow-ups: an event that opens
    /// its aggregate (`run.planned.v1`, a campaign's `order.placed.v1`) is published only if
    /// its subject is empty, and a subject that is not empty means an earlier attempt
    /// stored it (the ids and subjects are deterministic): a duplicate. So a process
    /// manager that crashed after publishing and restarts after JetStream's duplicate
    /// window has passed still adds nothing twice.
    pub async fn publish_follow_ups(
        &self,
        envelopes: &[Envelope],
    ) -> Result<Vec<Published>, PublishError> {
        self.publish_pipelined(envelopes, true).await
    }

    /// [`Publisher::publish_follow_ups`] for follow-ups of events older than JetStream's
    /// duplicate window (a consumer catching up after a long outage, a new replica reading
    /// the whole history): the window no longer drops a second copy, so each follow-up
    /// that does not open an aggregate is first looked for on its subject, by id, and
    /// published only if it is not there. Openings keep their empty-subject guard. A copy
    /// stored meanwhile by another replica is still inside the window, so a race between
    /// the look-up and the publish is a duplicate JetStream drops.
    ///
    /// `caused_from` is the event stream's sequence of the earliest cause of these
    /// follow-ups (the first message of the batch): a follow-up in the event stream is
    /// stored after its cause, so the look-up reads the subject from there on, not its
    /// whole history.
    pub async fn publish_follow_ups_looked_up(
        &self,
        envelopes: &[Envelope],
        caused_from: u64,
    ) -> Result<Vec<Published>, PublishError> {
        let mut missing = Vec::with_capacity(envelopes.len());
        let mut found = Vec::with_capacity(envelopes.len());
        for envelope in envelopes {
            let stored = if envelope.event.opens_aggregate() {
                None
            } else {
                // A feed copy is in a stream of its own, whose sequences are not the
                // cause's: there the whole subject is read.
                let (stream, from) = if envelope
                    .subject
                    .starts_with(&format!("{PARTNER_FEED_SUBJECT_PREFIX}."))
                {
                    (PARTNER_FEED_STREAM, 1)
                } else {
                    (EVENT_STREAM, caused_from)
                };
                crate::lookup::find_event_in_from(
                    &self.jetstream,
                    stream,
                    &envelope.subject,
                    envelope.id,
                    from,
                )
                .await
                .map_err(|error| PublishError::Unavailable {
                    attempts: 1,
                    message: error.to_string(),
                })?
                .map(|(sequence, _)| sequence)
            };
            match stored {
                Some(sequence) => found.push(Some(sequence)),
                None => {
                    found.push(None);
                    missing.push(envelope);
                }
            }
        }
        let mut published = self.publish_pipelined(&missing, true).await?.into_iter();
        Ok(found
            .into_iter()
            .map(|stored| match stored {
                Some(sequence) => self.record(sequence, true),
                None => published.next().expect("one result per missing follow-up"),
            })
            .collect())
    }

    /// Generic over owned and borrowed envelopes, so a caller publishing some of its
    /// envelopes passes references instead of copies.
    async fn publish_pipelined<E: std::borrow::Borrow<Envelope>>(
        &self,
        envelopes: &[E],
        guard_openings: bool,
    ) -> Result<Vec<Published>, PublishError> {
        let expected = |envelope: &Envelope| {
            (guard_openings && envelope.event.opens_aggregate()).then_some(Expected {
                sequence: 0,
                subject: None,
            })
        };
        let mut results = Vec::with_capacity(envelopes.len());
        for window in envelopes.chunks(PIPELINE_WINDOW) {
            let mut pending = Vec::with_capacity(window.len());
            for envelope in window {
                let envelope = envelope.borrow();
                // A send that is not accepted in time (seen after a node died: the send
                // waited on the client for good) fails the whole call, so the caller
                // retries the batch from a fresh start instead of waiting on each message
                // of the window in turn. The ids make the retry safe.
                let sent = tokio::time::timeout(
                    ATTEMPT_TIMEOUT,
                    self.jetstream.publish_with_headers(
                        envelope.subject.clone(),
                        headers(envelope, expected(envelope).as_ref()),
                        bytes::Bytes::from(envelope.encode()),
                    ),
                )
                .await
                .map_err(|_| {
                    metrics::FAILURES
                        .with_label_values(&[&self.name, "unavailable"])
                        .inc();
                    PublishError::Unavailable {
                        attempts: 1,
                        message: format!("send not accepted within {ATTEMPT_TIMEOUT:?}"),
                    }
                })?;
                pending.push(sent);
            }
            // Every acknowledgement of the window shares one deadline. async-nats starts an
            // acknowledgement's timeout only when it is awaited, so awaiting lost ones in
            // turn cost the whole timeout once per message: a feed consumer whose window
            // was in flight when a stream leader died stood still for minutes, connected
            // and silent. Past the deadline each is retried on its own (same id).
            let deadline = tokio::time::Instant::now() + ATTEMPT_TIMEOUT;
            for (envelope, sent) in window.iter().zip(pending) {
                let envelope = envelope.borrow();
                let acked = match sent {
                    Ok(future) => tokio::time::timeout_at(deadline, future.into_future())
                        .await
                        .ok(),
                    Err(error) => Some(Err(error)),
                };
                match acked {
                    Some(Ok(ack)) => results.push(self.record(ack.sequence, ack.duplicate)),
                    Some(Err(error))
                        if error.kind() == PublishErrorKind::WrongLastSequence
                            && expected(envelope).is_some() =>
                    {
                        results.push(self.record(0, true));
                    }
                    Some(Err(_)) | None => {
                        metrics::RETRIES.with_label_values(&[&self.name]).inc();
                        let guard = expected(envelope);
                        let opening = guard.is_some();
                        match self.publish_expecting(envelope, guard).await {
                            Err(PublishError::Conflict) if opening => {
                                results.push(self.record(0, true));
                            }
                            other => results.push(other?),
                        }
                    }
                }
            }
        }
        Ok(results)
    }

    fn record(&self, sequence: u64, duplicate: bool) -> Published {
        if duplicate {
            metrics::DUPLICATES.with_label_values(&[&self.name]).inc();
        } else {
            metrics::PUBLISHED.with_label_values(&[&self.name]).inc();
        }
        Published {
            sequence,
            duplicate,
        }
    }
}
