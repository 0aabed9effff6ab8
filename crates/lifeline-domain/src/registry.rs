//! The registry projection: communities, buildings, households (with their vulnerabilities),
//! the catalogue, tricycles, volunteers and seals, as the latest registration of each says.
//! The gateway validates commands against it.

use lifeline_events::{Envelope, Event, SealScope};

use crate::{Applied, Handler, Rejection, StateTx, StateTxExt};

pub const NAME: &str = "registry";
pub const COMMUNITIES: &str = "communities";
pub const BUILDINGS: &str = "buildings";
pub const HOUSEHOLDS: &str = "households";
pub const ITEMS: &str = "items";
pub const TRICYCLES: &str = "tricycles";
pub const VOLUNTEERS: &str = "volunteers";
/// `<community>`, `<community>/<building>` or `<community>/<building>/<unit>` -> sealed.
pub const SEALS: &str = "seals";

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
            HOUSEHOLDS,
            ITEMS,
            TRICYCLES,
            VOLUNTEERS,
            SEALS,
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
            Event::HouseholdRegistered(e) => {
                if e.head_count == 0 {
                    return Err(Rejection::new(
                        "invalid_registration",
                        format!("household {} has nobody in it", e.household),
                    ));
                }
                state.put_json(HOUSEHOLDS, &e.household, e)
            }
            Event::ItemRegistered(e) => state.put_json(ITEMS, &e.item, e),
            Event::TricycleRegistered(e) => state.put_json(TRICYCLES, &e.tricycle, e),
            Event::VolunteerRegistered(e) => state.put_json(VOLUNTEERS, &e.volunteer, e),
            Event::SealChanged(e) => {
                state.put_json(SEALS, &seal_key(&e.community, &e.scope), &e.sealed)
            }
            _ => return Ok(Applied::Ignored),
        }
        Ok(Applied::Changed)
    }
}
