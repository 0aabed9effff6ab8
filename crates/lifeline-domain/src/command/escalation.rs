//! Staff close an escalated order with a recorded outcome.

use lifeline_events::{EscalationClosed, EscalationOutcome};

use super::{CommandError, Views};
use crate::delivery::Disposition;

/// The longest note staff may leave on a closed escalation, in characters.
pub const MAX_NOTE_CHARS: usize = 500;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseEscalation {
    pub order: String,
    pub outcome: EscalationOutcome,
    /// The new order placed for the household, with outcome `reordered`.
    pub replacement: Option<String>,
    pub note: Option<String>,
}

/// Close an escalation: the order must be escalated now (a final failure not yet closed,
/// or overdue at `now_ms`). A replacement order must be one of the same household's, and
/// is only for `reordered`.
pub fn close_escalation(
    views: &Views<'_>,
    command: CloseEscalation,
    now_ms: u64,
) -> Result<EscalationClosed, CommandError> {
    let record = views
        .order(&command.order)?
        .ok_or_else(|| CommandError::UnknownOrder {
            order: command.order.clone(),
        })?;
    if let Some(note) = &command.note
        && note.chars().count() > MAX_NOTE_CHARS
    {
        return Err(CommandError::NoteTooLong {
            max: MAX_NOTE_CHARS,
        });
    }
    if let Some(replacement) = &command.replacement {
        if command.outcome != EscalationOutcome::Reordered {
            return Err(CommandError::InvalidReplacement {
                detail: "a replacement order goes with outcome reordered".into(),
            });
        }
        let same_household = views.order(replacement)?.is_some_and(|other| {
            other.household == record.household && other.order != record.order
        });
        if !same_household {
            return Err(CommandError::InvalidReplacement {
                detail: format!(
                    "{replacement} is not another order of household {}",
                    record.household
                ),
            });
        }
    }
    match record.disposition(now_ms) {
        Disposition::Escalated(_) => Ok(EscalationClosed {
            order: command.order,
            community: record.community,
            outcome: command.outcome,
            replacement: command.replacement,
            note: command.note,
        }),
        other => Err(CommandError::NotEscalated {
            order: command.order,
            disposition: disposition_name(other),
        }),
    }
}

fn disposition_name(disposition: Disposition) -> &'static str {
    match disposition {
        Disposition::Delivered => "delivered",
        Disposition::Cancelled => "cancelled",
        Disposition::InProgress => "in progress",
        Disposition::Escalated(_) => "escalated",
        Disposition::Closed(_) => "already closed",
    }
}
