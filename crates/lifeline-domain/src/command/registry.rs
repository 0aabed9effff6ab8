//! Staff keep the registry: households (and their contact phones), buildings, units,
//! volunteers, tricycles and vehicles. Each command decides one registration event, the
//! same events the seed loader publishes, so the seed is just the first batch of them. A
//! registration names things of its own community only; an id registered in another
//! community is refused rather than moved.

use lifeline_events::{
    BuildingRegistered, ContactChanged, HouseholdRegistered, PartnerRegistered, TricycleRegistered,
    UnitRegistered, VehicleRegistered, VolunteerRegistered, Vulnerability,
};

use super::{CommandError, Views};

pub const MAX_HEAD_COUNT: u32 = 20;
pub const MAX_NAME_CHARS: usize = 64;
pub const MAX_DOOR_CHARS: usize = 16;
/// How far from a community's origin a building may be, metres.
pub const MAX_GRID_M: i32 = 20_000;
pub const MIN_TRICYCLE_G: u32 = 10_000;
pub const MAX_TRICYCLE_G: u32 = 1_000_000;
/// The work groups of the source story.
pub const WORK_GROUPS: [&str; 7] = [
    "rapid_delivery",
    "supplies",
    "security",
    "disinfection",
    "medicine_runs",
    "liaison",
    "residents_requests",
];

fn known_community(views: &Views<'_>, community: &str) -> Result<(), CommandError> {
    match views.community(community)? {
        Some(_) => Ok(()),
        None => Err(CommandError::UnknownCommunity {
            community: community.to_owned(),
        }),
    }
}

fn text(field: &'static str, value: &str, max: usize) -> Result<(), CommandError> {
    if value.trim().is_empty() || value.chars().count() > max {
        return Err(CommandError::InvalidText { field, max });
    }
    Ok(())
}

fn optional_text(field: &'static str, value: Option<&str>, max: usize) -> Result<(), CommandError> {
    value.map_or(Ok(()), |value| text(field, value, max))
}

fn in_range(field: &'static str, value: i64, min: i64, max: i64) -> Result<(), CommandError> {
    if !(min..=max).contains(&value) {
        return Err(CommandError::OutOfRange { field, min, max });
    }
    Ok(())
}

fn elsewhere(what: &'static str, id: &str, community: &str) -> CommandError {
    CommandError::RegisteredElsewhere {
        what,
        id: id.to_owned(),
        community: community.to_owned(),
    }
}

/// Register a household, or correct one (its unit, door, head count, flags).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisterHousehold {
    pub community: String,
    pub household: String,
    pub building: String,
    pub unit: String,
    pub door: String,
    pub head_count: u32,
    /// `None` keeps the household's flags as registered (none for a new household).
    pub vulnerabilities: Option<Vec<Vulnerability>>,
}

pub fn register_household(
    views: &Views<'_>,
    command: RegisterHousehold,
) -> Result<HouseholdRegistered, CommandError> {
    known_community(views, &command.community)?;
    if views
        .building(&command.building)?
        .is_none_or(|building| building.community != command.community)
    {
        return Err(CommandError::UnknownBuilding {
            building: command.building,
            community: command.community,
        });
    }
    if views
        .unit(&command.unit)?
        .is_none_or(|unit| unit.building != command.building)
    {
        return Err(CommandError::UnknownUnit {
            unit: command.unit,
            building: command.building,
        });
    }
    text("door", &command.door, MAX_DOOR_CHARS)?;
    in_range(
        "head_count",
        i64::from(command.head_count),
        1,
        i64::from(MAX_HEAD_COUNT),
    )?;
    let known = views.household(&command.household)?;
    let mut vulnerabilities = match (command.vulnerabilities, &known) {
        (Some(flags), _) => flags,
        (None, Some(known)) => known.vulnerabilities.clone(),
        (None, None) => Vec::new(),
    };
    vulnerabilities.sort();
    vulnerabilities.dedup();
    // A household with orders on their way keeps its address: they would be carried to
    // the old one.
    if let Some(known) = &known
        && (known.building != command.building || known.unit != command.unit)
        && views.has_open_orders(&command.household)?
    {
        return Err(CommandError::OpenOrders {
            household: command.household,
        });
    }
    let registered = HouseholdRegistered {
        community: command.community,
        building: command.building,
        unit: command.unit,
        household: command.household,
        door: command.door.trim().to_owned(),
        head_count: command.head_count,
        vulnerabilities,
    };
    match known {
        Some(known) if known.community != registered.community => Err(elsewhere(
            "household",
            &registered.household,
            &known.community,
        )),
        Some(mut known) => {
            known.vulnerabilities.sort();
            known.vulnerabilities.dedup();
            if known == registered {
                return Err(CommandError::NoChange {
                    household: registered.household,
                });
            }
            Ok(registered)
        }
        None => Ok(registered),
    }
}

