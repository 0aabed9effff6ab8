//! Decoding is strict about what it needs, tolerant of added fields, and never panics.

use lifeline_events::*;
use proptest::prelude::*;

fn meta() -> EventMeta {
    EventMeta {
        time: time::macros::datetime!(2020-06-14 08:30 +08:00),
        source: "test".into(),
        actor: Actor::new(ActorKind::Staff, "staff-1"),
        correlation_id: new_event_id(),
        causation_id: Some(new_event_id()),
    }
}

fn sample() -> Envelope {
    Envelope::new(
        Event::OrderPlaced(OrderPlaced {
            order: "o1".into(),
            community: "tianlun".into(),
            building: "tianlun-b07".into(),
            unit: "tianlun-b07-u8".into(),
            household: "tianlun-b07-u8-0301".into(),
            partner: "yonghui".into(),
            lines: vec![OrderLine {
                item: "veg-pack".into(),
                quantity: 1,
            }],
            priority: Priority::Urgent,
            weight_g: 5000,
            on_behalf_by: Some("staff-1".into()),
            campaign: None,
        }),
        meta(),
    )
}

#[test]
fn round_trip() {
    let envelope = sample();
    let decoded = Envelope::decode(&envelope.encode()).expect("decodes");
    assert_eq!(decoded, envelope);
    assert_eq!(decoded.subject, "lifeline.orders.tianlun.o1");
}

#[test]
fn added_fields_are_ignored() {
    let mut json: serde_json::Value = serde_json::from_slice(&sample().encode()).expect("json");
    json["extra"] = "from a newer producer".into();
    json["data"]["gift"] = "watermelon".into();
    let decoded = Envelope::decode(&serde_json::to_vec(&json).expect("json")).expect("tolerant");
    assert_eq!(decoded.event, sample().event);
}

#[test]
fn missing_or_wrong_fields_and_unknown_types_are_errors() {
    let json: serde_json::Value = serde_json::from_slice(&sample().encode()).expect("json");
    let cases: Vec<(serde_json::Value, &str)> = vec![
        (
            {
                let mut j = json.clone();
                j.as_object_mut().expect("object").remove("id");
                j
            },
            "undecodable",
        ),
        (
            {
                let mut j = json.clone();
                j["type"] = "order.teleported.v1".into();
                j
            },
            "unknown_type",
        ),
        (
            {
                let mut j = json.clone();
                j["type"] = "order.placed.v9".into();
                j
            },
            "unknown_type",
        ),
        (
            {
                let mut j = json.clone();
                j["data"].as_object_mut().expect("object").remove("lines");
                j
            },
            "invalid_payload",
        ),
        (
            {
                let mut j = json.clone();
                j["data"]["priority"] = "whenever".into();
                j
            },
            "invalid_payload",
        ),
        (
            {
                let mut j = json.clone();
                j["time"] = "yesterday".into();
                j
            },
            "undecodable",
        ),
    ];
    for (value, reason) in cases {
        let error =
            Envelope::decode(&serde_json::to_vec(&value).expect("json")).expect_err("rejected");
        assert_eq!(error.reason_code(), reason, "{error}");
    }
}

#[test]
fn every_type_has_a_unique_versioned_name() {
    let mut names: Vec<&str> = Event::TYPES.to_vec();
    for name in &names {
        let parts: Vec<&str> = name.split('.').collect();
        assert_eq!(parts.len(), 3, "{name}");
        assert!(parts[2].starts_with('v'), "{name}");
    }
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), Event::TYPES.len());
}

/// Every ```json example in the partner catalogue decodes, on the subject the code puts it.
#[test]
fn catalogue_examples_decode() {
    let path = std::path::Path::new(&manifest_dir()).join("../../docs/events.md");
    let text = std::fs::read_to_string(path).expect("docs/events.md exists");
    let mut seen = std::collections::BTreeSet::new();
    let mut blocks = text.split("```json").skip(1);
    for block in blocks.by_ref() {
        let json = block.split("```").next().expect("closed block");
        let envelope =
            Envelope::decode(json.as_bytes()).unwrap_or_else(|error| panic!("{error}\n{json}"));
        assert_eq!(envelope.subject, subject_for(&envelope.event), "{json}");
        seen.insert(envelope.event_type());
    }
    let missing: Vec<&&str> = Event::TYPES
        .iter()
        .filter(|t| !seen.contains(**t))
        .collect();
    assert!(
        missing.is_empty(),
        "event types without an example: {missing:?}"
    );
}

/// Every example envelope of docs/events.md: one valid envelope per event type, the corpus
/// the mutation tests start from.
fn corpus() -> Vec<serde_json::Value> {
    let path = std::path::Path::new(&manifest_dir()).join("../../docs/events.md");
    let text = std::fs::read_to_string(path).expect("docs/events.md exists");
    text.split("```json")
        .skip(1)
        .map(|block| {
            let json = block.split("```").next().expect("closed block");
            serde_json::from_str(json).expect("example is JSON")
        })
        .collect()
}

/// One change to a valid envelope.
#[derive(Debug, Clone)]
enum Mutation {
    /// Remove the n-th field (in a depth-first walk of every object).
    Remove(usize),
    /// Replace the n-th value with another JSON value.
    Replace(usize, serde_json::Value),
    /// Set the event type to this.
    Retype(String),
}

