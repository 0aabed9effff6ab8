//! Re-driving a parked message: after a fix or a registry correction, an operator puts a
//! dead letter back on the event stream for the one consumer that parked it.
//!
//! The re-driven message is the original envelope (same event id, same correlation) with a
//! new causation, the re-drive's own id, published on its original subject with two
//! headers: `Lifeline-Redrive-For` (the consumer that parked it; every other consumer
//! skips the message, having applied the original already) and `Lifeline-Redrive-Of` (the
//! dead letter's sequence). Its message id is `redrive:<dead-letter sequence>`, and a
//! marker on the dead-letter stream records the re-drive, so the dead-letter view shows it
//! and a second re-drive of the same dead letter is refused.

use async_nats::HeaderMap;
use async_nats::jetstream;
use lifeline_events::{DEAD_LETTER_STREAM, EVENT_STREAM, Envelope, dead_letter_subject};
use serde::Serialize;
use uuid::Uuid;

use crate::dead_letter::{CONSUMER, ORIGINAL_SUBJECT, read_dead_letters};

/// Names the one consumer a re-driven message is for.
pub const REDRIVE_FOR: &str = "Lifeline-Redrive-For";
/// The dead letter's sequence, on the re-driven message and on the marker.
pub const REDRIVE_OF: &str = "Lifeline-Redrive-Of";
pub(crate) const REDRIVE_SEQUENCE: &str = "Lifeline-Redrive-Sequence";
pub(crate) const REDRIVE_ID: &str = "Lifeline-Redrive-Id";
pub(crate) const REDRIVEN_BY: &str = "Lifeline-Redriven-By";

/// Whether `consumer` skips this message: it is a re-drive meant for another consumer.
pub fn redriven_for_another(headers: Option<&HeaderMap>, consumer: &str) -> bool {
    headers
        .and_then(|headers| headers.get(REDRIVE_FOR))
        .is_some_and(|target| target.as_str() != consumer)
}

/// A re-drive as the dead-letter view shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Redrive {
    /// The re-drive's id: the re-driven event's new causation id.
    #[schema(value_type = String)]
    pub id: Uuid,
    /// Where the re-driven message landed in the event stream.
    pub stream_sequence: u64,
    /// The operator who re-drove it.
    pub by: String,
}

#[derive(Debug, thiserror::Error)]
pub enum RedriveError {
    #[error("no dead letter {0}")]
    NotFound(u64),
    #[error("dead letter {sequence} was re-driven already (stream sequence {stream_sequence})")]
    AlreadyRedriven { sequence: u64, stream_sequence: u64 },
    /// The payload is not an envelope lifeline can read: no fix on this side makes it one,
    /// the sender must publish a corrected event.
    #[error("dead letter {sequence} cannot be re-driven: {reason}")]
    NotRedrivable { sequence: u64, reason: String },
    #[error("the stream is unavailable: {0}")]
    Unavailable(String),
}

fn unavailable(error: impl std::fmt::Display) -> RedriveError {
    RedriveError::Unavailable(error.to_string())
}

/// Re-publishes dead letter `sequence` for the consumer that parked it; `by` is the
/// operator's identity.
pub async fn redrive(
    jetstream: &jetstream::Context,
    sequence: u64,
    by: &str,
) -> Result<Redrive, RedriveError> {
    if sequence == 0 {
        // Stream sequences start at 1.
        return Err(RedriveError::NotFound(sequence));
    }
    let stream = jetstream
        .get_stream(DEAD_LETTER_STREAM)
        .await
        .map_err(unavailable)?;
    let parked = match stream.direct_get(sequence).await {
        Ok(message) => message,
        Err(error) if error.kind() == jetstream::stream::DirectGetErrorKind::NotFound => {
            return Err(RedriveError::NotFound(sequence));
        }
        Err(error) => return Err(unavailable(error)),
    };
    let header = |name: &str| {
        parked
            .headers
            .get(name)
            .map(|value| value.as_str().to_owned())
    };
    let (Some(consumer), Some(subject)) = (header(CONSUMER), header(ORIGINAL_SUBJECT)) else {
        // A marker, or something not parked by lifeline.
        return Err(RedriveError::NotFound(sequence));
    };
    if let Some(earlier) = read_dead_letters(jetstream, usize::MAX)
        .await
        .map_err(unavailable)?
        .into_iter()
        .find(|record| record.sequence == sequence)
        .and_then(|record| record.redriven)
    {
        return Err(RedriveError::AlreadyRedriven {
            sequence,
            stream_sequence: earlier.stream_sequence,
        });
    }
    let mut envelope =
        Envelope::decode(&parked.payload).map_err(|error| RedriveError::NotRedrivable {
            sequence,
            reason: format!("the payload is not a lifeline event ({error})"),
        })?;
    if envelope.subject != subject {
        return Err(RedriveError::NotRedrivable {
            sequence,
            reason: format!(
                "the envelope names subject {}, it was published on {subject}",
                envelope.subject
            ),
        });
    }
    let id = lifeline_events::new_event_id();
    envelope.causation_id = Some(id);

    let mut headers = HeaderMap::new();
    headers.insert("Nats-Msg-Id", format!("redrive:{sequence}").as_str());
    headers.insert("Nats-Expected-Stream", EVENT_STREAM);
    headers.insert(REDRIVE_FOR, consumer.as_str());
    headers.insert(REDRIVE_OF, sequence.to_string().as_str());
    let ack = jetstream
        .publish_with_headers(subject, headers, envelope.encode().into())
        .await
        .map_err(unavailable)?
        .await
        .map_err(unavailable)?;

    let mut marker = HeaderMap::new();
    marker.insert("Nats-Msg-Id", format!("redriven:{sequence}").as_str());
    marker.insert(REDRIVE_OF, sequence.to_string().as_str());
    marker.insert(REDRIVE_SEQUENCE, ack.sequence.to_string().as_str());
    marker.insert(REDRIVE_ID, id.to_string().as_str());
    marker.insert(REDRIVEN_BY, by);
    jetstream
        .publish_with_headers(
            format!("{}.redriven", dead_letter_subject(&consumer)),
            marker,
            bytes::Bytes::new(),
        )
        .await
        .map_err(unavailable)?
        .await
        .map_err(unavailable)?;
    crate::metrics::REDRIVES
        .with_label_values(&[&consumer])
        .inc();
    tracing::info!(
        dead_letter = sequence,
        %consumer,
        stream_sequence = ack.sequence,
        redrive_id = %id,
        by,
        "dead letter re-driven"
    );
    Ok(Redrive {
        id,
        stream_sequence: ack.sequence,
        by: by.to_owned(),
    })
}
