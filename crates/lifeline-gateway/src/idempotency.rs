//! Client retries: a command sent with an `Idempotency-Key` is carried out once. The first
//! answer is stored under the caller's id and the key in the JetStream key-value bucket
//! every `lifeline up` replica shares ([`lifeline_bus::IDEMPOTENCY_BUCKET`], entries kept
//! for a day), and returned to every retry, through whichever replica it comes. The event
//! id is chosen once and stored before publishing, so a retry after a crash or a timeout
//! publishes the same id and JetStream drops the duplicate. Every write is a
//! compare-and-set on the entry's revision: of two replicas answering the same key at
//! once, the first answer stored is the one both return.

use axum::http::{HeaderMap, StatusCode};
use lifeline_bus::async_nats::jetstream::kv;
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;
use uuid::Uuid;

use crate::error::ApiError;

const STRIPES: usize = 64;

/// One entry of the bucket.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Record {
    /// The id chosen for the event; the publish may or may not have happened.
    Pending { event_id: Uuid },
    Completed {
        event_id: Uuid,
        status: u16,
        body: serde_json::Value,
    },
}

/// What a request finds under its key.
enum Claim {
    /// Run the command with this event id; `maybe_published` when an earlier attempt got
    /// as far as publishing; `revision` is the entry's, for the compare-and-set.
    Run {
        event_id: Uuid,
        maybe_published: bool,
        revision: u64,
    },
    /// The first attempt's answer.
    Answered(StatusCode, serde_json::Value),
}

/// The shared idempotency bucket and a lock per stripe of keys, so two concurrent requests
/// with the same key in one replica queue rather than race (across replicas the bucket's
/// compare-and-set decides).
pub struct Idempotency {
    bucket: kv::Store,
    locks: Vec<Mutex<()>>,
}

impl std::fmt::Debug for Idempotency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Idempotency").finish()
    }
}

/// The `Idempotency-Key` header, if present and well-formed.
pub fn key_from(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let key = value
        .to_str()
        .map_err(|_| ApiError::BadRequest("Idempotency-Key must be visible ASCII".into()))?;
    if key.is_empty() || key.len() > 128 || !key.chars().all(|c| c.is_ascii_graphic()) {
        return Err(ApiError::BadRequest(
            "Idempotency-Key must be 1 to 128 visible ASCII characters".into(),
        ));
    }
    Ok(Some(key.to_owned()))
}

/// The bucket key for a caller's `Idempotency-Key`: `<caller>.<key>`, each byte outside
/// `[A-Za-z0-9_-]` written `=XX` (a KV key allows only `[-/_=.A-Za-z0-9]`, and a dot
/// separates tokens). Distinct (caller, key) pairs never share an entry.
pub fn bucket_key(caller: &str, key: &str) -> String {
    let mut out = String::with_capacity(caller.len() + key.len() + 8);
    for (n, part) in [caller, key].into_iter().enumerate() {
        if n > 0 {
            out.push('.');
        }
        for byte in part.bytes() {
            if byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'-' {
                out.push(char::from(byte));
            } else {
                out.push_str(&format!("={byte:02X}"));
            }
        }
    }
    out
}

/// How long an answer whose event is appended waits for its idempotency entry to take it
/// (a JetStream cluster elects a new leader within a few seconds).
const STORE_ANSWER_FOR: std::time::Duration = std::time::Duration::from_secs(10);

fn stripe(key: &str) -> usize {
    key.bytes().fold(0usize, |hash, byte| {
        hash.wrapping_mul(31).wrapping_add(usize::from(byte))
    }) % STRIPES
}

/// NATS could not be asked: the caller retries later (503).
fn unavailable(error: impl std::fmt::Display) -> ApiError {
    tracing::warn!(%error, "idempotency bucket unavailable");
    ApiError::Unavailable
}

fn encode(record: &Record) -> bytes::Bytes {
    bytes::Bytes::from(serde_json::to_vec(record).expect("records serialize"))
}

fn answer(status: u16, body: serde_json::Value) -> (StatusCode, serde_json::Value) {
    (StatusCode::from_u16(status).unwrap_or(StatusCode::OK), body)
}

impl Idempotency {
    pub fn new(bucket: kv::Store) -> Self {
        Idempotency {
            bucket,
            locks: (0..STRIPES).map(|_| Mutex::new(())).collect(),
        }
    }

    /// The record under bucket key `key` and its revision; `None` for none (deleted,
    /// expired, or unreadable by this version: treated as absent, never a crash).
    pub async fn read(&self, key: &str) -> Result<Option<(Record, u64)>, ApiError> {
        let entry = self.bucket.entry(key).await.map_err(unavailable)?;
        Ok(entry.and_then(|entry| {
            if entry.operation != kv::Operation::Put {
                return None;
            }
            let record = serde_json::from_slice(&entry.value).ok()?;
            Some((record, entry.revision))
        }))
    }

    /// Stores `record` under bucket key `key` if there is none; `None` when another
    /// request created it first.
    pub async fn create(&self, key: &str, record: &Record) -> Result<Option<u64>, ApiError> {
        match self.bucket.create(key, encode(record)).await {
            Ok(revision) => Ok(Some(revision)),
            Err(error) if error.kind() == kv::CreateErrorKind::AlreadyExists => Ok(None),
            Err(error) => Err(unavailable(error)),
        }
    }

