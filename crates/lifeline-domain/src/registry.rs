//! The registry projection: communities, buildings, units, households (and their contact
//! phones), vehicles (with their vulnerabilities),
//! the catalogue, tricycles, volunteers and seals, as the latest registration of each says.
//! The gateway validates commands against it.

use lifeline_events::{Envelope, Event, SealScope};

use crate::{Applied, Handler, Reason, Rejection, StateTx, StateTxExt};

pub const NAME: &str = "registry";
pub const COMMUNITIES: &str = "communities";
pub const BUILDINGS: &str = "buildings";
/// Units by id, with their names (households carry their unit's id).
pub const UNITS: &str = "units";
pub const HOUSEHOLDS: &str = "households";
pub const ITEMS: &str = "items";
/// Partners as operators registered them, by id.
pub const PARTNERS: &str = "partners";
pub const TRICYCLES: &str = "tricycles";
pub const VOLUNTEERS: &str = "volunteers";
/// Vehicles that bring goods to a checkpoint, by id.
pub const VEHICLES: &str = "vehicles";
/// Household contact phones (personal data: only the registry keeps them), by household.
pub const CONTACTS: &str = "contacts";
/// `<community>`, `<community>/<building>` or `<community>/<building>/<unit>` -> sealed.
pub const SEALS: &str = "seals";
/// `<community>/<ledger source>` -> that keeper's latest list (`Vec<LedgerEntry>`).
pub const LEDGERS: &str = "ledgers";
/// Campaigns as started (`CampaignStarted`), by id: group-buy sign-ups are checked
/// against them.
pub const CAMPAIGNS: &str = "campaigns";

pub fn ledger_key(community: &str, source: lifeline_events::LedgerSource) -> String {
    format!("{community}/{}", source.as_str())
}

/// The scope a seal row of `community` stands for, from its key; `None` for another
/// community's row.
pub fn parse_seal_key(community: &str, key: &str) -> Option<SealScope> {
    if key == community {
        return Some(SealScope::Community);
    }
    let rest = key.strip_prefix(community)?.strip_prefix('/')?;
    Some(match rest.split_once('/') {
        None => SealScope::Building {
            building: rest.to_owned(),
        },
        Some((building, unit)) => SealScope::Unit {
            building: building.to_owned(),
            unit: unit.to_owned(),
        },
    })
}

pub fn seal_key(community: &str, scope: &SealScope) -> String {
    match scope {
        SealScope::Community => community.to_owned(),
        SealScope::Building { building } => format!("{community}/{building}"),
        SealScope::Unit { building, unit } => format!("{community}/{building}/{unit}"),
    }
}

#[derive(Debug, Default)]
pub struct Registry;

impl Handler for Registry {
    fn name(&self) -> &'static str {
        NAME
    }

    fn tables(&self) -> &'static [&'static str] {
        &[
            COMMUNITIES,
            BUILDINGS,
            UNITS,
            HOUSEHOLDS,
            ITEMS,
            PARTNERS,
            TRICYCLES,
            VOLUNTEERS,
            VEHICLES,
            CONTACTS,
            SEALS,
            LEDGERS,
            CAMPAIGNS,
        ]
    }

    fn apply(
        &self,
        state: &mut dyn StateTx,
        envelope: &Envelope,
        _emit: &mut Vec<Envelope>,
    ) -> Result<Applied, Rejection> {
        match &envelope.event {
            Event::CommunityRegistered(e) => state.put_json(COMMUNITIES, &e.community, e),
            Event::BuildingRegistered(e) => state.put_json(BUILDINGS, &e.building, e),
            Event::UnitRegistered(e) => state.put_json(UNITS, &e.unit, e),
            Event::HouseholdRegistered(e) => {
                if e.head_count == 0 {
                    return Err(Rejection::new(
                        Reason::InvalidRegistration,
                        format!("household {} has nobody in it", e.household),
                    ));
                }
                state.put_json(HOUSEHOLDS, &e.household, e)
            }
            Event::ItemRegistered(e) => state.put_json(ITEMS, &e.item, e),
            Event::PartnerRegistered(e) => state.put_json(PARTNERS, &e.partner, e),
            Event::TricycleRegistered(e) => state.put_json(TRICYCLES, &e.tricycle, e),
            Event::VolunteerRegistered(e) => state.put_json(VOLUNTEERS, &e.volunteer, e),
            Event::VehicleRegistered(e) => state.put_json(VEHICLES, &e.vehicle, e),
            Event::ContactChanged(e) => match &e.phone {
                Some(_) => state.put_json(CONTACTS, &e.household, e),
                None => state.delete(CONTACTS, &e.household),
            },
            Event::SealChanged(e) => {
                state.put_json(SEALS, &seal_key(&e.community, &e.scope), &e.sealed)
            }
            Event::CampaignStarted(e) => state.put_json(CAMPAIGNS, &e.campaign, e),
            Event::LedgerImported(e) => {
                state.put_json(LEDGERS, &ledger_key(&e.community, e.ledger), &e.entries)
            }
            _ => return Ok(Applied::Ignored),
        }
        Ok(Applied::Changed)
    }
}

#[cfg(test)]
mod tests {
    use lifeline_events::{Event, HouseholdRegistered, SealChanged, SealScope, Vulnerability};

    use super::*;
    use crate::testing::given;

    fn household(head_count: u32, vulnerabilities: Vec<Vulnerability>) -> Event {
        Event::HouseholdRegistered(HouseholdRegistered {
            community: "tianlun".into(),
            building: "tianlun-b07".into(),
            unit: "tianlun-b07-u8".into(),
            household: "tianlun-b07-u8-0301".into(),
            door: "301".into(),
            head_count,
            vulnerabilities,
        })
    }

    #[test]
    fn a_household_with_nobody_in_it_is_parked() {
        let rejection = given(&[])
            .when_event(NAME, household(0, vec![]))
            .expect_err("nobody lives there");
        assert_eq!(rejection.reason, Reason::InvalidRegistration);
    }

    #[test]
    fn the_latest_registration_of_a_household_wins() {
        let given = given(&[
            household(3, vec![]),
            household(2, vec![Vulnerability::Dialysis]),
        ]);
        let row: HouseholdRegistered = given
            .registry
            .get_json(HOUSEHOLDS, "tianlun-b07-u8-0301")
            .expect("row")
            .expect("registered");
        assert_eq!(row.head_count, 2);
        assert_eq!(row.vulnerabilities, vec![Vulnerability::Dialysis]);
    }

    #[test]
    fn a_seal_is_kept_per_scope() {
        let unit = SealScope::Unit {
            building: "tianlun-b07".into(),
            unit: "tianlun-b07-u8".into(),
        };
        let given = given(&[Event::SealChanged(SealChanged {
            community: "tianlun".into(),
            scope: unit.clone(),
            sealed: true,
        })]);
        let sealed: Option<bool> = given
            .registry
            .get_json(SEALS, &seal_key("tianlun", &unit))
            .expect("row");
        assert_eq!(sealed, Some(true));
        for scope in [
            SealScope::Community,
            unit.clone(),
            SealScope::Building {
                building: "tianlun-b07".into(),
            },
        ] {
            let key = seal_key("tianlun", &scope);
            assert_eq!(parse_seal_key("tianlun", &key), Some(scope));
            assert_eq!(parse_seal_key("tianlun2", &key), None);
        }
        let community: Option<bool> = given
            .registry
            .get_json(SEALS, &seal_key("tianlun", &SealScope::Community))
            .expect("row");
        assert_eq!(community, None, "only the unit is sealed");
    }
}
