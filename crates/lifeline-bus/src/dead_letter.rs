//! Parking messages a consumer cannot use on the dead-letter stream, with the reason.
//!
//! The original payload is kept byte for byte as the message body; who parked it and why
//! travel in headers. The message id is `<consumer>:<sequence>`, so parking the same
//! message again after a crash stores it once; a message older than the stream's duplicate
//! window (a new replica reading the history) is parked only if this consumer has not
//! parked it before ([`DeadLetter::park_once`]).

use async_nats::HeaderMap;
use async_nats::jetstream;
use lifeline_events::{DEAD_LETTER_STREAM, dead_letter_subject};
use serde::Serialize;

use crate::metrics;
use crate::publisher::PublishError;
use crate::reader::{ReadError, StreamMessage, stream_head};
use crate::redrive::{REDRIVE_ID, REDRIVE_OF, REDRIVE_SEQUENCE, REDRIVEN_BY, Redrive};

pub(crate) const CONSUMER: &str = "Lifeline-Dead-Letter-Consumer";
const REASON: &str = "Lifeline-Dead-Letter-Reason";
const DETAIL: &str = "Lifeline-Dead-Letter-Detail";
pub(crate) const ORIGINAL_SUBJECT: &str = "Lifeline-Original-Subject";
const ORIGINAL_SEQUENCE: &str = "Lifeline-Original-Sequence";

/// Parks messages for one consumer.
#[derive(Clone)]
pub struct DeadLetter {
    jetstream: jetstream::Context,
    consumer: String,
    /// The original sequences this consumer has parked, read once from the dead-letter
    /// stream the first time an old message is rejected.
    parked: std::sync::Arc<tokio::sync::OnceCell<std::collections::HashSet<u64>>>,
}

impl std::fmt::Debug for DeadLetter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeadLetter")
            .field("consumer", &self.consumer)
            .finish()
    }
}

/// A parked message as operators see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct DeadLetterRecord {
    pub sequence: u64,
    pub consumer: String,
    pub reason: String,
    pub detail: String,
    pub original_subject: String,
    pub original_sequence: u64,
    /// The original payload, as text (invalid UTF-8 replaced).
    pub payload: String,
    /// Set once an operator re-drove it (`POST /v1/dead-letters/{sequence}/redrive`).
    pub redriven: Option<Redrive>,
}

impl DeadLetter {
    pub fn new(jetstream: jetstream::Context, consumer: impl Into<String>) -> Self {
        DeadLetter {
            jetstream,
            consumer: consumer.into(),
            parked: Default::default(),
        }
    }

    /// [`DeadLetter::park`] for a message older than JetStream's duplicate window, which no
    /// longer drops a second copy: parked only if this consumer has not parked it before.
    /// The first call reads the dead-letter stream once (the sequences this consumer
    /// parked); a copy parked meanwhile by another replica is inside the window.
    pub async fn park_once(
        &self,
        message: &StreamMessage,
        reason: &'static str,
        detail: &str,
    ) -> Result<(), PublishError> {
        let parked = self
            .parked
            .get_or_try_init(|| parked_sequences(&self.jetstream, &self.consumer))
            .await
            .map_err(|error| PublishError::Unavailable {
                attempts: 1,
                message: error.to_string(),
            })?;
        if parked.contains(&message.sequence) {
            return Ok(());
        }
        self.park(message, reason, detail).await
    }

