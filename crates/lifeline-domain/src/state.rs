//! The state interface handlers see: keyed JSON rows in named tables.

use std::collections::BTreeMap;

use serde::Serialize;
use serde::de::DeserializeOwned;

/// Why an event is parked: the dead-letter reason and the metric label, one closed set.
/// The wire names (serde's) are what operators see; docs/events.md lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// Not a JSON event envelope.
    Undecodable,
    /// A `type` lifeline does not know.
    UnknownType,
    /// A payload that does not fit its type.
    InvalidPayload,
    /// Published on a subject its content does not belong on.
    SubjectMismatch,
    /// A stored row that does not decode: a bug, parked rather than crashing.
    CorruptState,
    UnknownOrder,
    DuplicateOrder,
    UnknownRun,
    DuplicateRun,
    /// A step the order or run state machine does not allow.
    ImpossibleTransition,
    InvalidPick,
    WrongPartner,
    InsufficientStock,
    StockBelowReserved,
    InvalidRegistration,
    /// A campaign some household of its scope cannot take (its lines break a rule).
    InvalidCampaign,
    DuplicateCampaign,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        lifeline_events::wire_name(&self)
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<&lifeline_events::DecodeError> for Reason {
    fn from(error: &lifeline_events::DecodeError) -> Self {
        match error {
            lifeline_events::DecodeError::Undecodable(_) => Reason::Undecodable,
            lifeline_events::DecodeError::UnknownType(_) => Reason::UnknownType,
            lifeline_events::DecodeError::InvalidPayload { .. } => Reason::InvalidPayload,
        }
    }
}

/// Why an event cannot be applied: which rule ([`Reason`]), and `detail`, what exactly
/// was wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}: {detail}")]
pub struct Rejection {
    pub reason: Reason,
    pub detail: String,
}

impl Rejection {
    pub fn new(reason: Reason, detail: impl Into<String>) -> Self {
        Rejection {
            reason,
            detail: detail.into(),
        }
    }
}

