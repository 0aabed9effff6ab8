//! Reading a whole stream in order, in batches, from a stored position.

use async_nats::jetstream::{self, consumer};
use futures::StreamExt;
use futures::stream::ReadyChunks;
use time::OffsetDateTime;

/// One message read from the event stream.
#[derive(Debug, Clone)]
pub struct StreamMessage {
    pub sequence: u64,
    pub subject: String,
    pub payload: bytes::Bytes,
    pub headers: Option<async_nats::HeaderMap>,
    /// When JetStream stored it.
    pub published: OffsetDateTime,
    /// Messages after this one in the stream at delivery time: the reader's lag.
    pub pending: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The stream or consumer could not be set up or broke: retry after a pause.
    #[error("cannot read stream {stream}: {message}")]
    Unavailable { stream: String, message: String },
}

/// An ordered consumer over a whole stream: no acks, no server-side state to clean up, and
/// it recreates itself on a gap. Its position lives with the reader's state, not in NATS.
pub struct EventReader {
    messages: ReadyChunks<consumer::pull::Ordered>,
    stream: String,
}

impl std::fmt::Debug for EventReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventReader")
            .field("stream", &self.stream)
            .finish()
    }
}

fn unavailable(stream: &str, error: impl std::fmt::Display) -> ReadError {
    ReadError::Unavailable {
        stream: stream.to_owned(),
        message: error.to_string(),
    }
}

impl EventReader {
    /// Starts reading at the message after `position` (0: from the beginning), returning
    /// at most `max_batch` messages per batch.
    pub async fn open(
        jetstream: &jetstream::Context,
        stream: &str,
        position: u64,
        max_batch: usize,
    ) -> Result<Self, ReadError> {
        let handle = jetstream
            .get_stream(stream)
            .await
            .map_err(|e| unavailable(stream, e))?;
        let deliver_policy = if position == 0 {
            consumer::DeliverPolicy::All
        } else {
            consumer::DeliverPolicy::ByStartSequence {
                start_sequence: position + 1,
            }
        };
        let ordered = handle
            .create_consumer(consumer::pull::OrderedConfig {
                deliver_policy,
                // Pull requests expire after 2 s, so the idle heartbeat is 1 s: a reader
                // whose server-side consumer vanished (its stream leader died in a cluster)
                // notices within seconds and recreates it on the new leader, instead of
                // after the 15 s default heartbeat.
                max_expires: std::time::Duration::from_secs(2),
                ..Default::default()
            })
            .await
            .map_err(|e| unavailable(stream, e))?;
        let messages = ordered
            .messages()
            .await
            .map_err(|e| unavailable(stream, e))?;
        Ok(EventReader {
            messages: messages.ready_chunks(max_batch.max(1)),
            stream: stream.to_owned(),
        })
    }

    /// Waits for at least one message, then returns every message already received, up to
    /// the batch size. `None` when the consumer ended.
    pub async fn next_batch(&mut self) -> Option<Result<Vec<StreamMessage>, ReadError>> {
        let chunk = self.messages.next().await?;
        let mut batch = Vec::with_capacity(chunk.len());
        for item in chunk {
            let message = match item {
                Ok(message) => message,
                Err(error) => return Some(Err(unavailable(&self.stream, error))),
            };
            let info = match message.info() {
                Ok(info) => (info.stream_sequence, info.published, info.pending),
                Err(error) => return Some(Err(unavailable(&self.stream, error))),
            };
            batch.push(StreamMessage {
                sequence: info.0,
                published: info.1,
                pending: info.2,
                subject: message.message.subject.to_string(),
                payload: message.message.payload.clone(),
                headers: message.message.headers.clone(),
            });
        }
        Some(Ok(batch))
    }
}

/// The sequence of the last message in `stream` (0 when empty).
pub async fn stream_head(jetstream: &jetstream::Context, stream: &str) -> Result<u64, ReadError> {
    // Looking the stream up fetches its info: one request, not two.
    let handle = jetstream
        .get_stream(stream)
        .await
        .map_err(|e| unavailable(stream, e))?;
    Ok(handle.cached_info().state.last_sequence)
}
