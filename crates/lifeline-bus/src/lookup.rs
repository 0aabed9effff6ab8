//! Point look-ups in the event stream, for the command side: the last sequence on an
//! aggregate's subject (optimistic concurrency) and whether an event id is stored on a
//! subject (an idempotent retry whose first acknowledgement was lost).

use async_nats::jetstream;
use lifeline_events::{EVENT_STREAM, Envelope};
use uuid::Uuid;

/// The stream could not be asked: the caller retries later.
#[derive(Debug, thiserror::Error)]
#[error("the event stream is unavailable for a look-up")]
pub struct LookupError(#[source] pub Box<dyn std::error::Error + Send + Sync>);

async fn event_stream(
    jetstream: &jetstream::Context,
) -> Result<jetstream::stream::Stream, LookupError> {
    stream_named(jetstream, EVENT_STREAM).await
}

async fn stream_named(
    jetstream: &jetstream::Context,
    name: &str,
) -> Result<jetstream::stream::Stream, LookupError> {
    jetstream
        .get_stream(name)
        .await
        .map_err(|error| LookupError(Box::new(error)))
}

/// The sequence of the last message on `subject`, 0 when there is none.
pub async fn last_subject_sequence(
    jetstream: &jetstream::Context,
    subject: &str,
) -> Result<u64, LookupError> {
    let stream = event_stream(jetstream).await?;
    match stream.get_last_raw_message_by_subject(subject).await {
        Ok(message) => Ok(message.sequence),
        Err(error)
            if error.kind() == jetstream::stream::LastRawMessageErrorKind::NoMessageFound =>
        {
            Ok(0)
        }
        Err(error) => Err(LookupError(Box::new(error))),
    }
}

/// The subject of the last message matching `pattern` (a subject with wildcards, such as
/// `lifeline.orders.*.<order>`), `None` when no message does: where an aggregate lives
/// when its id does not say.
pub async fn last_subject_matching(
    jetstream: &jetstream::Context,
    pattern: &str,
) -> Result<Option<String>, LookupError> {
    let stream = event_stream(jetstream).await?;
    match stream.get_last_raw_message_by_subject(pattern).await {
        Ok(message) => Ok(Some(message.subject.to_string())),
        Err(error)
            if error.kind() == jetstream::stream::LastRawMessageErrorKind::NoMessageFound =>
        {
            Ok(None)
        }
        Err(error) => Err(LookupError(Box::new(error))),
    }
}

/// The event with id `event_id` on `subject` and its stream sequence, if the stream holds
/// it (found even after JetStream's duplicate window has passed).
pub async fn find_event_on_subject(
    jetstream: &jetstream::Context,
    subject: &str,
    event_id: Uuid,
) -> Result<Option<(u64, Envelope)>, LookupError> {
    find_event_in(jetstream, EVENT_STREAM, subject, event_id).await
}

/// [`find_event_on_subject`] in stream `stream` (the partner feed's copies, say). Reads
/// every message on `subject`: meant for an aggregate's subject, which holds a few.
pub async fn find_event_in(
    jetstream: &jetstream::Context,
    stream: &str,
    subject: &str,
    event_id: Uuid,
) -> Result<Option<(u64, Envelope)>, LookupError> {
    find_event_in_from(jetstream, stream, subject, event_id, 1).await
}

/// [`find_event_in`] reading only the messages on `subject` from stream sequence `from`
/// on: a follow-up is always stored after its cause, so looking for one from its cause's
/// sequence skips the subject's history before it (a campaign's continuations: each is
/// found at the first message read, not after all the earlier ones).
pub async fn find_event_in_from(
    jetstream: &jetstream::Context,
    stream: &str,
    subject: &str,
    event_id: Uuid,
    from: u64,
) -> Result<Option<(u64, Envelope)>, LookupError> {
    let stream = stream_named(jetstream, stream).await?;
    let mut from = from.max(1);
    loop {
        match stream
            .direct_get_next_for_subject(subject, Some(from))
            .await
        {
            Ok(message) => {
                if let Ok(envelope) = Envelope::decode(&message.payload)
                    && envelope.id == event_id
                {
                    return Ok(Some((message.sequence, envelope)));
                }
                from = message.sequence + 1;
            }
            Err(error) if error.kind() == jetstream::stream::DirectGetErrorKind::NotFound => {
                return Ok(None);
            }
            Err(error) => return Err(LookupError(Box::new(error))),
        }
    }
}
