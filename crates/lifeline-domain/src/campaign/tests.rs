//! Campaigns by example: a broadcast becomes one order per household of its scope, the
//! same orders however often it is re-processed, and nothing when any household cannot
//! take it.

use lifeline_events::{
    BuildingRegistered, ItemKind, ItemRegistered, OrderLine, OrderPlaced, Priority, StockReceived,
    Vulnerability,
};

use super::*;
use crate::command::{CommandError, ErrorCode, StartCampaign, start_campaign};
use crate::testing::{envelope, given};
use crate::{MemoryState, apply_atomically, replay_atomically};

fn household(building: &str, n: u32, vulnerabilities: Vec<Vulnerability>) -> Event {
    Event::HouseholdRegistered(HouseholdRegistered {
        community: "tianlun".into(),
        building: building.into(),
        unit: format!("{building}-u1"),
        household: format!("{building}-u1-{n:04}"),
        door: n.to_string(),
        head_count: 3,
        vulnerabilities,
    })
}

fn registry() -> Vec<Event> {
    vec![
        Event::BuildingRegistered(BuildingRegistered {
            community: "tianlun".into(),
            building: "tianlun-b01".into(),
            name: "1号楼".into(),
            x_m: 0,
            y_m: 0,
            name_zh: None,
        }),
        Event::BuildingRegistered(BuildingRegistered {
            community: "tianlun".into(),
            building: "tianlun-b02".into(),
            name: "2号楼".into(),
            x_m: 40,
            y_m: 0,
            name_zh: None,
        }),
        Event::ItemRegistered(ItemRegistered {
            item: "watermelon".into(),
            name: "Watermelon".into(),
            kind: ItemKind::Item,
            weight_g: 5_000,
            name_zh: None,
        }),
        Event::StockReceived(StockReceived {
            partner: "shuocheng".into(),
            item: "watermelon".into(),
            quantity: 10,
        }),
        household("tianlun-b01", 101, vec![]),
        household("tianlun-b01", 102, vec![Vulnerability::Dialysis]),
        household("tianlun-b02", 201, vec![]),
        // Another community's household is never in a Tianlun campaign.
        Event::HouseholdRegistered(HouseholdRegistered {
            community: "huangtugang".into(),
            building: "hg-yl1-b01".into(),
            unit: "hg-yl1-b01-u1".into(),
            household: "hg-yl1-b01-u1-0101".into(),
            door: "101".into(),
            head_count: 2,
            vulnerabilities: vec![],
        }),
    ]
}

fn melon(scope: CampaignScope) -> CampaignStarted {
    CampaignStarted {
        campaign: "melon".into(),
        community: "tianlun".into(),
        name: "A free melon for every household".into(),
        partner: "shuocheng".into(),
        lines: vec![OrderLine {
            item: "watermelon".into(),
            quantity: 1,
        }],
        scope,
        priority: None,
        signup_until: None,
        slice: None,
    }
}

fn state_after(events: &[Event]) -> MemoryState {
    let mut state = MemoryState::default();
    for event in events {
        apply_atomically(
            &Campaigns::default(),
            &mut state,
            &envelope(event.clone()),
            &mut Vec::new(),
        )
        .expect("applies");
    }
    state
}

