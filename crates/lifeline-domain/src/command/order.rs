//! Placing and cancelling an order.

use std::collections::BTreeSet;

use lifeline_events::{
    HouseholdRegistered, ItemKind, OrderCancelled, OrderLine, OrderPlaced, Priority,
};

use super::{CommandError, Views};
use crate::order::Step;

/// An order has at most this many lines.
pub const MAX_LINES: usize = 50;
/// Each line orders 1 to this many of its item.
pub const MAX_QUANTITY: u32 = 100;

/// Delivery deadlines by priority, from placing to the door: the operators' "late" list
/// uses them, and the alert rules in deploy/prometheus repeat them.
pub fn deadline_seconds(priority: Priority) -> i64 {
    match priority {
        Priority::Urgent => 2 * 3600,
        Priority::Priority => 6 * 3600,
        Priority::Routine => 12 * 3600,
    }
}

/// The least priority an order gets whatever is asked: medicine is urgent, any order of a
/// vulnerable household is priority.
pub fn priority_floor(has_medicine: bool, household: &HouseholdRegistered) -> Priority {
    if has_medicine {
        Priority::Urgent
    } else if household.vulnerabilities.is_empty() {
        Priority::Routine
    } else {
        Priority::Priority
    }
}

/// A household's order (placed by a resident, or by staff on their behalf).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlaceOrder {
    /// The new order's id (the gateway uses the event id; it is unique).
    pub order: String,
    pub household: String,
    pub partner: String,
    pub lines: Vec<OrderLine>,
    /// Asked-for priority; never below [`priority_floor`].
    pub priority: Option<Priority>,
    /// The staff member placing it for the household, if any.
    pub on_behalf_by: Option<String>,
}

/// The shape rules of an order's lines: 1 to [`MAX_LINES`] lines, each item once,
/// quantities 1 to [`MAX_QUANTITY`].
pub fn check_line_shapes(lines: &[OrderLine]) -> Result<(), CommandError> {
    if lines.is_empty() {
        return Err(CommandError::EmptyOrder);
    }
    if lines.len() > MAX_LINES {
        return Err(CommandError::TooManyLines { max: MAX_LINES });
    }
    let mut seen = BTreeSet::new();
    for line in lines {
        if !(1..=MAX_QUANTITY).contains(&line.quantity) {
            return Err(CommandError::QuantityOutOfRange {
                item: line.item.clone(),
                min: 1,
                max: MAX_QUANTITY,
            });
        }
        if !seen.insert(line.item.as_str()) {
            return Err(CommandError::DuplicateLine {
                item: line.item.clone(),
            });
        }
    }
    Ok(())
}

/// What lines weigh and whether they hold medicine; every item must be in the catalogue.
pub fn weigh_lines(views: &Views<'_>, lines: &[OrderLine]) -> Result<(u32, bool), CommandError> {
    let mut weight_g: u32 = 0;
    let mut has_medicine = false;
    for line in lines {
        let item = views
            .item(&line.item)?
            .ok_or_else(|| CommandError::UnknownItem {
                item: line.item.clone(),
            })?;
        has_medicine |= item.kind == ItemKind::Medicine;
        weight_g = weight_g.saturating_add(item.weight_g.saturating_mul(line.quantity));
    }
    Ok((weight_g, has_medicine))
}

pub fn place_order(views: &Views<'_>, command: PlaceOrder) -> Result<OrderPlaced, CommandError> {
    check_line_shapes(&command.lines)?;
    let household =
        views
            .household(&command.household)?
            .ok_or_else(|| CommandError::UnknownHousehold {
                household: command.household.clone(),
            })?;
    if !views.partner_known(&command.partner)? {
        return Err(CommandError::UnknownPartner {
            partner: command.partner,
        });
    }
    let (weight_g, has_medicine) = weigh_lines(views, &command.lines)?;
    let priority = command
        .priority
        .unwrap_or_default()
        .max(priority_floor(has_medicine, &household));
    Ok(OrderPlaced {
        order: command.order,
        community: household.community,
        building: household.building,
        unit: household.unit,
        household: household.household,
        partner: command.partner,
        lines: command.lines,
        priority,
        weight_g,
        on_behalf_by: command.on_behalf_by,
        campaign: None,
    })
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CancelOrder {
    pub order: String,
    pub reason: Option<String>,
}

/// Cancel before the partner picks.
pub fn cancel_order(
    views: &Views<'_>,
    command: CancelOrder,
) -> Result<OrderCancelled, CommandError> {
    let record = views
        .order(&command.order)?
        .ok_or_else(|| CommandError::UnknownOrder {
            order: command.order.clone(),
        })?;
    if record.status.next(Step::Cancel).is_err() {
        return Err(CommandError::NotCancellable {
            order: command.order,
            stage: record.status.stage.as_str(),
        });
    }
    Ok(OrderCancelled {
        order: command.order,
        community: record.community,
        reason: command
            .reason
            .unwrap_or_else(|| "cancelled by the household".into()),
    })
}
