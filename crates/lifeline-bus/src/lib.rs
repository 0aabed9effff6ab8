//! The NATS JetStream edge: idempotent stream provisioning, a publisher with message-id
//! de-duplication, optimistic concurrency and retries, a batched ordered reader that
//! resumes from a stored position, and dead-letter parking.

mod dead_letter;
mod lookup;
pub mod metrics;
mod provision;
mod publisher;
mod reader;

pub use dead_letter::{DeadLetter, DeadLetterRecord, read_dead_letters};
pub use lookup::{LookupError, find_event_on_subject, last_subject_sequence};
pub use provision::{StreamSettings, provision};
pub use publisher::{PublishError, Published, Publisher};
pub use reader::{EventReader, ReadError, StreamMessage, stream_head};

pub use async_nats;

/// Connects to NATS with a name that shows in the server's connection list.
pub async fn connect(
    url: &str,
    name: &str,
) -> Result<async_nats::Client, async_nats::ConnectError> {
    async_nats::ConnectOptions::new()
        .name(name)
        .retry_on_initial_connect()
        .max_reconnects(None)
        .connect(url)
        .await
}