/// Set (or, with `None`, remove) a household's contact phone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetContact {
    pub community: String,
    pub household: String,
    pub phone: Option<String>,
}

/// A phone as staff typed it, without spaces, dashes or brackets; `None` when it is not
/// 5 to 20 digits with an optional leading `+`.
pub fn normalize_phone(phone: &str) -> Option<String> {
    let kept: String = phone
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '(' | ')'))
        .collect();
    let digits = kept.strip_prefix('+').unwrap_or(&kept);
    let valid = (5..=20).contains(&digits.len()) && digits.chars().all(|c| c.is_ascii_digit());
    valid.then_some(kept)
}

pub fn set_contact(views: &Views<'_>, command: SetContact) -> Result<ContactChanged, CommandError> {
    if views
        .household(&command.household)?
        .is_none_or(|household| household.community != command.community)
    {
        return Err(CommandError::UnknownHousehold {
            household: command.household,
        });
    }
    let phone = match &command.phone {
        Some(phone) => Some(normalize_phone(phone).ok_or(CommandError::InvalidPhone)?),
        None => None,
    };
    if views.contact(&command.household)? == phone {
        return Err(CommandError::NoChange {
            household: command.household,
        });
    }
    Ok(ContactChanged {
        community: command.community,
        household: command.household,
        phone,
    })
}

/// Register a building (or correct its names and place on the map).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisterBuilding {
    pub community: String,
    pub building: String,
    pub name: String,
    pub name_zh: Option<String>,
    pub x_m: i32,
    pub y_m: i32,
}

pub fn register_building(
    views: &Views<'_>,
    command: RegisterBuilding,
) -> Result<BuildingRegistered, CommandError> {
    known_community(views, &command.community)?;
    text("name", &command.name, MAX_NAME_CHARS)?;
    optional_text("name_zh", command.name_zh.as_deref(), MAX_NAME_CHARS)?;
    let grid = i64::from(MAX_GRID_M);
    in_range("x_m", i64::from(command.x_m), -grid, grid)?;
    in_range("y_m", i64::from(command.y_m), -grid, grid)?;
    if let Some(known) = views.building(&command.building)?
        && known.community != command.community
    {
        return Err(elsewhere("building", &command.building, &known.community));
    }
    Ok(BuildingRegistered {
        community: command.community,
        building: command.building,
        name: command.name,
        name_zh: command.name_zh,
        x_m: command.x_m,
        y_m: command.y_m,
    })
}

/// Register a unit (stairwell, or a bungalow lane) of a building.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisterUnit {
    pub community: String,
    pub building: String,
    pub unit: String,
    pub name: Option<String>,
    pub name_zh: Option<String>,
}

pub fn register_unit(
    views: &Views<'_>,
    command: RegisterUnit,
) -> Result<UnitRegistered, CommandError> {
    if views
        .building(&command.building)?
        .is_none_or(|building| building.community != command.community)
    {
        return Err(CommandError::UnknownBuilding {
            building: command.building,
            community: command.community,
        });
    }
    optional_text("name", command.name.as_deref(), MAX_NAME_CHARS)?;
    optional_text("name_zh", command.name_zh.as_deref(), MAX_NAME_CHARS)?;
    if let Some(known) = views.unit(&command.unit)?
        && known.building != command.building
    {
        return Err(elsewhere("unit", &command.unit, &known.community));
    }
    Ok(UnitRegistered {
        community: command.community,
        building: command.building,
        unit: command.unit,
        name: command.name,
        name_zh: command.name_zh,
    })
}

