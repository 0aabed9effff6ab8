//! Staff start a campaign: the same lines to every household of a scope.

use lifeline_events::{CampaignScope, CampaignStarted, OrderLine, Priority};

use super::{CommandError, Views, check_line_shapes, weigh_lines};

/// The longest campaign name, in characters.
pub const MAX_NAME_CHARS: usize = 200;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartCampaign {
    /// The new campaign's id (the gateway uses the event id).
    pub campaign: String,
    pub community: String,
    pub name: String,
    pub partner: String,
    pub lines: Vec<OrderLine>,
    pub scope: CampaignScope,
    pub priority: Option<Priority>,
}

/// A campaign's lines obey the order rules (it becomes one order per household), its
/// partner is known, every building of its scope is one of the community's, and it has a
/// name.
pub fn start_campaign(
    views: &Views<'_>,
    command: StartCampaign,
) -> Result<CampaignStarted, CommandError> {
    let name = command.name.trim().to_owned();
    if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
        return Err(CommandError::CampaignName {
            max: MAX_NAME_CHARS,
        });
    }
    check_line_shapes(&command.lines)?;
    if !views.partner_known(&command.partner)? {
        return Err(CommandError::UnknownPartner {
            partner: command.partner,
        });
    }
    weigh_lines(views, &command.lines)?;
    for building in &command.scope.buildings {
        let in_community = views
            .building(building)?
            .is_some_and(|known| known.community == command.community);
        if !in_community {
            return Err(CommandError::UnknownBuilding {
                building: building.clone(),
                community: command.community,
            });
        }
    }
    Ok(CampaignStarted {
        campaign: command.campaign,
        community: command.community,
        name,
        partner: command.partner,
        lines: command.lines,
        scope: command.scope,
        priority: command.priority,
    })
}
