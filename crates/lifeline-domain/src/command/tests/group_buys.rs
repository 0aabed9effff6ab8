//! Group buys: a household of the scope signs up before the cutoff, once.

use lifeline_events::{CampaignScope, CampaignStarted, Event};

use super::*;

fn at(hour: u8) -> time::OffsetDateTime {
    time::macros::datetime!(2020-06-14 00:00 +08:00) + time::Duration::hours(i64::from(hour))
}

fn group_buy(signup_until: Option<time::OffsetDateTime>) -> Event {
    Event::CampaignStarted(CampaignStarted {
        campaign: "gb1".into(),
        community: "tianlun".into(),
        name: "Vegetable packs at cost".into(),
        partner: "yonghui".into(),
        lines: lines(&[("veg-pack", 1)]),
        scope: CampaignScope {
            buildings: vec!["tianlun-b07".into()],
            vulnerabilities: vec![],
        },
        priority: None,
        signup_until,
        slice: None,
    })
}

fn join(household: &str, hour: u8) -> JoinCampaign {
    JoinCampaign {
        campaign: "gb1".into(),
        household: household.into(),
        at: at(hour),
        on_behalf_by: None,
    }
}

#[test]
fn a_household_of_the_scope_signs_up_before_the_cutoff() {
    let open = with(registry(), [group_buy(Some(at(20)))]);
    let placed = open
        .when(|views| join_campaign(views, join(HOUSEHOLD, 9)))
        .then_ok();
    assert_eq!(placed.campaign.as_deref(), Some("gb1"));
    assert_eq!(placed.order, signup_order_id("gb1", HOUSEHOLD));
    assert_eq!(placed.partner, "yonghui");
    assert_eq!(placed.lines, lines(&[("veg-pack", 1)]));
}

#[test]
fn sign_up_rejections() {
    let open = with(registry(), [group_buy(Some(at(20)))]);
    let broadcast = with(registry(), [group_buy(None)]);
    let mut outside = registry();
    outside.push(Event::HouseholdRegistered(
        lifeline_events::HouseholdRegistered {
            community: "tianlun".into(),
            building: "tianlun-b01".into(),
            unit: "tianlun-b01-u1".into(),
            household: "tianlun-b01-u1-0101".into(),
            door: "101".into(),
            head_count: 2,
            vulnerabilities: vec![],
        },
    ));
    outside.push(group_buy(Some(at(20))));
    let outside = given(&outside);
    let cases: Vec<(&Given, JoinCampaign, ErrorCode)> = vec![
        (&open, join(HOUSEHOLD, 21), ErrorCode::SignupClosed),
        (&broadcast, join(HOUSEHOLD, 9), ErrorCode::NotAGroupBuy),
        (&open, join("nobody", 9), ErrorCode::UnknownHousehold),
        (
            &outside,
            join("tianlun-b01-u1-0101", 9),
            ErrorCode::NotInScope,
        ),
        (
            &open,
            JoinCampaign {
                campaign: "gb9".into(),
                ..join(HOUSEHOLD, 9)
            },
            ErrorCode::UnknownCampaign,
        ),
    ];
    for (given, command, code) in cases {
        given
            .when(|views| join_campaign(views, command.clone()))
            .then_refused(code);
    }
}
