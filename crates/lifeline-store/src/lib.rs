//! RocksDB projection store. One database directory per projection, one column family per
//! table plus `meta`, and one invariant: a batch of state changes and the stream position
//! they bring the projection to are written in ONE `WriteBatch`, so after a crash the state
//! and the position always agree and resuming from `position + 1` neither skips nor
//! re-applies an event.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use rocksdb::{DB, Direction, IteratorMode, ReadOptions, WriteBatch, WriteOptions};
use sha2::{Digest, Sha256};

mod tuning;

use tuning::open_db;

const META: &str = "meta";
const POSITION_KEY: &[u8] = b"position";

/// A store whose writes failed is reopened only once the filesystem has at least this much
/// free: reopening on a still-full disk would only fail again.
pub const RECOVERY_FREE_BYTES: u64 = 64 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database could not be opened: wrong path, held by another process, corrupt.
    #[error("cannot open projection store at {path}: {source}")]
    Open {
        path: PathBuf,
        source: rocksdb::Error,
    },
    /// A read or write failed; the batch was not committed and may be retried.
    #[error("projection store i/o failed: {0}")]
    Io(#[from] rocksdb::Error),
    #[error("unknown table {0}")]
    UnknownTable(String),
    #[error("corrupt position value")]
    CorruptPosition,
    /// A stored row that does not decode: a bug or a damaged disk, never bad input. It is
    /// reported to the caller (500, a failed scrape, a stopped consumer), never skipped.
    #[error("corrupt row {table}/{key}")]
    Corrupt {
        table: String,
        key: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("cannot swap projection directories")]
    Swap(#[source] std::io::Error),
    /// The data directory cannot be written (a read-only mount, wrong owner).
    #[error("the data directory {path} is not writable ({source}): check the mount and its owner")]
    NotWritable {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Writes failed (a full disk) and the store is closed until it can be reopened.
    #[error("projection store at {path} is closed after a write failure: {reason}")]
    Closed { path: PathBuf, reason: String },
}

impl StoreError {
    /// Whether retrying later may succeed (i/o, a full disk), as opposed to a bug or damage.
    pub fn is_transient(&self) -> bool {
        matches!(self, StoreError::Io(_) | StoreError::Closed { .. })
    }
}

/// Decodes one JSON row; the one policy for an unreadable row: [`StoreError::Corrupt`].
pub fn decode_row<T: serde::de::DeserializeOwned>(
    table: &str,
    key: &str,
    bytes: &[u8],
) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|source| StoreError::Corrupt {
        table: table.to_owned(),
        key: key.to_owned(),
        source,
    })
}

/// A projection's RocksDB database.
///
/// A write that fails (ENOSPC) leaves RocksDB refusing every later write until it is
/// reopened. The store remembers the failure ([`ProjectionStore::write_failure`], which
/// readiness and metrics read without touching the disk) and reopens itself at the next
/// write once the filesystem has [`RECOVERY_FREE_BYTES`] free; reads keep being served
/// from the open database meanwhile. A batch that failed was not written, state and
/// position together, so the consumer applies it again.
pub struct ProjectionStore {
    db: RwLock<Option<Arc<DB>>>,
    path: PathBuf,
    tables: Vec<&'static str>,
    failure: Mutex<Option<String>>,
}

impl std::fmt::Debug for ProjectionStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProjectionStore")
            .field("path", &self.path)
            .finish()
    }
}

/// Read options for a walk of the keys starting with `prefix`: the iterator stops at the
/// first key past them by itself. Without the bound, RocksDB steps over every deleted key
/// after the prefix looking for a live one, so a scan of an emptied queue (the shortfall
/// line of an item that is in stock again) read through every row ever deleted after it.
fn bounded_by(prefix: &str) -> ReadOptions {
    let mut options = ReadOptions::default();
    let mut bound = prefix.as_bytes().to_vec();
    while let Some(last) = bound.pop() {
        if last < u8::MAX {
            bound.push(last + 1);
            options.set_iterate_upper_bound(bound);
            break;
        }
    }
    options
}

fn cf<'a>(db: &'a DB, table: &str) -> Result<&'a rocksdb::ColumnFamily, StoreError> {
    db.cf_handle(table)
        .ok_or_else(|| StoreError::UnknownTable(table.to_owned()))
}

/// Free bytes for an unprivileged writer on the filesystem holding `path`.
fn free_bytes(path: &Path) -> Option<u64> {
    let stats = rustix::fs::statvfs(path).ok()?;
    Some(stats.f_bavail.saturating_mul(stats.f_frsize))
}

