//! Event ids: UUID v7, either fresh or derived deterministically from what caused them.

use uuid::Uuid;

/// A fresh UUID v7 for a new fact.
pub fn new_event_id() -> Uuid {
    Uuid::now_v7()
}

/// A UUID v7 derived only from its inputs, so a process manager that re-processes the same
/// input after a crash produces the same id and JetStream's duplicate window drops the
/// second publish. The timestamp part is the causing event's time, the rest a hash of
/// `(namespace, parts...)`.
pub fn deterministic_event_id(unix_millis: u64, namespace: &str, parts: &[&str]) -> Uuid {
    let mut random = [0u8; 10];
    let first = fnv1a64(namespace.as_bytes(), parts, 0xcbf2_9ce4_8422_2325);
    let second = fnv1a64(namespace.as_bytes(), parts, 0x8422_2325_cbf2_9ce4);
    random[..8].copy_from_slice(&first.to_be_bytes());
    random[8..].copy_from_slice(&second.to_be_bytes()[..2]);
    uuid::Builder::from_unix_timestamp_millis(unix_millis, &random).into_uuid()
}

fn fnv1a64(namespace: &[u8], parts: &[&str], seed: u64) -> u64 {
    let mut hash = seed;
    let mut feed = |bytes: &[u8]| {
        for byte in bytes {
            hash ^= u64::from(*byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
        // A separator that cannot appear in UTF-8 text, so ("ab","c") != ("a","bc").
        hash ^= 0xff;
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    };
    feed(namespace);
    for part in parts {
        feed(part.as_bytes());
    }
    hash
}

/// True when `value` can be one NATS subject token: lowercase letters, digits and '-',
/// starting with a letter or digit. Ids that reach a subject must pass this.
pub fn is_token(value: &str) -> bool {
    let mut chars = value.chars();
    match chars.next() {
        Some(first) if first.is_ascii_lowercase() || first.is_ascii_digit() => {}
        _ => return false,
    }
    value.len() <= 128
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_ids_are_v7_and_stable() {
        let a = deterministic_event_id(1_592_000_000_000, "dispatch", &["run", "x"]);
        let b = deterministic_event_id(1_592_000_000_000, "dispatch", &["run", "x"]);
        let c = deterministic_event_id(1_592_000_000_000, "dispatch", &["runx", ""]);
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(a.get_version_num(), 7);
    }

    #[test]
    fn tokens() {
        for good in ["tianlun", "tianlun-b07-u8", "0190a", "yonghui_1"] {
            assert!(is_token(good), "{good}");
        }
        for bad in ["", "a.b", "a b", "*", ">", "Upper", "-x", "a>"] {
            assert!(!is_token(bad), "{bad}");
        }
    }
}
