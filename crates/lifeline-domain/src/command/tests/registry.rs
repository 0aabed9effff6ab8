//! Staff keeping the registry: each registration's rules, one line a rule.

use lifeline_events::{
    BuildingRegistered, CommunityRegistered, Event, UnitRegistered, VehicleRegistered,
    Vulnerability,
};

use super::*;

fn community() -> Event {
    Event::CommunityRegistered(CommunityRegistered {
        community: "tianlun".into(),
        name: "Tianlun Jincheng".into(),
        name_zh: Some("天伦锦城".into()),
        checkpoint: "railway checkpoint".into(),
        checkpoint_zh: None,
        checkpoint_x_m: Some(1080),
        checkpoint_y_m: Some(-410),
    })
}

fn estate() -> Vec<Event> {
    vec![
        community(),
        Event::BuildingRegistered(BuildingRegistered {
            community: "tianlun".into(),
            building: "tianlun-b07".into(),
            name: "Building 7".into(),
            name_zh: Some("7号楼".into()),
            x_m: 388,
            y_m: 162,
        }),
        Event::UnitRegistered(UnitRegistered {
            community: "tianlun".into(),
            building: "tianlun-b07".into(),
            unit: "tianlun-b07-u8".into(),
            name: Some("Unit 8".into()),
            name_zh: Some("8单元".into()),
        }),
        household(HOUSEHOLD, vec![]),
        stock("yonghui", "veg-pack", 1),
    ]
}

fn household_cmd(door: &str, head_count: u32, unit: &str) -> RegisterHousehold {
    RegisterHousehold {
        community: "tianlun".into(),
        household: "tianlun-b07-u8-0901".into(),
        building: "tianlun-b07".into(),
        unit: unit.into(),
        door: door.into(),
        head_count,
        vulnerabilities: Some(vec![Vulnerability::Pregnant, Vulnerability::Pregnant]),
    }
}

#[test]
fn a_new_household_is_registered_with_its_flags_once_each() {
    let registered = given(&estate())
        .when(|views| register_household(views, household_cmd(" 901 ", 2, "tianlun-b07-u8")))
        .then_ok();
    assert_eq!(registered.door, "901");
    assert_eq!(registered.vulnerabilities, vec![Vulnerability::Pregnant]);
}

#[test]
fn household_registrations_are_refused_by_rule() {
    let given = given(&estate());
    let cases: Vec<(&str, RegisterHousehold, ErrorCode)> = vec![
        (
            "no door",
            household_cmd(" ", 2, "tianlun-b07-u8"),
            ErrorCode::InvalidText,
        ),
        (
            "nobody home",
            household_cmd("901", 0, "tianlun-b07-u8"),
            ErrorCode::OutOfRange,
        ),
        (
            "a crowd",
            household_cmd("901", 21, "tianlun-b07-u8"),
            ErrorCode::OutOfRange,
        ),
        (
            "no such unit",
            household_cmd("901", 2, "tianlun-b07-u9"),
            ErrorCode::UnknownUnit,
        ),
        (
            "another community",
            RegisterHousehold {
                community: "huangtugang".into(),
                ..household_cmd("901", 2, "tianlun-b07-u8")
            },
            ErrorCode::UnknownCommunity,
        ),
        (
            "unchanged",
            RegisterHousehold {
                household: HOUSEHOLD.into(),
                door: "301".into(),
                head_count: 3,
                vulnerabilities: None,
                ..household_cmd("", 0, "tianlun-b07-u8")
            },
            ErrorCode::NoChange,
        ),
    ];
    for (rule, command, code) in cases {
        let error = given
            .when(|views| register_household(views, command))
            .then_refused(code);
        assert_eq!(error.code(), code, "{rule}");
    }
}