    pub async fn park(
        &self,
        message: &StreamMessage,
        reason: &'static str,
        detail: &str,
    ) -> Result<(), PublishError> {
        let mut headers = HeaderMap::new();
        headers.insert(
            "Nats-Msg-Id",
            format!("{}:{}", self.consumer, message.sequence).as_str(),
        );
        headers.insert(CONSUMER, self.consumer.as_str());
        headers.insert(REASON, reason);
        // Header values are single-line.
        let detail: String = detail
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .take(1024)
            .collect();
        headers.insert(DETAIL, detail.as_str());
        headers.insert(ORIGINAL_SUBJECT, message.subject.as_str());
        headers.insert(ORIGINAL_SEQUENCE, message.sequence.to_string().as_str());
        let result = async {
            self.jetstream
                .publish_with_headers(
                    dead_letter_subject(&self.consumer),
                    headers,
                    message.payload.clone(),
                )
                .await?
                .await
        }
        .await;
        match result {
            Ok(ack) => {
                if !ack.duplicate {
                    metrics::DEAD_LETTERS
                        .with_label_values(&[&self.consumer, reason])
                        .inc();
                }
                tracing::warn!(
                    consumer = %self.consumer,
                    reason,
                    %detail,
                    sequence = message.sequence,
                    subject = %message.subject,
                    "message parked on the dead-letter stream"
                );
                Ok(())
            }
            Err(error) => Err(PublishError::Unavailable {
                attempts: 1,
                message: error.to_string(),
            }),
        }
    }
}

/// A header of a dead letter, when it has it.
fn header(message: &StreamMessage, name: &str) -> Option<String> {
    message
        .headers
        .as_ref()
        .and_then(|headers| headers.get(name))
        .map(|value| value.as_str().to_owned())
}

/// Every message of the dead-letter stream up to its head when called, oldest first.
async fn each_dead_letter(
    jetstream: &jetstream::Context,
    mut visit: impl FnMut(&StreamMessage),
) -> Result<(), ReadError> {
    let head = stream_head(jetstream, DEAD_LETTER_STREAM).await?;
    if head == 0 {
        return Ok(());
    }
    let mut reader = crate::EventReader::open(jetstream, DEAD_LETTER_STREAM, 0, 256).await?;
    while let Some(batch) = reader.next_batch().await {
        for message in batch? {
            visit(&message);
            if message.sequence >= head {
                return Ok(());
            }
        }
    }
    Ok(())
}

/// The original sequences `consumer` has parked (re-drive markers left out).
async fn parked_sequences(
    jetstream: &jetstream::Context,
    consumer: &str,
) -> Result<std::collections::HashSet<u64>, ReadError> {
    let mut parked = std::collections::HashSet::new();
    each_dead_letter(jetstream, |message| {
        if header(message, REDRIVE_OF).is_none()
            && header(message, CONSUMER).as_deref() == Some(consumer)
            && let Some(sequence) = header(message, ORIGINAL_SEQUENCE).and_then(|s| s.parse().ok())
        {
            parked.insert(sequence);
        }
    })
    .await?;
    Ok(parked)
}

/// Every dead letter currently in the stream, oldest first (at most `limit`), each with its
/// re-drive when it had one.
pub async fn read_dead_letters(
    jetstream: &jetstream::Context,
    limit: usize,
) -> Result<Vec<DeadLetterRecord>, ReadError> {
    let mut records: Vec<DeadLetterRecord> = Vec::new();
    let mut redrives = std::collections::HashMap::new();
    each_dead_letter(jetstream, |message| {
        let header = |name: &str| header(message, name).unwrap_or_default();
        if let Ok(of) = header(REDRIVE_OF).parse::<u64>() {
            // A re-drive marker, not a dead letter.
            if let Ok(id) = uuid::Uuid::try_parse(&header(REDRIVE_ID)) {
                redrives.insert(
                    of,
                    Redrive {
                        id,
                        stream_sequence: header(REDRIVE_SEQUENCE).parse().unwrap_or(0),
                        by: header(REDRIVEN_BY),
                    },
                );
            }
        } else if records.len() < limit {
            records.push(DeadLetterRecord {
                sequence: message.sequence,
                consumer: header(CONSUMER),
                reason: header(REASON),
                detail: header(DETAIL),
                original_subject: header(ORIGINAL_SUBJECT),
                original_sequence: header(ORIGINAL_SEQUENCE).parse().unwrap_or(0),
                payload: String::from_utf8_lossy(&message.payload).into_owned(),
                redriven: None,
            });
        }
    })
    .await?;
    for record in &mut records {
        record.redriven = redrives.remove(&record.sequence);
    }
    Ok(records)
}
