//! The projection store as the handlers and the command side see it: a batch with its
//! writes overlaid ([`StoreTx`]) and read-only access ([`StoreState`]).

use lifeline_domain::StateTx;
use lifeline_store::{Batch, ProjectionStore, StoreError};

/// A projection store as the command side reads it (see `lifeline_domain::command::Views`).
/// Every call reads RocksDB: call it off the async runtime (`spawn_blocking`).
#[derive(Debug, Clone, Copy)]
pub struct StoreState<'a>(pub &'a ProjectionStore);

impl lifeline_domain::command::ReadState for StoreState<'_> {
    fn read(
        &self,
        table: &'static str,
        key: &str,
    ) -> Result<Option<Vec<u8>>, lifeline_domain::command::ReadError> {
        self.0
            .get(table, key)
            .map_err(|error| lifeline_domain::command::ReadError {
                table,
                source: Box::new(error),
            })
    }

    fn any_with_prefix(
        &self,
        table: &'static str,
        prefix: &str,
    ) -> Result<bool, lifeline_domain::command::ReadError> {
        self.0
            .first_with_prefix(table, prefix)
            .map(|key| key.is_some())
            .map_err(|error| lifeline_domain::command::ReadError {
                table,
                source: Box::new(error),
            })
    }

    fn scan(
        &self,
        table: &'static str,
        prefix: &str,
        limit: usize,
    ) -> Result<Vec<(String, Vec<u8>)>, lifeline_domain::command::ReadError> {
        self.0
            .scan_prefix_from(table, prefix, prefix, limit)
            .map_err(|error| lifeline_domain::command::ReadError {
                table,
                source: Box::new(error),
            })
    }
}

/// Adapts a store batch to the handler's state interface. A read error is remembered and
/// fails the whole batch afterwards (the handler never sees it as missing data).
pub(crate) struct StoreTx<'a> {
    pub(crate) batch: Batch<'a>,
    pub(crate) error: std::cell::RefCell<Option<StoreError>>,
}

impl StateTx for StoreTx<'_> {
    fn get(&self, table: &'static str, key: &str) -> Option<Vec<u8>> {
        match self.batch.get(table, key) {
            Ok(value) => value,
            Err(error) => {
                self.error.borrow_mut().get_or_insert(error);
                None
            }
        }
    }

    fn put(&mut self, table: &'static str, key: &str, value: Vec<u8>) {
        self.batch.put(table, key, value);
    }

    fn delete(&mut self, table: &'static str, key: &str) {
        self.batch.delete(table, key);
    }

    fn scan_prefix(&self, table: &'static str, prefix: &str) -> Vec<(String, Vec<u8>)> {
        match self.batch.scan_prefix(table, prefix) {
            Ok((rows, writes)) => lifeline_domain::overlay_prefix(rows, writes, table, prefix),
            Err(error) => {
                self.error.borrow_mut().get_or_insert(error);
                Vec::new()
            }
        }
    }

    fn scan_prefix_from(
        &self,
        table: &'static str,
        prefix: &str,
        from: &str,
        limit: usize,
    ) -> Vec<(String, Vec<u8>)> {
        let fetch = lifeline_domain::window_fetch(self.batch.writes(), table, prefix, from, limit);
        match self.batch.scan_prefix_from(table, prefix, from, fetch) {
            Ok((rows, writes)) => {
                lifeline_domain::overlay_window(rows, writes, table, prefix, from, limit)
            }
            Err(error) => {
                self.error.borrow_mut().get_or_insert(error);
                Vec::new()
            }
        }
    }
}