/// Fails with `NotWritable` when nothing can be created in `path` (creating it if needed),
/// so a read-only data directory is named as such, not as a RocksDB lock error.
fn check_writable(path: &Path) -> Result<(), StoreError> {
    let not_writable = |source| StoreError::NotWritable {
        path: path.to_owned(),
        source,
    };
    std::fs::create_dir_all(path).map_err(not_writable)?;
    let probe = path.join(".lifeline-write-probe");
    std::fs::write(&probe, b"ok").map_err(not_writable)?;
    std::fs::remove_file(&probe).map_err(not_writable)
}

impl ProjectionStore {
    /// Opens (creating if needed) the store with one column family per table.
    pub fn open(path: &Path, tables: &[&'static str]) -> Result<Self, StoreError> {
        check_writable(path)?;
        let db = open_db(path, tables)?;
        Ok(ProjectionStore {
            db: RwLock::new(Some(Arc::new(db))),
            path: path.to_owned(),
            tables: tables.to_vec(),
            failure: Mutex::new(None),
        })
    }

    fn db(&self) -> Result<Arc<DB>, StoreError> {
        self.db
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .ok_or_else(|| StoreError::Closed {
                path: self.path.clone(),
                reason: self.write_failure().unwrap_or_default(),
            })
    }

    /// Why the last write failed, while the store has not written since: readiness is off.
    pub fn write_failure(&self) -> Option<String> {
        self.failure
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn set_failure(&self, failure: Option<String>) {
        *self.failure.lock().unwrap_or_else(PoisonError::into_inner) = failure;
    }

    /// Reopens the database after a write failure, once the disk has room again. Readers
    /// holding the old database finish first (they are short); until the reopen succeeds
    /// reads answer `Closed`.
    fn reopen(&self) -> Result<(), StoreError> {
        let reason = self.write_failure().unwrap_or_default();
        if free_bytes(&self.path).is_some_and(|free| free < RECOVERY_FREE_BYTES) {
            return Err(StoreError::Closed {
                path: self.path.clone(),
                reason,
            });
        }
        let mut slot = self.db.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(mut old) = slot.take() {
            let mut waited = Duration::ZERO;
            loop {
                match Arc::try_unwrap(old) {
                    Ok(db) => {
                        drop(db);
                        break;
                    }
                    Err(shared) if waited < Duration::from_secs(5) => {
                        old = shared;
                        std::thread::sleep(Duration::from_millis(10));
                        waited += Duration::from_millis(10);
                    }
                    Err(shared) => {
                        *slot = Some(shared);
                        return Err(StoreError::Closed {
                            path: self.path.clone(),
                            reason,
                        });
                    }
                }
            }
        }
        let db = open_db(&self.path, &self.tables)?;
        *slot = Some(Arc::new(db));
        tracing::info!(path = %self.path.display(), "projection store reopened after a write failure");
        Ok(())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The stream sequence of the last event applied; 0 when none.
    pub fn position(&self) -> Result<u64, StoreError> {
        let db = self.db()?;
        match db.get_cf(cf(&db, META)?, POSITION_KEY)? {
            None => Ok(0),
            Some(bytes) => {
                let array: [u8; 8] = bytes
                    .as_slice()
                    .try_into()
                    .map_err(|_| StoreError::CorruptPosition)?;
                Ok(u64::from_be_bytes(array))
            }
        }
    }

    /// A value of the store's own `meta` table (what the store was built for, say).
    pub fn meta(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let db = self.db()?;
        Ok(db.get_cf(cf(&db, META)?, key.as_bytes())?)
    }

    /// Sets a `meta` value (not the position, which only [`Self::commit`] writes).
    pub fn set_meta(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        let db = self.db()?;
        Ok(db.put_cf(cf(&db, META)?, key.as_bytes(), value)?)
    }

    /// A JSON row, decoded: `Corrupt` when it does not decode.
    pub fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        table: &str,
        key: &str,
    ) -> Result<Option<T>, StoreError> {
        match self.get(table, key)? {
            Some(bytes) => decode_row(table, key, &bytes).map(Some),
            None => Ok(None),
        }
    }

    pub fn get(&self, table: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let db = self.db()?;
        Ok(db.get_cf(cf(&db, table)?, key.as_bytes())?)
    }

    /// Every row of `table` whose key starts with `prefix`, in key order.
    pub fn scan_prefix(
        &self,
        table: &str,
        prefix: &str,
    ) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let mut rows = Vec::new();
        let db = self.db()?;
        let iterator = db.iterator_cf_opt(
            cf(&db, table)?,
            bounded_by(prefix),
            IteratorMode::From(prefix.as_bytes(), Direction::Forward),
        );
        for entry in iterator {
            let (key, value) = entry?;
            if !key.starts_with(prefix.as_bytes()) {
                break;
            }
            rows.push((String::from_utf8_lossy(&key).into_owned(), value.into_vec()));
        }
        Ok(rows)
    }

    /// At most `limit` rows of `table` whose key starts with `prefix` and is not below
    /// `from`, in key order: a bounded walk of a long prefix (a queue), one window at a time.
    pub fn scan_prefix_from(
        &self,
        table: &str,
        prefix: &str,
        from: &str,
        limit: usize,
    ) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let mut rows = Vec::new();
        let db = self.db()?;
        let start = if from > prefix { from } else { prefix };
        let iterator = db.iterator_cf_opt(
            cf(&db, table)?,
            bounded_by(prefix),
            IteratorMode::From(start.as_bytes(), Direction::Forward),
        );
        for entry in iterator.take(limit) {
            let (key, value) = entry?;
            if !key.starts_with(prefix.as_bytes()) {
                break;
            }
            rows.push((String::from_utf8_lossy(&key).into_owned(), value.into_vec()));
        }
        Ok(rows)
    }

