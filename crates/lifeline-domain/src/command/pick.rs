//! A partner's pick of an order, and goods received into stock.

use std::collections::BTreeMap;

use lifeline_events::{OrderLine, OrderPicked, PickLine, PickOutcome, StockReceived};

use super::{CommandError, Views};
use crate::inventory::ReservationState;
use crate::order::Stage;

/// A restock adds 1 to this many of an item.
pub const MAX_RESTOCK: u32 = 1_000_000;

/// A pick's lines against the order's lines: each line consistent with its outcome, and
/// each ordered line answered once with its ordered quantity. The consumers apply the same
/// check to picks published straight to NATS.
pub fn check_pick_lines(ordered: &[OrderLine], lines: &[PickLine]) -> Result<(), CommandError> {
    if lines.is_empty() {
        return Err(CommandError::InvalidPick {
            detail: "a pick has no lines".into(),
        });
    }
    for line in lines {
        let consistent = match line.outcome {
            PickOutcome::Picked => line.picked == line.ordered && line.substitute.is_none(),
            PickOutcome::Short => line.picked < line.ordered && line.substitute.is_none(),
            // Part of the line (possibly none) picked, the rest replaced.
            PickOutcome::Substituted => {
                line.picked < line.ordered
                    && line.substitute.as_ref().is_some_and(|substitute| {
                        substitute.quantity > 0 && substitute.item != line.item
                    })
            }
        };
        if !consistent {
            return Err(CommandError::InvalidPick {
                detail: format!(
                    "line for {} is inconsistent with outcome {:?}",
                    line.item, line.outcome
                ),
            });
        }
    }
    let wanted: BTreeMap<&str, u32> = ordered
        .iter()
        .map(|line| (line.item.as_str(), line.quantity))
        .collect();
    let answered: BTreeMap<&str, u32> = lines
        .iter()
        .map(|line| (line.item.as_str(), line.ordered))
        .collect();
    if wanted != answered || answered.len() != lines.len() {
        return Err(CommandError::PickLinesMismatch);
    }
    Ok(())
}

/// A partner's pick of one of its orders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostPick {
    pub order: String,
    pub partner: String,
    pub lines: Vec<PickLine>,
    /// The pick sheet it was picked from, if any.
    pub batch: Option<String>,
}

/// The pick, if the order is the partner's, waiting to be picked, the lines answer each
/// ordered line once with known items, and the shelf holds what the pick takes.
pub fn pick_order(views: &Views<'_>, command: PostPick) -> Result<OrderPicked, CommandError> {
    let record = views
        .order(&command.order)?
        .ok_or_else(|| CommandError::UnknownOrder {
            order: command.order.clone(),
        })?;
    if record.partner != command.partner {
        return Err(CommandError::WrongPartner {
            order: record.order,
            partner: record.partner,
        });
    }
    if record.status.stage != Stage::Placed {
        return Err(CommandError::NotWaitingForPick {
            order: record.order,
            stage: record.status.stage.as_str(),
        });
    }
    check_pick_lines(&record.items, &command.lines)?;
    for substitute in command
        .lines
        .iter()
        .filter_map(|line| line.substitute.as_ref())
    {
        if views.item(&substitute.item)?.is_none() {
            return Err(CommandError::UnknownItem {
                item: substitute.item.clone(),
            });
        }
    }
    check_pick_stock(views, &record.order, &command.partner, &command.lines)?;
    Ok(OrderPicked {
        order: record.order,
        community: record.community,
        partner: command.partner,
        lines: command.lines,
        batch: command.batch,
    })
}

/// What the pick takes off the shelf must be there: the pick releases the order's own
/// reservation first, then each line and substitute needs available stock. (Inventory
/// would otherwise refuse the pick that delivery accepted.)
fn check_pick_stock(
    views: &Views<'_>,
    order: &str,
    partner: &str,
    lines: &[PickLine],
) -> Result<(), CommandError> {
    let reservation = views
        .reservation(order)?
        .ok_or_else(|| CommandError::NotYetVisible {
            what: format!("the reservation of order {order}"),
        })?;
    let mut available: BTreeMap<String, u64> = BTreeMap::new();
    for line in lines {
        for item in std::iter::once(&line.item).chain(line.substitute.as_ref().map(|s| &s.item)) {
            if !available.contains_key(item) {
                available.insert(item.clone(), views.stock(partner, item)?.available());
            }
        }
    }
    // Only a held reservation goes back on the shelf with the pick.
    if reservation.state == ReservationState::Held {
        for line in &reservation.lines {
            if let Some(left) = available.get_mut(&line.item) {
                *left += u64::from(line.reserved);
            }
        }
    }
    let mut take = |item: &str, quantity: u32| -> Result<(), CommandError> {
        let left = available.entry(item.to_owned()).or_default();
        if *left < u64::from(quantity) {
            return Err(CommandError::InsufficientStock {
                item: item.to_owned(),
                available: *left,
                wanted: u64::from(quantity),
            });
        }
        *left -= u64::from(quantity);
        Ok(())
    };
    for line in lines {
        take(&line.item, line.picked)?;
        if let Some(substitute) = &line.substitute {
            take(&substitute.item, substitute.quantity)?;
        }
    }
    Ok(())
}

/// Goods received into a partner's stock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restock {
    pub partner: String,
    pub item: String,
    pub quantity: u32,
}

pub fn restock(views: &Views<'_>, command: Restock) -> Result<StockReceived, CommandError> {
    if !(1..=MAX_RESTOCK).contains(&command.quantity) {
        return Err(CommandError::QuantityOutOfRange {
            item: command.item,
            min: 1,
            max: MAX_RESTOCK,
        });
    }
    if views.item(&command.item)?.is_none() {
        return Err(CommandError::UnknownItem { item: command.item });
    }
    Ok(StockReceived {
        partner: command.partner,
        item: command.item,
        quantity: command.quantity,
    })
}
