//! RocksDB projection store. One database directory per projection, one column family per
//! table plus `meta`, and one invariant: a batch of state changes and the stream position
//! they bring the projection to are written in ONE `WriteBatch`, so after a crash the state
//! and the position always agree and resuming from `position + 1` neither skips nor
//! re-applies an event.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rocksdb::{
    ColumnFamilyDescriptor, DB, Direction, IteratorMode, Options, WriteBatch, WriteOptions,
};
use sha2::{Digest, Sha256};

const META: &str = "meta";
const POSITION_KEY: &[u8] = b"position";

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
pub struct ProjectionStore {
    db: DB,
    path: PathBuf,
    tables: Vec<&'static str>,
}

impl std::fmt::Debug for ProjectionStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProjectionStore")
            .field("path", &self.path)
            .finish()
    }
}

impl ProjectionStore {
    /// Opens (creating if needed) the store with one column family per table.
    pub fn open(path: &Path, tables: &[&'static str]) -> Result<Self, StoreError> {
        let mut options = Options::default();
        options.create_if_missing(true);
        options.create_missing_column_families(true);
        options.set_compression_type(rocksdb::DBCompressionType::Lz4);
        options.increase_parallelism(2);
        let descriptors = tables
            .iter()
            .chain(std::iter::once(&META))
            .map(|name| ColumnFamilyDescriptor::new(*name, Options::default()));
        let db = DB::open_cf_descriptors(&options, path, descriptors).map_err(|source| {
            StoreError::Open {
                path: path.to_owned(),
                source,
            }
        })?;
        Ok(ProjectionStore {
            db,
            path: path.to_owned(),
            tables: tables.to_vec(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn cf(&self, table: &str) -> Result<&rocksdb::ColumnFamily, StoreError> {
        self.db
            .cf_handle(table)
            .ok_or_else(|| StoreError::UnknownTable(table.to_owned()))
    }

    /// The stream sequence of the last event applied; 0 when none.
    pub fn position(&self) -> Result<u64, StoreError> {
        match self.db.get_cf(self.cf(META)?, POSITION_KEY)? {
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
        Ok(self.db.get_cf(self.cf(table)?, key.as_bytes())?)
    }

    /// Every row of `table` whose key starts with `prefix`, in key order.
    pub fn scan_prefix(
        &self,
        table: &str,
        prefix: &str,
    ) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let mut rows = Vec::new();
        let iterator = self.db.iterator_cf(
            self.cf(table)?,
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

    /// Every row of `table` with `from <= key < to`, in key order.
    pub fn scan_range(
        &self,
        table: &str,
        from: &str,
        to: &str,
    ) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let mut rows = Vec::new();
        let iterator = self.db.iterator_cf(
            self.cf(table)?,
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
        let mut iterator = self.db.iterator_cf(
            self.cf(table)?,
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
        for name in names {
            hasher.update((name.len() as u64).to_be_bytes());
            hasher.update(name.as_bytes());
            for entry in self.db.iterator_cf(self.cf(name)?, IteratorMode::Start) {
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
    pub fn commit(&self, writes: Writes, position: u64) -> Result<(), StoreError> {
        let mut batch = WriteBatch::default();
        for ((table, key), value) in &writes.0 {
            let cf = self.cf(table)?;
            match value {
                Some(value) => batch.put_cf(cf, key.as_bytes(), value),
                None => batch.delete_cf(cf, key.as_bytes()),
            }
        }
        batch.put_cf(self.cf(META)?, POSITION_KEY, position.to_be_bytes());
        self.db.write_opt(batch, &WriteOptions::default())?;
        Ok(())
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
