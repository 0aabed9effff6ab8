//! Client retries: a command sent with an `Idempotency-Key` is carried out once. The first
//! answer is stored (RocksDB, under the caller's id and the key) and returned to every
//! retry; the event id is chosen once and stored before publishing, so a retry after a
//! crash or a timeout publishes the same id and JetStream drops the duplicate.

use std::sync::Arc;

use axum::http::{HeaderMap, StatusCode};
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;
use uuid::Uuid;

use crate::error::ApiError;
use lifeline_store::ProjectionStore;

pub const TABLE: &str = "idempotency";
const STRIPES: usize = 64;

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
enum Record {
    /// The id chosen for the event; the publish may or may not have happened.
    Pending { event_id: Uuid },
    Completed {
        event_id: Uuid,
        status: u16,
        body: serde_json::Value,
    },
}

/// The idempotency table and a lock per stripe of keys, so two concurrent requests with
/// the same key never both pick an id.
pub struct Idempotency {
    store: Arc<ProjectionStore>,
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

fn stripe(key: &str) -> usize {
    key.bytes().fold(0usize, |hash, byte| {
        hash.wrapping_mul(31).wrapping_add(usize::from(byte))
    }) % STRIPES
}

impl Idempotency {
    /// The RocksDB store behind it (readiness watches whether it can write).
    pub fn store(&self) -> Arc<ProjectionStore> {
        Arc::clone(&self.store)
    }

    pub fn new(store: Arc<ProjectionStore>) -> Self {
        Idempotency {
            store,
            locks: (0..STRIPES).map(|_| Mutex::new(())).collect(),
        }
    }

    async fn read(&self, key: &str) -> Result<Option<Record>, ApiError> {
        let store = Arc::clone(&self.store);
        let key = key.to_owned();
        Ok(
            tokio::task::spawn_blocking(move || store.get_json::<Record>(TABLE, &key))
                .await
                .map_err(|error| ApiError::Internal(error.to_string()))??,
        )
    }

    async fn write(&self, key: &str, record: Option<&Record>) -> Result<(), ApiError> {
        let store = Arc::clone(&self.store);
        let key = key.to_owned();
        let bytes = record.map(|record| serde_json::to_vec(record).expect("records serialize"));
        tokio::task::spawn_blocking(move || {
            let mut batch = store.batch();
            match bytes {
                Some(bytes) => batch.put(TABLE, &key, bytes),
                None => batch.delete(TABLE, &key),
            }
            batch.commit(0)
        })
        .await
        .map_err(|error| ApiError::Internal(error.to_string()))??;
        Ok(())
    }

    /// Runs `command` with the event id to use, once per (caller, key). Without a key every
    /// call runs with a fresh id. The flag tells the command that an earlier attempt with
    /// this id may have been published already (its acknowledgement was lost): the command
    /// should then look for it in the stream before validating again.
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
        let key = format!("{caller}/{key}");
        let _guard = self.locks[stripe(&key)].lock().await;
        let (event_id, maybe_published) = match self.read(&key).await? {
            Some(Record::Completed { status, body, .. }) => {
                let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
                return Ok((status, body));
            }
            Some(Record::Pending { event_id }) => (event_id, true),
            None => {
                let event_id = lifeline_events::new_event_id();
                self.write(&key, Some(&Record::Pending { event_id }))
                    .await?;
                (event_id, false)
            }
        };
        match command(event_id, maybe_published).await {
            Ok((status, body)) => {
                let record = Record::Completed {
                    event_id,
                    status: status.as_u16(),
                    body: body.clone(),
                };
                self.write(&key, Some(&record)).await?;
                Ok((status, body))
            }
            // Maybe published: keep the id so the retry publishes the same one.
            Err(ApiError::Unavailable) => Err(ApiError::Unavailable),
            // Refused before anything was published: forget the key, a corrected retry may pass.
            Err(error) => {
                self.write(&key, None).await?;
                Err(error)
            }
        }
    }
}
