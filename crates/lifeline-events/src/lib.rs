//! The lifeline event catalogue: one envelope for every fact, the typed payloads of every
//! event type, and the NATS subject scheme. Pure: no I/O, no clock, no randomness that the
//! caller does not pass in.

mod care;
mod envelope;
mod ids;
mod partition;
mod payload;
mod subject;
mod wire;

pub use care::*;
pub use envelope::{Actor, ActorKind, DecodeError, Envelope, EventMeta};
pub use ids::{deterministic_event_id, is_token, new_event_id};
pub use partition::{PartitionError, Partitioning, community_of_subject, partition_of};
pub use payload::*;
pub use subject::{
    DEAD_LETTER_STREAM, DEAD_LETTER_SUBJECT_PREFIX, EVENT_STREAM, EVENT_STREAM_SUBJECTS,
    PARTNER_FEED_STREAM, PARTNER_FEED_SUBJECT_PREFIX, campaign_subject, dead_letter_subject,
    drop_subject, order_subject, partner_feed_subject, pick_subject, run_subject, subject_for,
};
pub use wire::wire_name;