/// Register a volunteer in a work group (or move them to another group).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisterVolunteer {
    pub community: String,
    pub volunteer: String,
    pub name: String,
    pub group: String,
}

pub fn register_volunteer(
    views: &Views<'_>,
    command: RegisterVolunteer,
) -> Result<VolunteerRegistered, CommandError> {
    known_community(views, &command.community)?;
    text("name", &command.name, MAX_NAME_CHARS)?;
    if !WORK_GROUPS.contains(&command.group.as_str()) {
        return Err(CommandError::UnknownGroup {
            group: command.group,
            known: WORK_GROUPS.join(", "),
        });
    }
    if let Some(known) = views.volunteer(&command.volunteer)?
        && known.community != command.community
    {
        return Err(elsewhere("volunteer", &command.volunteer, &known.community));
    }
    Ok(VolunteerRegistered {
        community: command.community,
        volunteer: command.volunteer,
        name: command.name,
        group: command.group,
    })
}

/// Register a tricycle (or correct its capacity).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisterTricycle {
    pub community: String,
    pub tricycle: String,
    pub capacity_g: u32,
}

pub fn register_tricycle(
    views: &Views<'_>,
    command: RegisterTricycle,
) -> Result<TricycleRegistered, CommandError> {
    known_community(views, &command.community)?;
    if !(MIN_TRICYCLE_G..=MAX_TRICYCLE_G).contains(&command.capacity_g) {
        return Err(CommandError::WeightOutOfRange {
            min: MIN_TRICYCLE_G,
            max: MAX_TRICYCLE_G,
        });
    }
    if let Some(known) = views.tricycle(&command.tricycle)?
        && known.community != command.community
    {
        return Err(elsewhere("tricycle", &command.tricycle, &known.community));
    }
    Ok(TricycleRegistered {
        community: command.community,
        tricycle: command.tricycle,
        capacity_g: command.capacity_g,
    })
}

/// Register a vehicle that brings goods to the checkpoint: a car lent to the community, or
/// (with `partner`) a partner's van.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisterVehicle {
    pub community: String,
    pub vehicle: String,
    pub name: String,
    pub name_zh: Option<String>,
    pub plate: Option<String>,
    pub partner: Option<String>,
}

pub fn register_vehicle(
    views: &Views<'_>,
    command: RegisterVehicle,
) -> Result<VehicleRegistered, CommandError> {
    known_community(views, &command.community)?;
    text("name", &command.name, MAX_NAME_CHARS)?;
    optional_text("name_zh", command.name_zh.as_deref(), MAX_NAME_CHARS)?;
    optional_text("plate", command.plate.as_deref(), MAX_DOOR_CHARS)?;
    if let Some(partner) = &command.partner
        && !views.partner_known(partner)?
    {
        return Err(CommandError::UnknownPartner {
            partner: partner.clone(),
        });
    }
    if let Some(known) = views.vehicle(&command.vehicle)?
        && known.community != command.community
    {
        return Err(elsewhere("vehicle", &command.vehicle, &known.community));
    }
    Ok(VehicleRegistered {
        community: command.community,
        vehicle: command.vehicle,
        name: command.name,
        name_zh: command.name_zh,
        plate: command.plate,
        partner: command.partner,
    })
}

/// Register a supermarket partner, or change its names and the communities it supplies
/// (operators do this; a partner's own scope is its orders and stock).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisterPartner {
    pub partner: String,
    pub name: String,
    pub name_zh: Option<String>,
    pub communities: Vec<String>,
}

pub fn register_partner(
    views: &Views<'_>,
    command: RegisterPartner,
) -> Result<PartnerRegistered, CommandError> {
    text("name", &command.name, MAX_NAME_CHARS)?;
    optional_text("name_zh", command.name_zh.as_deref(), MAX_NAME_CHARS)?;
    let mut communities = command.communities;
    communities.sort();
    communities.dedup();
    for community in &communities {
        known_community(views, community)?;
    }
    Ok(PartnerRegistered {
        partner: command.partner,
        name: command.name,
        name_zh: command.name_zh,
        communities,
    })
}