/// Read-your-writes access to a projection's tables for the duration of one event.
pub trait StateTx {
    fn get(&self, table: &'static str, key: &str) -> Option<Vec<u8>>;
    fn put(&mut self, table: &'static str, key: &str, value: Vec<u8>);
    fn delete(&mut self, table: &'static str, key: &str);
    /// Every row of `table` whose key starts with `prefix`, in key order, this event's own
    /// writes included. For bounded sets (a community's households), not whole tables.
    fn scan_prefix(&self, table: &'static str, prefix: &str) -> Vec<(String, Vec<u8>)>;
    /// At most `limit` rows of `table` under `prefix` whose key is not below `from`, in key
    /// order, this event's own writes included: one window of a long prefix (a building's
    /// queue), so the cost of a read does not grow with what waits behind it.
    fn scan_prefix_from(
        &self,
        table: &'static str,
        prefix: &str,
        from: &str,
        limit: usize,
    ) -> Vec<(String, Vec<u8>)>;
}

/// The pending writes of `table` under `prefix` from `from` on.
fn writes_from<'w>(
    writes: &'w BTreeMap<(&'static str, String), Option<Vec<u8>>>,
    table: &'static str,
    prefix: &str,
    from: &str,
) -> impl Iterator<Item = (&'w String, &'w Option<Vec<u8>>)> {
    let start = if from > prefix { from } else { prefix };
    writes
        .range((table, start.to_owned())..)
        .take_while(move |((t, key), _)| *t == table && key.starts_with(prefix))
        .map(|((_, key), value)| (key, value))
}

/// How many stored rows a window of `limit` must fetch so that the deletes pending in it
/// still leave `limit` (see [`overlay_window`]).
pub fn window_fetch(
    writes: &BTreeMap<(&'static str, String), Option<Vec<u8>>>,
    table: &'static str,
    prefix: &str,
    from: &str,
    limit: usize,
) -> usize {
    let deletes = writes_from(writes, table, prefix, from)
        .filter(|(_, value)| value.is_none())
        .count();
    limit.saturating_add(deletes)
}

/// The first `limit` rows of a window: `rows` (the first [`window_fetch`] stored rows from
/// `from`, in key order) with `writes` laid over them. Any stored row past those fetched
/// sorts after every fetched one still standing, and at least `limit` of them stand.
pub fn overlay_window(
    rows: Vec<(String, Vec<u8>)>,
    writes: &BTreeMap<(&'static str, String), Option<Vec<u8>>>,
    table: &'static str,
    prefix: &str,
    from: &str,
    limit: usize,
) -> Vec<(String, Vec<u8>)> {
    let mut merged: BTreeMap<String, Vec<u8>> = rows.into_iter().collect();
    for (key, value) in writes_from(writes, table, prefix, from) {
        match value {
            Some(value) => merged.insert(key.clone(), value.clone()),
            None => merged.remove(key),
        };
    }
    merged.into_iter().take(limit).collect()
}

/// `rows` (in key order) with `writes` laid over them, restricted to `prefix`.
pub fn overlay_prefix(
    rows: Vec<(String, Vec<u8>)>,
    writes: &BTreeMap<(&'static str, String), Option<Vec<u8>>>,
    table: &'static str,
    prefix: &str,
) -> Vec<(String, Vec<u8>)> {
    let mut merged: BTreeMap<String, Vec<u8>> = rows.into_iter().collect();
    for ((_, key), value) in writes
        .range((table, prefix.to_owned())..)
        .take_while(|((t, key), _)| *t == table && key.starts_with(prefix))
    {
        match value {
            Some(value) => merged.insert(key.clone(), value.clone()),
            None => merged.remove(key),
        };
    }
    merged.into_iter().collect()
}

/// Typed JSON helpers on top of [`StateTx`].
pub trait StateTxExt: StateTx {
    /// A stored row that does not decode is a bug in this crate, not bad input: it is
    /// reported as a rejection so the event is parked rather than the process crashing.
    fn get_json<T: DeserializeOwned>(
        &self,
        table: &'static str,
        key: &str,
    ) -> Result<Option<T>, Rejection> {
        match self.get(table, key) {
            None => Ok(None),
            Some(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|error| {
                Rejection::new(Reason::CorruptState, format!("{table}/{key}: {error}"))
            }),
        }
    }

    fn put_json<T: Serialize>(&mut self, table: &'static str, key: &str, value: &T) {
        let bytes = serde_json::to_vec(value).expect("state rows serialize to json");
        self.put(table, key, bytes);
    }
}

impl<T: StateTx + ?Sized> StateTxExt for T {}

/// An in-memory state, for tests and for property checks of the pure rules.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemoryState {
    pub rows: BTreeMap<(String, String), Vec<u8>>,
}

impl StateTx for MemoryState {
    fn get(&self, table: &'static str, key: &str) -> Option<Vec<u8>> {
        self.rows.get(&(table.to_owned(), key.to_owned())).cloned()
    }

    fn put(&mut self, table: &'static str, key: &str, value: Vec<u8>) {
        self.rows.insert((table.to_owned(), key.to_owned()), value);
    }

    fn delete(&mut self, table: &'static str, key: &str) {
        self.rows.remove(&(table.to_owned(), key.to_owned()));
    }

    fn scan_prefix(&self, table: &'static str, prefix: &str) -> Vec<(String, Vec<u8>)> {
        self.rows
            .range((table.to_owned(), prefix.to_owned())..)
            .take_while(|((t, key), _)| t == table && key.starts_with(prefix))
            .map(|((_, key), value)| (key.clone(), value.clone()))
            .collect()
    }

    fn scan_prefix_from(
        &self,
        table: &'static str,
        prefix: &str,
        from: &str,
        limit: usize,
    ) -> Vec<(String, Vec<u8>)> {
        let start = if from > prefix { from } else { prefix };
        self.rows
            .range((table.to_owned(), start.to_owned())..)
            .take_while(|((t, key), _)| t == table && key.starts_with(prefix))
            .take(limit)
            .map(|((_, key), value)| (key.clone(), value.clone()))
            .collect()
    }
}

/// A write layer over another state: reads fall through, writes stay here until
/// [`Savepoint::into_writes`]. The driver uses one per event so a rejected event leaves no
/// trace.
pub struct Savepoint<'a> {
    base: &'a dyn StateTx,
    pub writes: BTreeMap<(&'static str, String), Option<Vec<u8>>>,
}

impl<'a> Savepoint<'a> {
    pub fn new(base: &'a dyn StateTx) -> Self {
        Savepoint {
            base,
            writes: BTreeMap::new(),
        }
    }
}

impl StateTx for Savepoint<'_> {
    fn get(&self, table: &'static str, key: &str) -> Option<Vec<u8>> {
        match self.writes.get(&(table, key.to_owned())) {
            Some(value) => value.clone(),
            None => self.base.get(table, key),
        }
    }

    fn put(&mut self, table: &'static str, key: &str, value: Vec<u8>) {
        self.writes.insert((table, key.to_owned()), Some(value));
    }

    fn delete(&mut self, table: &'static str, key: &str) {
        self.writes.insert((table, key.to_owned()), None);
    }

    fn scan_prefix(&self, table: &'static str, prefix: &str) -> Vec<(String, Vec<u8>)> {
        overlay_prefix(
            self.base.scan_prefix(table, prefix),
            &self.writes,
            table,
            prefix,
        )
    }

    fn scan_prefix_from(
        &self,
        table: &'static str,
        prefix: &str,
        from: &str,
        limit: usize,
    ) -> Vec<(String, Vec<u8>)> {
        let fetch = window_fetch(&self.writes, table, prefix, from, limit);
        let rows = self.base.scan_prefix_from(table, prefix, from, fetch);
        overlay_window(rows, &self.writes, table, prefix, from, limit)
    }
}

/// Applies one event to `state` all-or-nothing: on rejection neither writes nor emits stay.
pub fn apply_atomically<S: StateTx>(
    handler: &dyn crate::Handler,
    state: &mut S,
    envelope: &lifeline_events::Envelope,
    emit: &mut Vec<lifeline_events::Envelope>,
) -> Result<crate::Applied, Rejection> {
    let mut emitted = Vec::new();
    let applied = atomically(state, |savepoint| {
        handler.apply(savepoint, envelope, &mut emitted)
    })?;
    emit.extend(emitted);
    Ok(applied)
}

/// [`apply_atomically`] for a replay: the handler's [`crate::Handler::replay`], nothing
/// emitted.
pub fn replay_atomically<S: StateTx>(
    handler: &dyn crate::Handler,
    state: &mut S,
    envelope: &lifeline_events::Envelope,
) -> Result<crate::Applied, Rejection> {
    atomically(state, |savepoint| handler.replay(savepoint, envelope))
}

fn atomically<S: StateTx>(
    state: &mut S,
    change: impl FnOnce(&mut Savepoint<'_>) -> Result<crate::Applied, Rejection>,
) -> Result<crate::Applied, Rejection> {
    let mut savepoint = Savepoint::new(state);
    let applied = change(&mut savepoint)?;
    let writes = std::mem::take(&mut savepoint.writes);
    for ((table, key), value) in writes {
        match value {
            Some(value) => state.put(table, &key, value),
            None => state.delete(table, &key),
        }
    }
    Ok(applied)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A window read through a savepoint equals the same window of the merged rows, for
    /// any stored rows, any pending writes and any window.
    fn window_through_savepoint_equals_merged(
        stored: BTreeMap<u8, u8>,
        writes: BTreeMap<u8, Option<u8>>,
        from: u8,
        limit: usize,
    ) {
        let key = |k: u8| format!("q/{k:03}");
        let mut base = MemoryState::default();
        for (k, v) in &stored {
            base.put("t", &key(*k), vec![*v]);
        }
        base.put("t", "other", vec![0]);
        let mut merged = base.clone();
        let mut savepoint = Savepoint::new(&base);
        for (k, v) in &writes {
            match v {
                Some(v) => {
                    savepoint.put("t", &key(*k), vec![*v]);
                    merged.put("t", &key(*k), vec![*v]);
                }
                None => {
                    savepoint.delete("t", &key(*k));
                    merged.delete("t", &key(*k));
                }
            }
        }
        let from = key(from);
        let expected: Vec<_> = merged
            .scan_prefix("t", "q/")
            .into_iter()
            .filter(|(k, _)| *k >= from)
            .take(limit)
            .collect();
        assert_eq!(
            savepoint.scan_prefix_from("t", "q/", &from, limit),
            expected
        );
        assert_eq!(merged.scan_prefix_from("t", "q/", &from, limit), expected);
    }

    proptest! {
        #[test]
        fn a_window_sees_the_events_own_writes(
            stored in proptest::collection::btree_map(0u8..40, any::<u8>(), 0..30),
            writes in proptest::collection::btree_map(0u8..40, proptest::option::of(any::<u8>()), 0..20),
            from in 0u8..45,
            limit in 0usize..12,
        ) {
            window_through_savepoint_equals_merged(stored, writes, from, limit);
        }
    }
}
