//! Idempotent stream provisioning.

use std::time::Duration;

use async_nats::jetstream::{self, stream};
use lifeline_events::{
    DEAD_LETTER_STREAM, DEAD_LETTER_SUBJECT_PREFIX, EVENT_STREAM, EVENT_STREAM_SUBJECTS,
    PARTNER_FEED_STREAM, PARTNER_FEED_SUBJECT_PREFIX,
};

/// How the streams are created. Replicas above 1 need a JetStream cluster.
#[derive(Debug, Clone)]
pub struct StreamSettings {
    /// Replicas asked for; `None` keeps an existing stream's (1 for a new one).
    pub replicas: Option<usize>,
    /// Allow lowering an existing stream's replicas (otherwise refused).
    pub allow_fewer_replicas: bool,
    /// How long JetStream remembers message ids for de-duplication. A process manager that
    /// crashes re-publishes within seconds; the default leaves ample room.
    pub duplicate_window: Duration,
    /// How long the API remembers an `Idempotency-Key` and its first answer (the TTL of
    /// the [`IDEMPOTENCY_BUCKET`] entries).
    pub idempotency_ttl: Duration,
}

/// The JetStream key-value bucket shared by every `lifeline up` replica: an
/// `Idempotency-Key`'s chosen event id and first answer, so a retry through any replica
/// gets the first answer.
pub const IDEMPOTENCY_BUCKET: &str = "LIFELINE_IDEMPOTENCY";

impl Default for StreamSettings {
    fn default() -> Self {
        StreamSettings {
            replicas: None,
            allow_fewer_replicas: false,
            duplicate_window: Duration::from_secs(10 * 60),
            idempotency_ttl: Duration::from_secs(24 * 60 * 60),
        }
    }
}

/// The replicas a stream gets: as asked, or as it has, or 1 for a new one; never fewer
/// than it has unless explicitly allowed (a replay or a forgotten flag must not turn an R3
/// stream into R1).
pub fn replicas_for(
    existing: Option<usize>,
    asked: Option<usize>,
    allow_fewer: bool,
) -> Result<usize, ProvisionError> {
    match (existing, asked) {
        (Some(existing), Some(asked)) if asked < existing && !allow_fewer => {
            Err(ProvisionError::FewerReplicas { existing, asked })
        }
        (_, Some(asked)) => Ok(asked),
        (Some(existing), None) => Ok(existing),
        (None, None) => Ok(1),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    #[error(
        "the streams have {existing} replicas; --replicas {asked} would lower that (pass \
         --allow-fewer-replicas to do it on purpose)"
    )]
    FewerReplicas { existing: usize, asked: usize },
    #[error(transparent)]
    Nats(#[from] async_nats::Error),
}

/// Creates the event, dead-letter and partner-feed streams and the idempotency bucket, or
/// updates them to these settings, never weakening an existing one: file storage always,
/// replicas never lowered unless allowed. Safe to call from every process at every start.
pub async fn provision(
    jetstream: &jetstream::Context,
    settings: &StreamSettings,
) -> Result<(), ProvisionError> {
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
        (
            PARTNER_FEED_STREAM,
            vec![format!("{PARTNER_FEED_SUBJECT_PREFIX}.>")],
        ),
    ] {
        let replicas = replicas_of(jetstream, name, settings).await?;
        let config = stream::Config {
            name: name.to_owned(),
            subjects,
            storage: stream::StorageType::File,
            num_replicas: replicas,
            duplicate_window: settings.duplicate_window,
            allow_direct: true,
            ..Default::default()
        };
        jetstream
            .create_or_update_stream(config)
            .await
            .map_err(|error| ProvisionError::Nats(Box::new(error)))?;
    }
    let replicas = replicas_of(jetstream, &format!("KV_{IDEMPOTENCY_BUCKET}"), settings).await?;
    jetstream
        .create_or_update_key_value(jetstream::kv::Config {
            bucket: IDEMPOTENCY_BUCKET.to_owned(),
            description: "Idempotency-Key -> event id and first answer (lifeline API)".into(),
            history: 1,
            max_age: settings.idempotency_ttl,
            storage: stream::StorageType::File,
            num_replicas: replicas,
            ..Default::default()
        })
        .await
        .map_err(|error| ProvisionError::Nats(Box::new(error)))?;
    Ok(())
}

/// The replicas stream `name` gets (see [`replicas_for`]).
async fn replicas_of(
    jetstream: &jetstream::Context,
    name: &str,
    settings: &StreamSettings,
) -> Result<usize, ProvisionError> {
    let existing = match jetstream.get_stream(name).await {
        Ok(mut stream) => Some(
            stream
                .info()
                .await
                .map_err(|error| ProvisionError::Nats(Box::new(error)))?
                .config
                .num_replicas,
        ),
        Err(error) => match error.kind() {
            // Only a stream that is not there is created; any other failure to read
            // it must not be taken for "new" (and so for 1 replica).
            jetstream::context::GetStreamErrorKind::JetStream(inner)
                if inner.error_code() == jetstream::ErrorCode::STREAM_NOT_FOUND =>
            {
                None
            }
            _ => return Err(ProvisionError::Nats(Box::new(error))),
        },
    };
    replicas_for(existing, settings.replicas, settings.allow_fewer_replicas)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replicas_are_never_lowered_by_accident() {
        // (existing, asked, allow fewer) -> replicas, or None when refused.
        type Case = (Option<usize>, Option<usize>, bool, Option<usize>);
        let cases: &[Case] = &[
            (None, None, false, Some(1)),
            (None, Some(3), false, Some(3)),
            (Some(3), None, false, Some(3)),
            (Some(3), Some(3), false, Some(3)),
            (Some(1), Some(3), false, Some(3)),
            (Some(3), Some(1), false, None),
            (Some(3), Some(1), true, Some(1)),
        ];
        for (existing, asked, allow, expected) in cases {
            assert_eq!(
                replicas_for(*existing, *asked, *allow).ok(),
                *expected,
                "{existing:?} {asked:?} {allow}"
            );
        }
    }
}
