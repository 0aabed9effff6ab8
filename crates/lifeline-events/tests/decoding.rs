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
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/events.md");
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

proptest! {
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
