//! Parcels recorded at the checkpoint and medicine errands run by volunteers: orders that
//! reach the checkpoint without a supermarket pick.
//!
//! Rules decided here:
//! - a parcel is due the same day: it is recorded with priority `priority` (6 hours to the
//!   door, escalated as overdue after 7 h 30 min), so a parcel handed in by the end of the
//!   afternoon is at the door that evening; a parcel cannot be cancelled (it is already
//!   here), and a parcel that fails three drops escalates like any order;
//! - an errand is always urgent (2 hours from request to door, escalated after 2 h 30 min);
//!   one volunteer accepts it (a second gets `errand_not_open`), only that volunteer
//!   collects it, and collects it either to the checkpoint (a tricycle run takes it on) or
//!   straight to the door (the errand is then its own run: its drop is posted against the
//!   errand's id, and a failed drop sends it to the checkpoint queue);
//! - an errand can be cancelled until it is collected.

use lifeline_events::{
    ErrandAccepted, ErrandCollected, ErrandRequested, ErrandRoute, HouseholdRegistered,
    ParcelReceived, Priority,
};

use super::{CommandError, Views};
use crate::delivery::{OrderKind, OrderRecord};
use crate::order::Stage;

/// A parcel weighs 1 g to this much.
pub const MAX_PARCEL_G: u32 = 30_000;
/// Carrier, tracking number, place and medicine are 1 to this many characters.
pub const MAX_TEXT_CHARS: usize = 120;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiveParcel {
    pub order: String,
    pub household: String,
    pub carrier: String,
    pub tracking: String,
    pub weight_g: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestErrand {
    pub order: String,
    pub household: String,
    pub place: String,
    pub medicine: String,
    pub on_behalf_by: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcceptErrand {
    pub order: String,
    pub volunteer: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CollectErrand {
    pub order: String,
    pub volunteer: String,
    pub route: ErrandRoute,
    pub weight_g: u32,
}

fn text(field: &'static str, value: &str) -> Result<(), CommandError> {
    let chars = value.trim().chars().count();
    if chars == 0 || chars > MAX_TEXT_CHARS {
        return Err(CommandError::InvalidText {
            field,
            max: MAX_TEXT_CHARS,
        });
    }
    Ok(())
}

fn weight(weight_g: u32) -> Result<(), CommandError> {
    if !(1..=MAX_PARCEL_G).contains(&weight_g) {
        return Err(CommandError::WeightOutOfRange {
            min: 1,
            max: MAX_PARCEL_G,
        });
    }
    Ok(())
}

fn household(views: &Views<'_>, id: &str) -> Result<HouseholdRegistered, CommandError> {
    views
        .household(id)?
        .ok_or_else(|| CommandError::UnknownHousehold {
            household: id.to_owned(),
        })
}

pub fn receive_parcel(
    views: &Views<'_>,
    command: ReceiveParcel,
) -> Result<ParcelReceived, CommandError> {
    text("carrier", &command.carrier)?;
    text("tracking", &command.tracking)?;
    weight(command.weight_g)?;
    let household = household(views, &command.household)?;
    Ok(ParcelReceived {
        order: command.order,
        community: household.community,
        building: household.building,
        unit: household.unit,
        household: household.household,
        carrier: command.carrier.trim().to_owned(),
        tracking: command.tracking.trim().to_owned(),
        weight_g: command.weight_g,
        priority: Priority::Priority,
    })
}

pub fn request_errand(
    views: &Views<'_>,
    command: RequestErrand,
) -> Result<ErrandRequested, CommandError> {
    text("place", &command.place)?;
    text("medicine", &command.medicine)?;
    let household = household(views, &command.household)?;
    Ok(ErrandRequested {
        order: command.order,
        community: household.community,
        building: household.building,
        unit: household.unit,
        household: household.household,
        place: command.place.trim().to_owned(),
        medicine: command.medicine.trim().to_owned(),
        priority: Priority::Urgent,
        on_behalf_by: command.on_behalf_by,
    })
}

/// The errand named by `order`, in `stage`.
fn errand_in(views: &Views<'_>, order: &str, stage: Stage) -> Result<OrderRecord, CommandError> {
    let record = views
        .order(order)?
        .ok_or_else(|| CommandError::UnknownOrder {
            order: order.to_owned(),
        })?;
    if record.kind != OrderKind::Errand {
        return Err(CommandError::NotAnErrand {
            order: order.to_owned(),
        });
    }
    if record.status.stage != stage {
        return Err(CommandError::ErrandNotOpen {
            order: order.to_owned(),
            stage: record.status.stage.as_str(),
        });
    }
    Ok(record)
}

/// A volunteer of the errand's community takes it on.
pub fn accept_errand(
    views: &Views<'_>,
    command: AcceptErrand,
) -> Result<ErrandAccepted, CommandError> {
    let record = errand_in(views, &command.order, Stage::Placed)?;
    let known = views
        .volunteer(&command.volunteer)?
        .is_some_and(|volunteer| volunteer.community == record.community);
    if !known {
        return Err(CommandError::UnknownCourier {
            courier: command.volunteer,
            community: record.community,
        });
    }
    Ok(ErrandAccepted {
        order: command.order,
        community: record.community,
        volunteer: command.volunteer,
    })
}

/// The volunteer who accepted the errand has the medicine.
pub fn collect_errand(
    views: &Views<'_>,
    command: CollectErrand,
) -> Result<ErrandCollected, CommandError> {
    weight(command.weight_g)?;
    let record = errand_in(views, &command.order, Stage::Accepted)?;
    let accepted_by = record.errand.as_ref().and_then(|e| e.volunteer.clone());
    if accepted_by.as_deref() != Some(command.volunteer.as_str()) {
        return Err(CommandError::NotYourErrand {
            order: command.order,
            volunteer: accepted_by.unwrap_or_default(),
        });
    }
    Ok(ErrandCollected {
        order: command.order,
        community: record.community,
        volunteer: command.volunteer,
        route: command.route,
        weight_g: command.weight_g,
    })
}