#[test]
fn a_contact_phone_is_normalised_and_checked() {
    assert_eq!(
        normalize_phone("138 0013-8000").as_deref(),
        Some("13800138000")
    );
    assert_eq!(
        normalize_phone("+86 (10) 1234 5678").as_deref(),
        Some("+861012345678")
    );
    assert_eq!(normalize_phone("1234"), None);
    assert_eq!(normalize_phone("call me"), None);
    let set = |phone: &str| SetContact {
        community: "tianlun".into(),
        household: HOUSEHOLD.into(),
        phone: Some(phone.into()),
    };
    let mut given = given(&estate());
    let changed = given
        .when(|views| set_contact(views, set("138 0013 8000")))
        .then_ok();
    assert_eq!(changed.phone.as_deref(), Some("13800138000"));
    given
        .when(|views| set_contact(views, set("12")))
        .then_refused(ErrorCode::InvalidPhone);
    let elsewhere = SetContact {
        community: "huangtugang".into(),
        ..set("13800138000")
    };
    given
        .when(|views| set_contact(views, elsewhere))
        .then_refused(ErrorCode::UnknownHousehold);
    given
        .when_event(crate::registry::NAME, Event::ContactChanged(changed))
        .expect("applies");
    given
        .when(|views| set_contact(views, set("13800138000")))
        .then_refused(ErrorCode::NoChange);
}

#[test]
fn vehicles_tricycles_volunteers_buildings_and_units_follow_their_rules() {
    let given = given(&estate());
    let vehicle = |partner: Option<&str>| RegisterVehicle {
        community: "tianlun".into(),
        vehicle: "car-1".into(),
        name: "Lent car 1".into(),
        name_zh: Some("借用车辆1".into()),
        plate: Some("京A12345".into()),
        partner: partner.map(Into::into),
    };
    given
        .when(|views| register_vehicle(views, vehicle(None)))
        .then_ok();
    given
        .when(|views| register_vehicle(views, vehicle(Some("yonghui"))))
        .then_ok();
    given
        .when(|views| register_vehicle(views, vehicle(Some("nobody"))))
        .then_refused(ErrorCode::UnknownPartner);
    let tricycle = |capacity_g| RegisterTricycle {
        community: "tianlun".into(),
        tricycle: "tri-99".into(),
        capacity_g,
    };
    given
        .when(|views| register_tricycle(views, tricycle(150_000)))
        .then_ok();
    given
        .when(|views| register_tricycle(views, tricycle(5_000)))
        .then_refused(ErrorCode::WeightOutOfRange);
    let volunteer = |group: &str| RegisterVolunteer {
        community: "tianlun".into(),
        volunteer: "vol-tianlun-999".into(),
        name: "Volunteer 999".into(),
        group: group.into(),
    };
    given
        .when(|views| register_volunteer(views, volunteer("medicine_runs")))
        .then_ok();
    given
        .when(|views| register_volunteer(views, volunteer("karaoke")))
        .then_refused(ErrorCode::UnknownGroup);
    let building = |x_m| RegisterBuilding {
        community: "tianlun".into(),
        building: "tianlun-b17".into(),
        name: "Building 17".into(),
        name_zh: Some("17号楼".into()),
        x_m,
        y_m: 500,
    };
    given
        .when(|views| register_building(views, building(520)))
        .then_ok();
    given
        .when(|views| register_building(views, building(90_000)))
        .then_refused(ErrorCode::OutOfRange);
    let unit = |building: &str| RegisterUnit {
        community: "tianlun".into(),
        building: building.into(),
        unit: "tianlun-b07-u9".into(),
        name: Some("Unit 9".into()),
        name_zh: Some("9单元".into()),
    };
    given
        .when(|views| register_unit(views, unit("tianlun-b07")))
        .then_ok();
    given
        .when(|views| register_unit(views, unit("tianlun-b99")))
        .then_refused(ErrorCode::UnknownBuilding);
}

