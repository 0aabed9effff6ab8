//! The wire name of a unit enum variant as serde spells it, as a `&'static str` for metric
//! labels, headers and messages: one spelling, serde's, instead of hand-written maps.

use std::any::TypeId;
use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{OnceLock, RwLock};

use serde::Serialize;

/// Keyed by the enum's type and its variant's discriminant.
type Names = HashMap<(TypeId, u64), &'static str>;

/// `wire_name(&Stage::AtCheckpoint) == "at_checkpoint"`, for unit-variant enums. Each
/// variant's name is computed once (serde) and kept for the life of the process, a handful
/// of short strings per enum; after that a call is a hash and an uncontended read lock,
/// cheap enough for every event.
pub fn wire_name<T: Serialize + std::fmt::Debug + 'static>(value: &T) -> &'static str {
    static NAMES: OnceLock<RwLock<Names>> = OnceLock::new();
    let names = NAMES.get_or_init(Default::default);
    let mut hasher = DefaultHasher::new();
    std::mem::discriminant(value).hash(&mut hasher);
    let key = (TypeId::of::<T>(), hasher.finish());
    if let Ok(read) = names.read()
        && let Some(name) = read.get(&key)
    {
        return name;
    }
    let name = match serde_json::to_value(value) {
        Ok(serde_json::Value::String(name)) => name,
        _ => format!("{value:?}"),
    };
    let mut write = match names.write() {
        Ok(write) => write,
        Err(poisoned) => poisoned.into_inner(),
    };
    write
        .entry(key)
        .or_insert_with(|| Box::leak(name.into_boxed_str()))
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