    /// Every row of `table` with `from <= key < to`, in key order.
    pub fn scan_range(
        &self,
        table: &str,
        from: &str,
        to: &str,
    ) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let mut rows = Vec::new();
        let db = self.db()?;
        let iterator = db.iterator_cf(
            cf(&db, table)?,
            IteratorMode::From(from.as_bytes(), Direction::Forward),
        );
        for entry in iterator {
            let (key, value) = entry?;
            if key.as_ref() >= to.as_bytes() {
                break;
            }
            rows.push((String::from_utf8_lossy(&key).into_owned(), value.into_vec()));
        }
        Ok(rows)
    }

    /// The first key of `table` that starts with `prefix`, if any.
    pub fn first_with_prefix(
        &self,
        table: &str,
        prefix: &str,
    ) -> Result<Option<String>, StoreError> {
        let db = self.db()?;
        let mut iterator = db.iterator_cf(
            cf(&db, table)?,
            IteratorMode::From(prefix.as_bytes(), Direction::Forward),
        );
        match iterator.next() {
            Some(entry) => {
                let (key, _) = entry?;
                Ok(key
                    .starts_with(prefix.as_bytes())
                    .then(|| String::from_utf8_lossy(&key).into_owned()))
            }
            None => Ok(None),
        }
    }

    /// A write set over this store with read-your-writes. Nothing reaches disk until
    /// [`Batch::commit`].
    pub fn batch(&self) -> Batch<'_> {
        Batch {
            store: self,
            writes: BTreeMap::new(),
        }
    }

    /// SHA-256 over every key and value of every table and the position, in order: two
    /// stores with equal digests hold the same projection.
    pub fn digest(&self) -> Result<String, StoreError> {
        let mut hasher = Sha256::new();
        let mut names: Vec<&str> = self.tables.clone();
        names.sort_unstable();
        names.push(META);
        let db = self.db()?;
        for name in names {
            hasher.update((name.len() as u64).to_be_bytes());
            hasher.update(name.as_bytes());
            for entry in db.iterator_cf(cf(&db, name)?, IteratorMode::Start) {
                let (key, value) = entry?;
                hasher.update((key.len() as u64).to_be_bytes());
                hasher.update(&key);
                hasher.update((value.len() as u64).to_be_bytes());
                hasher.update(&value);
            }
        }
        Ok(hasher
            .finalize()
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect())
    }
}

/// Writes keyed by table and key; `None` deletes.
pub type WriteSet = BTreeMap<(&'static str, String), Option<Vec<u8>>>;

/// Rows as `(key, value)`, in key order.
pub type Rows = Vec<(String, Vec<u8>)>;

/// Pending writes of one consumer batch.
pub struct Batch<'a> {
    store: &'a ProjectionStore,
    writes: WriteSet,
}

