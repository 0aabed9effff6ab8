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
use crate::{MemoryState, apply_atomically};

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
    }
}

fn state_after(events: &[Event]) -> MemoryState {
    let mut state = MemoryState::default();
    for event in events {
        apply_atomically(
            &Campaigns,
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
    apply_atomically(&Campaigns, &mut first, &started, &mut emitted).expect("applies");
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
    apply_atomically(&Campaigns, &mut again, &started, &mut emitted_again).expect("applies");
    assert_eq!(emitted_again, emitted);
    // The same campaign read twice is parked, and places nothing more.
    let mut after = first.clone();
    let mut more = Vec::new();
    let rejection =
        apply_atomically(&Campaigns, &mut after, &started, &mut more).expect_err("parked");
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
        apply_atomically(&Campaigns, &mut state.clone(), &started, &mut emitted).expect("applies");
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
        &Campaigns,
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
