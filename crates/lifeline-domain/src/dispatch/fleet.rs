//! A community's tricycles as dispatch keeps them: one row per tricycle (its capacity and
//! the run it is on) and, for each free one, a row in the free index, sorted the way the
//! planner takes them (largest first, ties by id). So the planner reads only the free
//! tricycles it loads, and an event costs the same with a fleet of 15 or of 1,500 (the
//! fleet used to be part of the community's row, read and written whole by every event
//! that touched the community).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{FLEET, FREE_TRICYCLES, Tricycle};
use crate::{Reason, Rejection, StateTx, StateTxExt};

/// A free tricycle's row in the index: what the planner needs, without a second read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Free {
    tricycle: String,
    capacity_g: u32,
}

fn prefix(community: &str) -> String {
    format!("{community}/")
}

fn fleet_key(community: &str, tricycle: &str) -> String {
    format!("{community}/{tricycle}")
}

/// `community/` + the capacity inverted (so larger sorts first) + `/` + the tricycle.
fn free_key(community: &str, tricycle: &str, capacity_g: u32) -> String {
    format!("{community}/{:010}/{tricycle}", u32::MAX - capacity_g)
}

pub(super) fn load(
    state: &dyn StateTx,
    community: &str,
    tricycle: &str,
) -> Result<Option<Tricycle>, Rejection> {
    state.get_json(FLEET, &fleet_key(community, tricycle))
}

/// Writes a tricycle's row and keeps the free index in step with it (`before` is the row
/// as it was, if any).
pub(super) fn save(
    state: &mut dyn StateTx,
    community: &str,
    tricycle: &str,
    before: Option<&Tricycle>,
    now: &Tricycle,
) {
    if let Some(before) = before.filter(|before| before.run.is_none()) {
        state.delete(
            FREE_TRICYCLES,
            &free_key(community, tricycle, before.capacity_g),
        );
    }
    if now.run.is_none() {
        let free = Free {
            tricycle: tricycle.to_owned(),
            capacity_g: now.capacity_g,
        };
        state.put_json(
            FREE_TRICYCLES,
            &free_key(community, tricycle, now.capacity_g),
            &free,
        );
    }
    state.put_json(FLEET, &fleet_key(community, tricycle), now);
}

/// Moves a fleet kept in the community's row (written before the fleet had rows of its
/// own) into rows; nothing when the row had none.
pub(super) fn adopt(state: &mut dyn StateTx, community: &str, fleet: BTreeMap<String, Tricycle>) {
    for (tricycle, row) in fleet {
        let before = load(state, community, &tricycle).ok().flatten();
        save(state, community, &tricycle, before.as_ref(), &row);
    }
}

/// Whether any tricycle of the community is free (one row read).
pub(super) fn any_free(state: &dyn StateTx, community: &str) -> bool {
    let prefix = prefix(community);
    !state
        .scan_prefix_from(FREE_TRICYCLES, &prefix, &prefix, 1)
        .is_empty()
}

/// The community's free tricycles one at a time, largest first (ties by id), each once:
/// the planner's source of tricycles ([`super::plan::NextFree`]). It reads the index as it
/// is in this event, so a tricycle freed earlier in the event is among them.
pub(super) struct FreeCursor {
    prefix: String,
    from: String,
}

impl FreeCursor {
    pub(super) fn new(community: &str) -> Self {
        let prefix = prefix(community);
        FreeCursor {
            from: prefix.clone(),
            prefix,
        }
    }

    pub(super) fn next(&mut self, state: &dyn StateTx) -> Result<Option<(String, u32)>, Rejection> {
        let rows = state.scan_prefix_from(FREE_TRICYCLES, &self.prefix, &self.from, 1);
        let Some((key, row)) = rows.into_iter().next() else {
            return Ok(None);
        };
        let free: Free = serde_json::from_slice(&row).map_err(|error| {
            Rejection::new(
                Reason::CorruptState,
                format!("{FREE_TRICYCLES}/{key}: {error}"),
            )
        })?;
        // The smallest key after this one.
        self.from = key + "\0";
        Ok(Some((free.tricycle, free.capacity_g)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemoryState;

    fn tricycle(capacity_g: u32, run: Option<&str>) -> Tricycle {
        Tricycle {
            capacity_g,
            run: run.map(str::to_owned),
        }
    }

    fn all_free(state: &dyn StateTx, community: &str) -> Vec<(String, u32)> {
        let mut cursor = FreeCursor::new(community);
        let mut free = Vec::new();
        while let Some(next) = cursor.next(state).expect("reads") {
            free.push(next);
        }
        free
    }

    #[test]
    fn free_tricycles_come_largest_first_then_by_id_and_follow_their_rows() {
        let mut state = MemoryState::default();
        let fleet = [("t3", 100), ("t1", 150), ("t2", 100), ("t0", 90)];
        for (id, capacity_g) in fleet {
            save(&mut state, "c", id, None, &tricycle(capacity_g, None));
        }
        // Another community's fleet is not this one's.
        save(&mut state, "c2", "t9", None, &tricycle(500, None));
        assert_eq!(
            all_free(&state, "c"),
            vec![
                ("t1".to_owned(), 150),
                ("t2".to_owned(), 100),
                ("t3".to_owned(), 100),
                ("t0".to_owned(), 90),
            ]
        );

        // Out on a run: not free; back: free again; a new capacity moves it.
        let before = load(&state, "c", "t1").expect("reads");
        save(
            &mut state,
            "c",
            "t1",
            before.as_ref(),
            &tricycle(150, Some("r")),
        );
        assert_eq!(all_free(&state, "c")[0], ("t2".to_owned(), 100));
        let before = load(&state, "c", "t1").expect("reads");
        save(&mut state, "c", "t1", before.as_ref(), &tricycle(80, None));
        let before = load(&state, "c", "t0").expect("reads");
        save(&mut state, "c", "t0", before.as_ref(), &tricycle(200, None));
        assert_eq!(
            all_free(&state, "c"),
            vec![
                ("t0".to_owned(), 200),
                ("t2".to_owned(), 100),
                ("t3".to_owned(), 100),
                ("t1".to_owned(), 80),
            ]
        );
        assert!(any_free(&state, "c"));
        assert!(!any_free(&state, "c3"));
    }
}
