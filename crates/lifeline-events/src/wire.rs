//! The wire name of a unit enum variant as serde spells it, as a `&'static str` for metric
//! labels, headers and messages: one spelling, serde's, instead of hand-written maps.

use std::any::TypeId;
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use serde::Serialize;

type Names = HashMap<(TypeId, String), &'static str>;

/// `wire_name(&Stage::AtCheckpoint) == "at_checkpoint"`. Each variant's name is computed
/// once and kept for the life of the process (a handful of short strings per enum).
pub fn wire_name<T: Serialize + std::fmt::Debug + 'static>(value: &T) -> &'static str {
    static NAMES: OnceLock<Mutex<Names>> = OnceLock::new();
    let key = (TypeId::of::<T>(), format!("{value:?}"));
    let mut names = match NAMES.get_or_init(Default::default).lock() {
        Ok(names) => names,
        Err(poisoned) => poisoned.into_inner(),
    };
    names.entry(key).or_insert_with(|| {
        let name = match serde_json::to_value(value) {
            Ok(serde_json::Value::String(name)) => name,
            _ => format!("{value:?}"),
        };
        Box::leak(name.into_boxed_str())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{DropFailure, Priority};

    #[test]
    fn names_are_serdes() {
        assert_eq!(wire_name(&Priority::Urgent), "urgent");
        assert_eq!(wire_name(&DropFailure::NoAnswer), "no_answer");
        assert_eq!(wire_name(&DropFailure::UnitSealed), "unit_sealed");
        for failure in DropFailure::ALL {
            assert_eq!(
                serde_json::to_value(failure).expect("json"),
                serde_json::Value::from(wire_name(&failure))
            );
        }
    }
}