    /// Creates the entry first (one round trip for a new key, the common case); only a
    /// key that exists is read.
    async fn claim(&self, key: &str) -> Result<Claim, ApiError> {
        // Two rounds: an entry that vanished between the create and the read (expired,
        // or deleted by a refusal on another replica) is created again.
        for _ in 0..2 {
            let event_id = lifeline_events::new_event_id();
            if let Some(revision) = self.create(key, &Record::Pending { event_id }).await? {
                return Ok(Claim::Run {
                    event_id,
                    maybe_published: false,
                    revision,
                });
            }
            match self.read(key).await? {
                Some((Record::Completed { status, body, .. }, _)) => {
                    let (status, body) = answer(status, body);
                    return Ok(Claim::Answered(status, body));
                }
                Some((Record::Pending { event_id }, revision)) => {
                    return Ok(Claim::Run {
                        event_id,
                        maybe_published: true,
                        revision,
                    });
                }
                None => {}
            }
        }
        Err(ApiError::Unavailable)
    }

    /// Stores the answer in the entry claimed at `revision`; the answer stored first when
    /// another replica stored one before (every retry gets that one, so this caller gets it
    /// too). The event is appended already, so the answer is worth waiting for: a failed
    /// write (the bucket's leader lost, the cluster electing another) is tried again for up
    /// to [`STORE_ANSWER_FOR`]. Without a stored answer a retry would find the event in
    /// the stream and answer again, with what the projections say then (a reservation the
    /// first answer did not yet have), not word for word the first answer.
    async fn store_answer(
        &self,
        key: &str,
        record: &Record,
        revision: u64,
    ) -> Option<(StatusCode, serde_json::Value)> {
        let deadline = tokio::time::Instant::now() + STORE_ANSWER_FOR;
        let mut pause = std::time::Duration::from_millis(50);
        loop {
            let error = match self.bucket.update(key, encode(record), revision).await {
                Ok(_) => return None,
                // Stored by another replica, or by this one when the acknowledgement of an
                // earlier try was lost: what the entry holds is the answer.
                Err(error) if error.kind() == kv::UpdateErrorKind::WrongLastRevision => {
                    match self.read(key).await {
                        Ok(Some((Record::Completed { status, body, .. }, _))) => {
                            return Some(answer(status, body));
                        }
                        Ok(_) => return None,
                        Err(error) => error.to_string(),
                    }
                }
                Err(error) => error.to_string(),
            };
            if tokio::time::Instant::now() + pause > deadline {
                // The entry still says pending, so a retry finds the event in the stream.
                tracing::warn!(%error, key, "idempotency answer not stored");
                return None;
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(std::time::Duration::from_secs(1));
        }
    }

    /// Runs `command` with the event id to use, once per (caller, key). Without a key every
    /// call runs with a fresh id. The flag tells the command that an earlier attempt with
    /// this id may have been published already (its acknowledgement was lost, or another
    /// replica is answering the same key right now): the command should then look for it
    /// in the stream before validating again.
    pub async fn run<F, Fut>(
        &self,
        caller: &str,
        key: Option<String>,
        command: F,
    ) -> Result<(StatusCode, serde_json::Value), ApiError>
    where
        F: FnOnce(Uuid, bool) -> Fut,
        Fut: std::future::Future<Output = Result<(StatusCode, serde_json::Value), ApiError>>,
    {
        let Some(key) = key else {
            return command(lifeline_events::new_event_id(), false).await;
        };
        let key = bucket_key(caller, &key);
        let _guard = self.locks[stripe(&key)].lock().await;
        let (event_id, maybe_published, revision) = match self.claim(&key).await? {
            Claim::Answered(status, body) => return Ok((status, body)),
            Claim::Run {
                event_id,
                maybe_published,
                revision,
            } => (event_id, maybe_published, revision),
        };
        match command(event_id, maybe_published).await {
            Ok((status, body)) => {
                let record = Record::Completed {
                    event_id,
                    status: status.as_u16(),
                    body: body.clone(),
                };
                match self.store_answer(&key, &record, revision).await {
                    Some(first) => Ok(first),
                    None => Ok((status, body)),
                }
            }
            // Maybe published: keep the id so the retry publishes the same one.
            Err(ApiError::Unavailable) => Err(ApiError::Unavailable),
            // Sent to a replica of another partition: the entry may be another replica's
            // attempt in flight (a retry that went astray), so it stays as it is, and the
            // retry at the right replica finds it and publishes the same id.
            Err(error @ ApiError::Misdirected { .. }) => Err(error),
            // Refused before anything was published: forget the key, so a corrected retry
            // may pass (unless another replica has moved the entry on meanwhile).
            Err(error) => {
                let _ = self
                    .bucket
                    .delete_expect_revision(&key, Some(revision))
                    .await;
                Err(error)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::bucket_key;

    #[test]
    fn bucket_keys_are_valid_and_never_shared() {
        let cases = [
            ("vol-tianlun-007", "retry-1", "vol-tianlun-007.retry-1"),
            ("dev-staff", "a.b", "dev-staff.a=2Eb"),
            ("dev-staff.a", "b", "dev-staff=2Ea.b"),
            ("x", "=/* >", "x.=3D=2F=2A=20=3E"),
        ];
        for (caller, key, expected) in cases {
            let made = bucket_key(caller, key);
            assert_eq!(made, expected);
            assert!(
                made.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_=.".contains(&b)),
                "{made}"
            );
        }
        assert_ne!(bucket_key("a.b", "c"), bucket_key("a", "b.c"));
    }
}