fn any_json() -> impl Strategy<Value = serde_json::Value> {
    prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        (-1.0e6f64..1.0e6).prop_map(serde_json::Value::from),
        "[ -~]{0,12}".prop_map(serde_json::Value::from),
        Just(serde_json::json!([])),
        Just(serde_json::json!({})),
        Just(serde_json::json!(u64::MAX)),
    ]
}

fn any_mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (0usize..64).prop_map(Mutation::Remove),
        (0usize..64, any_json()).prop_map(|(n, value)| Mutation::Replace(n, value)),
        prop_oneof![
            Just("order.placed.v2".to_owned()),
            Just("order.picked.v1".to_owned()),
            Just("drop.failed.v1".to_owned()),
            "[a-z.0-9]{0,20}",
        ]
        .prop_map(Mutation::Retype),
    ]
}

/// Visits every value under `value` depth-first, counting; `visit` returns true to stop.
fn walk(
    value: &mut serde_json::Value,
    counter: &mut usize,
    visit: &mut dyn FnMut(&mut serde_json::Map<String, serde_json::Value>, &str) -> bool,
) -> bool {
    if let serde_json::Value::Object(map) = value {
        let keys: Vec<String> = map.keys().cloned().collect();
        for key in keys {
            if *counter == 0 && visit(map, &key) {
                return true;
            }
            *counter = counter.saturating_sub(1);
            if let Some(child) = map.get_mut(&key)
                && walk(child, counter, visit)
            {
                return true;
            }
        }
    }
    if let serde_json::Value::Array(items) = value {
        for item in items {
            if walk(item, counter, visit) {
                return true;
            }
        }
    }
    false
}

fn mutate(mut envelope: serde_json::Value, mutations: &[Mutation]) -> serde_json::Value {
    for mutation in mutations {
        match mutation {
            Mutation::Remove(n) => {
                let mut counter = *n;
                walk(&mut envelope, &mut counter, &mut |map, key| {
                    map.remove(key);
                    true
                });
            }
            Mutation::Replace(n, replacement) => {
                let mut counter = *n;
                walk(&mut envelope, &mut counter, &mut |map, key| {
                    map.insert(key.to_owned(), replacement.clone());
                    true
                });
            }
            Mutation::Retype(event_type) => {
                envelope["type"] = serde_json::Value::from(event_type.as_str());
            }
        }
    }
    envelope
}

/// What decoding a mutated envelope must do: succeed and round-trip, or fail with one of
/// the documented dead-letter reasons.
fn check_mutated(bytes: &[u8]) -> Result<&'static str, String> {
    match Envelope::decode(bytes) {
        Ok(envelope) => {
            let again = Envelope::decode(&envelope.encode()).map_err(|e| e.to_string())?;
            if again == envelope {
                Ok("decoded")
            } else {
                Err(format!(
                    "re-encoding changed the envelope: {envelope:?} vs {again:?}"
                ))
            }
        }
        Err(error) => Ok(error.reason_code()),
    }
}

/// The mutations reach past the envelope into each payload: over a fixed sample, some
/// mutated envelopes still decode, some have an unknown type, some a payload that does not
/// fit its type, and some a broken envelope.
#[test]
fn mutated_envelopes_reach_every_outcome() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::{Config, TestRng, TestRunner};
    let corpus = corpus();
    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        TestRng::deterministic_rng(proptest::test_runner::RngAlgorithm::ChaCha),
    );
    let strategy = (0..corpus.len(), prop::collection::vec(any_mutation(), 1..3));
    let mut outcomes = std::collections::BTreeMap::new();
    for _ in 0..3000 {
        let (index, mutations) = strategy.new_tree(&mut runner).expect("a sample").current();
        let bytes = serde_json::to_vec(&mutate(corpus[index].clone(), &mutations)).expect("json");
        let outcome = check_mutated(&bytes).unwrap_or_else(|error| panic!("{error}"));
        *outcomes.entry(outcome).or_insert(0u32) += 1;
    }
    for outcome in ["decoded", "undecodable", "unknown_type", "invalid_payload"] {
        assert!(
            outcomes.get(outcome).copied().unwrap_or(0) > 0,
            "no mutated envelope ended {outcome}: {outcomes:?}"
        );
    }
}

proptest! {
    #[test]
    fn mutated_valid_envelopes_decode_and_round_trip_or_fail_with_a_reason(
        index in 0usize..64,
        mutations in prop::collection::vec(any_mutation(), 1..4),
    ) {
        let corpus = corpus();
        let envelope = mutate(corpus[index % corpus.len()].clone(), &mutations);
        let bytes = serde_json::to_vec(&envelope).expect("json");
        prop_assert!(check_mutated(&bytes).is_ok(), "{:?}", check_mutated(&bytes));
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = Envelope::decode(&bytes);
    }

    #[test]
    fn arbitrary_json_objects_never_panic(fields in prop::collection::btree_map("[a-z_]{1,12}", "[ -~]{0,20}", 0..12)) {
        let value = serde_json::to_vec(&fields).expect("json");
        let _ = Envelope::decode(&value);
    }
}

/// The package directory of the checkout running the test: cargo sets it at run time, and
/// the compile-time value may name another clone that built the same binary.
fn manifest_dir() -> std::ffi::OsString {
    std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into())
}