#[test]
fn an_arrival_by_vehicle_carries_a_pick_sheet_whole() {
    let mut events = estate();
    events.push(Event::VehicleRegistered(VehicleRegistered {
        community: "tianlun".into(),
        vehicle: "car-1".into(),
        name: "Lent car 1".into(),
        name_zh: None,
        plate: None,
        partner: None,
    }));
    events.push(item("veg-pack", lifeline_events::ItemKind::Package, 5_000));
    events.push(stock("yonghui", "veg-pack", 10));
    for n in 1..=3 {
        let order = format!("o{n}");
        events.push(placed(&order, &[("veg-pack", 1)]));
        let batch = (n < 3).then(|| "sheet-1".to_owned());
        events.push(Event::OrderPicked(lifeline_events::OrderPicked {
            order,
            community: "tianlun".into(),
            partner: "yonghui".into(),
            lines: vec![picked_in_full("veg-pack", 1)],
            batch,
        }));
    }
    let given = given(&events);
    let arrival = |vehicle: &str, batches: Vec<String>| Arrival {
        arrival: "a1".into(),
        community: "tianlun".into(),
        partner: "yonghui".into(),
        orders: vec![],
        vehicle: Some(vehicle.into()),
        driver: Some("Mr Wang".into()),
        batches,
    };
    let arrived = given
        .when(|views| arrive(views, arrival("car-1", vec!["sheet-1".into()])))
        .then_ok();
    assert_eq!(arrived.orders, ["o1", "o2"]);
    assert_eq!(arrived.vehicle.as_deref(), Some("car-1"));
    given
        .when(|views| arrive(views, arrival("car-9", vec!["sheet-1".into()])))
        .then_refused(ErrorCode::UnknownVehicle);
    given
        .when(|views| arrive(views, arrival("car-1", vec!["sheet-none".into()])))
        .then_refused(ErrorCode::ArrivalSize);
}

/// Only the riding groups take a run out: a volunteer of the security group may not.
#[test]
fn only_the_riding_groups_take_a_run_out() {
    let mut events = on_run();
    events.push(Event::VolunteerRegistered(
        lifeline_events::VolunteerRegistered {
            community: "tianlun".into(),
            volunteer: "vol-guard".into(),
            name: "Guard".into(),
            group: "security".into(),
        },
    ));
    let given = given(&events);
    let depart = |courier: &str| DepartRun {
        run: "r1".into(),
        courier: Some(courier.into()),
    };
    given
        .when(|views| depart_run(views, depart("vol-guard")))
        .then_refused(ErrorCode::NotARider);
    given
        .when(|views| depart_run(views, depart("vol-007")))
        .then_ok();
}

/// A correction that does not name flags keeps them; a move while orders are on their way
/// is refused.
#[test]
fn a_correction_keeps_the_flags_and_an_address_with_orders_on_the_way() {
    let mut events = estate();
    events[3] = household(HOUSEHOLD, vec![Vulnerability::Dialysis]);
    let flagged = given(&events);
    let correction = RegisterHousehold {
        household: HOUSEHOLD.into(),
        door: "301".into(),
        head_count: 4,
        vulnerabilities: None,
        ..household_cmd("", 0, "tianlun-b07-u8")
    };
    let corrected = flagged
        .when(|views| register_household(views, correction))
        .then_ok();
    assert_eq!(corrected.vulnerabilities, vec![Vulnerability::Dialysis]);

    events.push(Event::UnitRegistered(UnitRegistered {
        community: "tianlun".into(),
        building: "tianlun-b07".into(),
        unit: "tianlun-b07-u1".into(),
        name: None,
        name_zh: None,
    }));
    events.push(placed("o1", &[("veg-pack", 1)]));
    let moving = RegisterHousehold {
        household: HOUSEHOLD.into(),
        door: "101".into(),
        head_count: 3,
        vulnerabilities: None,
        ..household_cmd("", 0, "tianlun-b07-u1")
    };
    given(&events)
        .when(|views| register_household(views, moving))
        .then_refused(ErrorCode::OpenOrders);
}
