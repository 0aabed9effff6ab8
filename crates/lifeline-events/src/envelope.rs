//! The envelope every event travels in, and its strict-but-tolerant JSON decoding.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::payload::Event;
use crate::subject::subject_for;

/// Who did it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActorKind {
    Resident,
    Staff,
    Partner,
    Courier,
    Operator,
    System,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    pub kind: ActorKind,
    pub id: String,
}

impl Actor {
    pub fn new(kind: ActorKind, id: impl Into<String>) -> Self {
        Actor {
            kind,
            id: id.into(),
        }
    }

    pub fn system(component: &str) -> Self {
        Actor::new(ActorKind::System, component)
    }
}

/// Everything about an event except its payload and id.
#[derive(Debug, Clone, PartialEq)]
pub struct EventMeta {
    pub time: OffsetDateTime,
    /// The component or partner system that emitted the event.
    pub source: String,
    pub actor: Actor,
    /// Shared by every event that follows from one request.
    pub correlation_id: Uuid,
    /// The event (or request) that directly caused this one.
    pub causation_id: Option<Uuid>,
}

/// One immutable fact.
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope {
    pub id: Uuid,
    pub time: OffsetDateTime,
    pub source: String,
    /// The NATS subject the event belongs on (see [`subject_for`]).
    pub subject: String,
    pub actor: Actor,
    pub correlation_id: Uuid,
    pub causation_id: Option<Uuid>,
    pub event: Event,
}

/// Why bytes are not a usable event. Each variant is a dead-letter reason.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum DecodeError {
    #[error("not a json event envelope: {0}")]
    Undecodable(String),
    #[error("unknown event type {0}")]
    UnknownType(String),
    #[error("payload of {event_type} does not match its schema: {message}")]
    InvalidPayload { event_type: String, message: String },
}

impl DecodeError {
    /// A short fixed code, used as the dead-letter reason and as a metric label.
    pub fn reason_code(&self) -> &'static str {
        match self {
            DecodeError::Undecodable(_) => "undecodable",
            DecodeError::UnknownType(_) => "unknown_type",
            DecodeError::InvalidPayload { .. } => "invalid_payload",
        }
    }
}

#[derive(Serialize)]
struct WireOut<'a> {
    id: Uuid,
    #[serde(rename = "type")]
    event_type: &'a str,
    #[serde(with = "time::serde::rfc3339")]
    time: OffsetDateTime,
    source: &'a str,
    subject: &'a str,
    actor: &'a Actor,
    correlation_id: Uuid,
    causation_id: Option<Uuid>,
    data: serde_json::Value,
}

/// Unknown fields are ignored (tolerant reader); every field here is required except the
/// causation id.
#[derive(Deserialize)]
struct WireIn<'a> {
    id: Uuid,
    #[serde(rename = "type")]
    event_type: String,
    #[serde(with = "time::serde::rfc3339")]
    time: OffsetDateTime,
    source: String,
    subject: String,
    actor: Actor,
    correlation_id: Uuid,
    #[serde(default)]
    causation_id: Option<Uuid>,
    /// Kept as the raw JSON text and decoded once, straight into the typed payload.
    #[serde(borrow)]
    data: &'a serde_json::value::RawValue,
}

impl Envelope {
    /// A new fact with a fresh UUID v7 id.
    pub fn new(event: Event, meta: EventMeta) -> Self {
        Envelope::with_id(crate::new_event_id(), event, meta)
    }

    /// A fact with a caller-chosen id (an idempotency key, or a deterministic id).
    pub fn with_id(id: Uuid, event: Event, meta: EventMeta) -> Self {
        Envelope {
            id,
            subject: subject_for(&event),
            time: meta.time,
            source: meta.source,
            actor: meta.actor,
            correlation_id: meta.correlation_id,
            causation_id: meta.causation_id,
            event,
        }
    }

    /// Metadata for an event caused by this one: same correlation, causation = this id.
    pub fn follow_up(&self, source: &str, actor: Actor, time: OffsetDateTime) -> EventMeta {
        EventMeta {
            time,
            source: source.to_owned(),
            actor,
            correlation_id: self.correlation_id,
            causation_id: Some(self.id),
        }
    }

    pub fn event_type(&self) -> &'static str {
        self.event.event_type()
    }

    /// Milliseconds since the Unix epoch of `time`, clamped at zero.
    pub fn unix_millis(&self) -> u64 {
        u64::try_from(self.time.unix_timestamp_nanos() / 1_000_000).unwrap_or(0)
    }

    pub fn encode(&self) -> Vec<u8> {
        let data = self
            .event
            .data_to_value()
            .expect("payload types serialize to json infallibly");
        let wire = WireOut {
            id: self.id,
            event_type: self.event.event_type(),
            time: self.time,
            source: &self.source,
            subject: &self.subject,
            actor: &self.actor,
            correlation_id: self.correlation_id,
            causation_id: self.causation_id,
            data,
        };
        serde_json::to_vec(&wire).expect("envelope serializes to json infallibly")
    }

    /// An encoded envelope's `time` alone, without decoding the rest.
    pub fn time_of(bytes: &[u8]) -> Option<OffsetDateTime> {
        #[derive(Deserialize)]
        struct TimeOnly {
            #[serde(with = "time::serde::rfc3339")]
            time: OffsetDateTime,
        }
        serde_json::from_slice::<TimeOnly>(bytes)
            .ok()
            .map(|t| t.time)
    }

    pub fn decode(bytes: &[u8]) -> Result<Envelope, DecodeError> {
        let wire: WireIn = serde_json::from_slice(bytes)
            .map_err(|error| DecodeError::Undecodable(error.to_string()))?;
        let event = match Event::from_type_and_data(&wire.event_type, wire.data.get()) {
            None => return Err(DecodeError::UnknownType(wire.event_type)),
            Some(Err(error)) => {
                return Err(DecodeError::InvalidPayload {
                    event_type: wire.event_type,
                    message: error.to_string(),
                });
            }
            Some(Ok(event)) => event,
        };
        Ok(Envelope {
            id: wire.id,
            time: wire.time,
            source: wire.source,
            subject: wire.subject,
            actor: wire.actor,
            correlation_id: wire.correlation_id,
            causation_id: wire.causation_id,
            event,
        })
    }
}
