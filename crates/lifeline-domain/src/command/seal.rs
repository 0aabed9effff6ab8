//! Staff seal and unseal a community, a building or a unit.
//!
//! What a seal changes (decided from the story, see docs/events.md `seal.changed.v1`):
//! - a community seal is the lockdown itself: supplies stop at the checkpoint, as every
//!   delivery in lifeline already does;
//! - behind a sealed building or unit, a drop is contactless: a delivered drop needs a
//!   proof code or photo (`proof_required`);
//! - only volunteers of the door-to-door group ([`super::DOOR_TO_DOOR_GROUP`]) take a run
//!   with a stop behind a seal (`courier_not_cleared`).

use lifeline_events::{SealChanged, SealScope};

use super::{CommandError, Views};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeSeal {
    pub community: String,
    pub scope: SealScope,
    pub sealed: bool,
}

/// A building or unit seal names a building of the community; a unit seal a unit id that
/// starts with its building's id (the registry's unit ids do).
pub fn change_seal(views: &Views<'_>, command: ChangeSeal) -> Result<SealChanged, CommandError> {
    let building = match &command.scope {
        SealScope::Community => None,
        SealScope::Building { building } => Some(building),
        SealScope::Unit { building, unit } => {
            if !unit.starts_with(building.as_str()) {
                return Err(CommandError::UnknownBuilding {
                    building: format!("{building} (for unit {unit})"),
                    community: command.community,
                });
            }
            Some(building)
        }
    };
    if let Some(building) = building {
        let known = views
            .building(building)?
            .is_some_and(|known| known.community == command.community);
        if !known {
            return Err(CommandError::UnknownBuilding {
                building: building.clone(),
                community: command.community,
            });
        }
    }
    Ok(SealChanged {
        community: command.community,
        scope: command.scope,
        sealed: command.sealed,
    })
}
