//! Staff start a campaign: the same lines to every household of a scope.

use lifeline_events::{CampaignScope, CampaignStarted, OrderLine, OrderPlaced, Priority};

use super::{CommandError, PlaceOrder, Views, check_line_shapes, place_order, weigh_lines};

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
    /// A group buy's sign-up cutoff; `None` for a broadcast.
    pub signup_until: Option<time::OffsetDateTime>,
    /// Households per step of a broadcast's fan-out (the accepting replica's setting).
    pub slice: Option<u32>,
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
        signup_until: command.signup_until,
        // Only a broadcast is placed in slices; a group buy places nothing itself.
        slice: match command.signup_until {
            None => command.slice.map(|slice| slice.max(1)),
            Some(_) => None,
        },
    })
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinCampaign {
    pub campaign: String,
    pub household: String,
    /// When the sign-up is made (the command's time), against the cutoff.
    pub at: time::OffsetDateTime,
    /// The staff member signing up for the household, if any.
    pub on_behalf_by: Option<String>,
}

/// The order id of a household's sign-up to a group buy: one per household, so a second
/// sign-up meets the first on the order's subject.
pub fn signup_order_id(campaign: &str, household: &str) -> String {
    format!("{campaign}-{household}")
}

/// A household of the group buy's scope signs up before its cutoff: its order, under the
/// same rules as any order.
pub fn join_campaign(
    views: &Views<'_>,
    command: JoinCampaign,
) -> Result<OrderPlaced, CommandError> {
    let campaign =
        views
            .campaign(&command.campaign)?
            .ok_or_else(|| CommandError::UnknownCampaign {
                campaign: command.campaign.clone(),
            })?;
    let Some(cutoff) = campaign.signup_until else {
        return Err(CommandError::NotAGroupBuy {
            campaign: command.campaign,
        });
    };
    if command.at > cutoff {
        return Err(CommandError::SignupClosed {
            campaign: command.campaign,
        });
    }
    let household = views
        .household(&command.household)?
        .filter(|h| h.community == campaign.community)
        .ok_or_else(|| CommandError::UnknownHousehold {
            household: command.household.clone(),
        })?;
    if !crate::campaign::in_scope(&campaign.scope, &household) {
        return Err(CommandError::NotInScope {
            household: command.household,
            campaign: command.campaign,
        });
    }
    let mut placed = place_order(
        views,
        PlaceOrder {
            order: signup_order_id(&command.campaign, &command.household),
            household: command.household,
            partner: campaign.partner,
            lines: campaign.lines,
            priority: campaign.priority,
            on_behalf_by: command.on_behalf_by,
        },
    )?;
    placed.campaign = Some(command.campaign);
    Ok(placed)
}