fn orders_of(emitted: &[Envelope]) -> Vec<OrderPlaced> {
    emitted
        .iter()
        .filter_map(|envelope| match &envelope.event {
            Event::OrderPlaced(placed) => Some(placed.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn a_broadcast_places_one_order_per_household_the_same_every_time() {
    let before = state_after(&registry());
    let started = envelope(Event::CampaignStarted(melon(CampaignScope::default())));
    let mut first = before.clone();
    let mut emitted = Vec::new();
    apply_atomically(&Campaigns::default(), &mut first, &started, &mut emitted).expect("applies");
    let orders = orders_of(&emitted);
    let households: Vec<&str> = orders.iter().map(|o| o.household.as_str()).collect();
    assert_eq!(
        households,
        [
            "tianlun-b01-u1-0101",
            "tianlun-b01-u1-0102",
            "tianlun-b02-u1-0201"
        ]
    );
    for (order, envelope) in orders.iter().zip(&emitted) {
        assert_eq!(order.campaign.as_deref(), Some("melon"));
        assert_eq!(
            order.order,
            envelope.id.to_string(),
            "order id is the event id"
        );
        assert_eq!(envelope.causation_id, Some(started.id));
        assert_eq!(envelope.correlation_id, started.correlation_id);
    }
    // Each household's own floor: the dialysis household's melon is a priority order.
    assert_eq!(orders[1].priority, Priority::Priority);
    assert_eq!(orders[0].priority, Priority::Routine);
    // Re-processed after a crash: the same orders with the same ids.
    let mut again = before.clone();
    let mut emitted_again = Vec::new();
    apply_atomically(
        &Campaigns::default(),
        &mut again,
        &started,
        &mut emitted_again,
    )
    .expect("applies");
    assert_eq!(emitted_again, emitted);
    // The same campaign read twice is parked, and places nothing more.
    let mut after = first.clone();
    let mut more = Vec::new();
    let rejection = apply_atomically(&Campaigns::default(), &mut after, &started, &mut more)
        .expect_err("parked");
    assert_eq!(rejection.reason, Reason::DuplicateCampaign);
    assert!(more.is_empty());
}

#[test]
fn a_scope_narrows_by_building_and_by_vulnerability() {
    let state = state_after(&registry());
    let cases = [
        (
            CampaignScope {
                buildings: vec!["tianlun-b02".into()],
                vulnerabilities: vec![],
            },
            vec!["tianlun-b02-u1-0201"],
        ),
        (
            CampaignScope {
                buildings: vec![],
                vulnerabilities: vec![Vulnerability::Dialysis, Vulnerability::Pregnant],
            },
            vec!["tianlun-b01-u1-0102"],
        ),
        (
            CampaignScope {
                buildings: vec!["tianlun-b02".into()],
                vulnerabilities: vec![Vulnerability::Dialysis],
            },
            vec![],
        ),
    ];
    for (scope, expected) in cases {
        let mut emitted = Vec::new();
        let started = envelope(Event::CampaignStarted(melon(scope.clone())));
        apply_atomically(
            &Campaigns::default(),
            &mut state.clone(),
            &started,
            &mut emitted,
        )
        .expect("applies");
        let households: Vec<String> = orders_of(&emitted)
            .into_iter()
            .map(|o| o.household)
            .collect();
        assert_eq!(households, expected, "{scope:?}");
    }
}

#[test]
fn a_campaign_no_household_can_take_places_nothing() {
    let mut state = state_after(&registry());
    let mut caviar = melon(CampaignScope::default());
    caviar.lines[0].item = "caviar".into();
    let mut emitted = Vec::new();
    let rejection = apply_atomically(
        &Campaigns::default(),
        &mut state,
        &envelope(Event::CampaignStarted(caviar)),
        &mut emitted,
    )
    .expect_err("parked");
    assert_eq!(rejection.reason, Reason::InvalidCampaign);
    assert!(emitted.is_empty());
    assert!(state.get(CAMPAIGNS, "melon").is_none());
}

#[test]
fn starting_a_campaign_checks_its_name_lines_partner_and_scope() {
    let given = given(&registry());
    let start = |change: &dyn Fn(&mut StartCampaign)| {
        let campaign = melon(CampaignScope::default());
        let mut command = StartCampaign {
            campaign: campaign.campaign,
            community: campaign.community,
            name: campaign.name,
            partner: campaign.partner,
            lines: campaign.lines,
            scope: campaign.scope,
            priority: None,
            signup_until: None,
            slice: None,
        };
        change(&mut command);
        command
    };
    given
        .when(|views| start_campaign(views, start(&|_| {})))
        .then_ok();
    let cases: Vec<(StartCampaign, ErrorCode)> = vec![
        (start(&|c| c.name = " ".into()), ErrorCode::CampaignName),
        (start(&|c| c.lines.clear()), ErrorCode::EmptyOrder),
        (
            start(&|c| c.lines[0].quantity = 0),
            ErrorCode::QuantityOutOfRange,
        ),
        (
            start(&|c| c.lines[0].item = "caviar".into()),
            ErrorCode::UnknownItem,
        ),
        (
            start(&|c| c.partner = "nobody".into()),
            ErrorCode::UnknownPartner,
        ),
        (
            start(&|c| c.scope.buildings = vec!["hg-yl1-b01".into()]),
            ErrorCode::UnknownBuilding,
        ),
    ];
    for (command, code) in cases {
        let refused: CommandError = given
            .when(|views| start_campaign(views, command.clone()))
            .then_refused(code);
        assert!(!refused.to_string().is_empty());
    }
}

/// Applies `started`, then every `campaign.continued` it leads to in turn (as the consumer
/// reads them back), and returns every envelope the chain emitted, in order.
fn chain(handler: &Campaigns, state: &mut MemoryState, started: &Envelope) -> Vec<Envelope> {
    let mut all = Vec::new();
    let mut next = Some(started.clone());
    while let Some(cause) = next.take() {
        let mut emitted = Vec::new();
        apply_atomically(handler, state, &cause, &mut emitted).expect("applies");
        next = emitted
            .iter()
            .find(|e| matches!(e.event, Event::CampaignContinued(_)))
            .cloned();
        all.extend(emitted);
    }
    all
}

/// The registry's three Tianlun households and seven more in a third building.
fn ten_households() -> MemoryState {
    let mut events = registry();
    for n in 300..307 {
        events.push(household("tianlun-b03", n, vec![]));
    }
    state_after(&events)
}

#[test]
fn a_broadcast_placed_in_slices_places_the_same_orders_as_in_one() {
    let before = ten_households();
    let started = envelope(Event::CampaignStarted(melon(CampaignScope::default())));
    let whole = orders_of(&chain(&Campaigns::default(), &mut before.clone(), &started));
    assert_eq!(whole.len(), 10);
    for slice in 1..=11 {
        let mut state = before.clone();
        let emitted = chain(&Campaigns::with_slice(slice), &mut state, &started);
        assert_eq!(orders_of(&emitted), whole, "slice {slice}");
        let continued: Vec<&CampaignContinued> = emitted
            .iter()
            .filter_map(|e| match &e.event {
                Event::CampaignContinued(c) => Some(c),
                _ => None,
            })
            .collect();
        // One continuation per full slice: ten households take 10 / slice of them.
        assert_eq!(continued.len(), 10 / slice, "slice {slice}");
        assert!(
            emitted
                .iter()
                .all(|e| e.correlation_id == started.correlation_id),
            "slice {slice}"
        );
        let record: CampaignRecord = state
            .get_json(CAMPAIGNS, "melon")
            .expect("readable")
            .expect("recorded");
        assert_eq!(record.orders, 10, "slice {slice}");
        assert_eq!(record.fan_out, None, "slice {slice}: finished");
    }
}

#[test]
fn a_replay_or_a_replica_configured_otherwise_steps_through_a_campaign_as_it_started() {
    let before = ten_households();
    let mut campaign = melon(CampaignScope::default());
    campaign.slice = Some(2);
    let started = envelope(Event::CampaignStarted(campaign));
    // Live, on a replica whose own setting is the default: slices of two, as started.
    let mut live = before.clone();
    let emitted = chain(&Campaigns::default(), &mut live, &started);
    let continuations: Vec<Envelope> = emitted
        .iter()
        .filter(|e| matches!(e.event, Event::CampaignContinued(_)))
        .cloned()
        .collect();
    assert_eq!(continuations.len(), 5, "ten households, two a slice");
    let finished: CampaignRecord = live
        .get_json(CAMPAIGNS, "melon")
        .expect("readable")
        .expect("recorded");
    assert_eq!((finished.orders, finished.fan_out.is_none()), (10, true));
    // A replay set to three a slice reads the same facts and ends where the live run did.
    let replayer = Campaigns::with_slice(3);
    let mut replayed = before.clone();
    for cause in std::iter::once(&started).chain(&continuations) {
        replay_atomically(&replayer, &mut replayed, cause).expect("replays");
    }
    assert_eq!(replayed, live, "the replay's state equals the live run's");
    // A replay stopped after the second continuation, then a replica set to seven takes
    // the third live: it is the campaign's next step, and places what the live run did.
    let mut halfway = before.clone();
    for cause in std::iter::once(&started).chain(&continuations[..2]) {
        replay_atomically(&replayer, &mut halfway, cause).expect("replays");
    }
    let mut next = Vec::new();
    let applied = apply_atomically(
        &Campaigns::with_slice(7),
        &mut halfway,
        &continuations[2],
        &mut next,
    )
    .expect("applies");
    assert_eq!(applied, Applied::Changed);
    let live_third = emitted
        .iter()
        .skip_while(|e| e.id != continuations[2].id)
        .skip(1)
        .take_while(|e| matches!(e.event, Event::OrderPlaced(_)))
        .cloned()
        .collect::<Vec<_>>();
    assert_eq!(orders_of(&next), orders_of(&live_third));
    assert_eq!(orders_of(&next).len(), 2);
}

#[test]
fn a_slice_re_read_after_a_crash_places_the_same_orders_and_a_stale_one_nothing() {
    let before = state_after(&registry());
    let handler = Campaigns::with_slice(1);
    let started = envelope(Event::CampaignStarted(melon(CampaignScope::default())));
    let mut state = before.clone();
    let mut first = Vec::new();
    apply_atomically(&handler, &mut state, &started, &mut first).expect("applies");
    let continued = first
        .iter()
        .find(|e| matches!(e.event, Event::CampaignContinued(_)))
        .expect("a continuation")
        .clone();
    // The crash: the continuation is read before the slice's writes were committed...
    let at_slice = state.clone();
    let mut once = Vec::new();
    apply_atomically(&handler, &mut state, &continued, &mut once).expect("applies");
    let mut again = Vec::new();
    apply_atomically(&handler, &mut at_slice.clone(), &continued, &mut again).expect("applies");
    assert_eq!(
        once, again,
        "the same ids, so JetStream drops the second copy"
    );
    assert_eq!(orders_of(&once).len(), 1);
    // ...and once committed, the same continuation read again is not the next step.
    let mut stale = Vec::new();
    let applied = apply_atomically(&handler, &mut state, &continued, &mut stale).expect("applies");
    assert_eq!(applied, Applied::Ignored);
    assert!(stale.is_empty());
}

#[test]
fn a_household_registered_after_the_start_is_not_in_the_campaign() {
    let before = state_after(&registry());
    let handler = Campaigns::with_slice(1);
    let started = envelope(Event::CampaignStarted(melon(CampaignScope::default())));
    let mut state = before.clone();
    let mut emitted = Vec::new();
    apply_atomically(&handler, &mut state, &started, &mut emitted).expect("applies");
    // Registered between two slices, and sorting after the cursor.
    let late = envelope(household("tianlun-b09", 901, vec![]));
    apply_atomically(&handler, &mut state, &late, &mut Vec::new()).expect("applies");
    let mut rest = emitted
        .iter()
        .find(|e| matches!(e.event, Event::CampaignContinued(_)))
        .map(|continued| chain(&handler, &mut state, continued))
        .expect("a continuation");
    emitted.append(&mut rest);
    let households: Vec<String> = orders_of(&emitted)
        .into_iter()
        .map(|o| o.household)
        .collect();
    assert_eq!(
        households,
        [
            "tianlun-b01-u1-0101",
            "tianlun-b01-u1-0102",
            "tianlun-b02-u1-0201"
        ]
    );
    // Registered again, a household keeps its place: the next campaign reaches it once.
    let again = envelope(household(
        "tianlun-b01",
        101,
        vec![Vulnerability::ElderlyAlone],
    ));
    apply_atomically(&handler, &mut state, &again, &mut Vec::new()).expect("applies");
    let mut next = melon(CampaignScope::default());
    next.campaign = "rice".into();
    let orders = orders_of(&chain(
        &handler,
        &mut state,
        &envelope(Event::CampaignStarted(next)),
    ));
    assert_eq!(orders.len(), 4);
}

#[test]
fn households_of_a_store_from_before_ordinals_are_in_a_new_campaign() {
    let mut state = state_after(&registry());
    // As an earlier release left it: empty rows, no count.
    for key in [
        "tianlun/tianlun-b01-u1-0101",
        "tianlun/tianlun-b01-u1-0102",
        "tianlun/tianlun-b02-u1-0201",
    ] {
        state.put(BY_COMMUNITY, key, Vec::new());
    }
    state.delete(BY_COMMUNITY, "#registered");
    let started = envelope(Event::CampaignStarted(melon(CampaignScope::default())));
    let orders = orders_of(&chain(&Campaigns::with_slice(2), &mut state, &started));
    assert_eq!(orders.len(), 3);
}
