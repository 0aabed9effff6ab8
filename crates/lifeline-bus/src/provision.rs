//! Idempotent stream provisioning.

use std::time::Duration;

use async_nats::jetstream::{self, stream};
use lifeline_events::{
    DEAD_LETTER_STREAM, DEAD_LETTER_SUBJECT_PREFIX, EVENT_STREAM, EVENT_STREAM_SUBJECTS,
};

/// How the streams are created. Replicas above 1 need a JetStream cluster.
#[derive(Debug, Clone)]
pub struct StreamSettings {
    pub replicas: usize,
    /// How long JetStream remembers message ids for de-duplication. A process manager that
    /// crashes re-publishes within seconds; the default leaves ample room.
    pub duplicate_window: Duration,
}

impl Default for StreamSettings {
    fn default() -> Self {
        StreamSettings {
            replicas: 1,
            duplicate_window: Duration::from_secs(10 * 60),
        }
    }
}

/// Creates the event and dead-letter streams, or updates them to these settings. Safe to
/// call from every process at every start.
pub async fn provision(
    jetstream: &jetstream::Context,
    settings: &StreamSettings,
) -> Result<(), async_nats::Error> {
    for (name, subjects) in [
        (
            EVENT_STREAM,
            EVENT_STREAM_SUBJECTS
                .iter()
                .map(|s| (*s).to_owned())
                .collect::<Vec<_>>(),
        ),
        (
            DEAD_LETTER_STREAM,
            vec![format!("{DEAD_LETTER_SUBJECT_PREFIX}.>")],
        ),
    ] {
        let config = stream::Config {
            name: name.to_owned(),
            subjects,
            storage: stream::StorageType::File,
            num_replicas: settings.replicas,
            duplicate_window: settings.duplicate_window,
            allow_direct: true,
            ..Default::default()
        };
        jetstream.create_or_update_stream(config).await?;
    }
    Ok(())
}