impl Batch<'_> {
    pub fn get(&self, table: &'static str, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        match self.writes.get(&(table, key.to_owned())) {
            Some(value) => Ok(value.clone()),
            None => self.store.get(table, key),
        }
    }

    pub fn put(&mut self, table: &'static str, key: &str, value: Vec<u8>) {
        self.writes.insert((table, key.to_owned()), Some(value));
    }

    pub fn delete(&mut self, table: &'static str, key: &str) {
        self.writes.insert((table, key.to_owned()), None);
    }

    /// The stored rows of `table` under `prefix` (in key order) and this batch's writes.
    pub fn scan_prefix(
        &self,
        table: &'static str,
        prefix: &str,
    ) -> Result<(Rows, &WriteSet), StoreError> {
        Ok((self.store.scan_prefix(table, prefix)?, &self.writes))
    }

    /// [`ProjectionStore::scan_prefix_from`] of the stored rows, and this batch's writes.
    pub fn scan_prefix_from(
        &self,
        table: &'static str,
        prefix: &str,
        from: &str,
        limit: usize,
    ) -> Result<(Rows, &WriteSet), StoreError> {
        let rows = self.store.scan_prefix_from(table, prefix, from, limit)?;
        Ok((rows, &self.writes))
    }

    /// This batch's writes so far.
    pub fn writes(&self) -> &WriteSet {
        &self.writes
    }

    pub fn len(&self) -> usize {
        self.writes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.writes.is_empty()
    }

    /// The pending changes, to commit later with [`ProjectionStore::commit`].
    pub fn into_writes(self) -> Writes {
        Writes(self.writes)
    }

    pub fn commit(self, position: u64) -> Result<(), StoreError> {
        let store = self.store;
        store.commit(self.into_writes(), position)
    }
}

/// Changes taken out of a [`Batch`], not yet written.
#[derive(Debug, Default)]
pub struct Writes(BTreeMap<(&'static str, String), Option<Vec<u8>>>);

impl Writes {
    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl ProjectionStore {
    /// Writes every change and the new position in one `WriteBatch`. Not fsynced: a power
    /// loss may lose the last batches, but state and position are lost together, and the
    /// consumer applies them again from the stream.
    ///
    /// After a write failure the store first reopens itself (when the disk has room); a
    /// failure is remembered until a write succeeds.
    pub fn commit(&self, writes: Writes, position: u64) -> Result<(), StoreError> {
        if self.write_failure().is_some() {
            self.reopen()?;
        }
        let db = self.db()?;
        let mut batch = WriteBatch::default();
        for ((table, key), value) in &writes.0 {
            let cf = cf(&db, table)?;
            match value {
                Some(value) => batch.put_cf(cf, key.as_bytes(), value),
                None => batch.delete_cf(cf, key.as_bytes()),
            }
        }
        batch.put_cf(cf(&db, META)?, POSITION_KEY, position.to_be_bytes());
        match db.write_opt(batch, &WriteOptions::default()) {
            Ok(()) => {
                if self.write_failure().is_some() {
                    tracing::info!(path = %self.path.display(), "projection store writes again");
                    self.set_failure(None);
                }
                Ok(())
            }
            Err(error) => {
                tracing::error!(path = %self.path.display(), %error, "projection store write failed; readiness is off until a write succeeds");
                self.set_failure(Some(error.to_string()));
                Err(error.into())
            }
        }
    }
}

/// Replaces the projection directory `live` with `fresh`: `live` is renamed aside, `fresh`
/// takes its place, the old one is removed. Both stores must be closed.
pub fn swap_in(fresh: &Path, live: &Path) -> Result<(), StoreError> {
    let aside = live.with_extension("old");
    if aside.exists() {
        std::fs::remove_dir_all(&aside).map_err(StoreError::Swap)?;
    }
    if live.exists() {
        std::fs::rename(live, &aside).map_err(StoreError::Swap)?;
    }
    std::fs::rename(fresh, live).map_err(StoreError::Swap)?;
    if aside.exists() {
        std::fs::remove_dir_all(&aside).map_err(StoreError::Swap)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_commits_state_and_position_together() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = ProjectionStore::open(dir.path(), &["t"]).expect("open");
        assert_eq!(store.position().expect("position"), 0);
        let mut batch = store.batch();
        batch.put("t", "a", b"1".to_vec());
        assert_eq!(batch.get("t", "a").expect("get"), Some(b"1".to_vec()));
        assert_eq!(
            store.get("t", "a").expect("get"),
            None,
            "nothing visible before commit"
        );
        batch.commit(7).expect("commit");
        assert_eq!(store.position().expect("position"), 7);
        assert_eq!(store.get("t", "a").expect("get"), Some(b"1".to_vec()));
        let before = store.digest().expect("digest");
        let mut batch = store.batch();
        batch.delete("t", "a");
        batch.commit(8).expect("commit");
        assert_ne!(store.digest().expect("digest"), before);
        assert_eq!(store.scan_prefix("t", "").expect("scan"), vec![]);
    }
}
