//! Escalations: no order leaves every list.
//!
//! An order that is neither delivered nor cancelled is always in exactly one of three
//! places ([`Disposition`]):
//!
//! - in progress: in the open-orders index, on its way;
//! - escalated, waiting for staff: it failed for good (the third failed drop, or nothing
//!   could be picked), or it is past its deadline by a margin ([`overdue_after_seconds`]);
//! - closed by staff with a recorded outcome (`escalation.closed.v1`).
//!
//! Final failures are escalated by the delivery handler when they happen, in the same
//! write as the failure (a row in the escalations index and a counter per community,
//! priority and reason). Overdue orders are not written anywhere when they become overdue:
//! time passing is not an event. They stay in the open-orders index, and every view and
//! metric reads them as escalated once `now` is past their overdue time. Closing an
//! overdue order records the escalation with its outcome and takes it out of the
//! open-orders index, so it is in exactly one place again.

use lifeline_events::{EscalationOutcome, Priority};
use serde::{Deserialize, Serialize};

use lifeline_events::Envelope;

use super::keys::{Counter, OpenKey};
use super::{ESCALATIONS, OPEN, ORDERS, OrderRecord, bump, load_order, time_text};
use crate::command::deadline_seconds;
use crate::order::Stage;
use crate::{Reason, Rejection, StateTx, StateTxExt};

/// Why an order waits for staff.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum EscalationReason {
    /// Three drops failed: the order will not ride again.
    DropsFailed,
    /// The partner could pick nothing of it.
    NothingPicked,
    /// Not delivered by its deadline plus a margin.
    Overdue,
}

impl EscalationReason {
    pub const ALL: [EscalationReason; 3] = [
        EscalationReason::DropsFailed,
        EscalationReason::NothingPicked,
        EscalationReason::Overdue,
    ];

    pub fn as_str(self) -> &'static str {
        lifeline_events::wire_name(&self)
    }
}

/// How staff closed an escalation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Closure {
    pub outcome: EscalationOutcome,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replacement: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// The staff member's actor id.
    pub by: String,
    /// RFC 3339 time of the closing event.
    pub at: String,
}

/// An order's escalation: why, since when, and how staff closed it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Escalation {
    pub reason: EscalationReason,
    /// Unix milliseconds at which it escalated.
    pub at_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closed: Option<Closure>,
}

/// Where an order is, for the "not one missed" lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "disposition", content = "why")]
pub enum Disposition {
    Delivered,
    Cancelled,
    InProgress,
    Escalated(EscalationReason),
    Closed(EscalationOutcome),
}

/// Seconds after placing at which an order that is not final escalates as overdue: its
/// delivery deadline plus a quarter of it (urgent 2 h 30 min, priority 7 h 30 min,
/// routine 15 h).
pub fn overdue_after_seconds(priority: Priority) -> i64 {
    let deadline = deadline_seconds(priority);
    deadline + deadline / 4
}

/// Unix milliseconds at which an order placed at `placed_at_ms` becomes overdue.
pub fn overdue_at_ms(priority: Priority, placed_at_ms: u64) -> u64 {
    let after_ms = u64::try_from(overdue_after_seconds(priority)).unwrap_or(0) * 1000;
    placed_at_ms.saturating_add(after_ms)
}

impl OrderRecord {
    /// Where the order is at `now_ms` (Unix milliseconds).
    pub fn disposition(&self, now_ms: u64) -> Disposition {
        match self.status.stage {
            Stage::Delivered => return Disposition::Delivered,
            Stage::Cancelled => return Disposition::Cancelled,
            _ => {}
        }
        if let Some(escalation) = &self.escalation {
            return match &escalation.closed {
                Some(closure) => Disposition::Closed(closure.outcome),
                None => Disposition::Escalated(escalation.reason),
            };
        }
        if !self.is_final && now_ms >= overdue_at_ms(self.priority, self.placed_at_ms) {
            return Disposition::Escalated(EscalationReason::Overdue);
        }
        Disposition::InProgress
    }
}

/// A row of the escalations index: `<community>/<priority rank>/<escalated ms, 16
/// digits>/<order>`, so a community's list reads most urgent, then oldest, first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EscalationKey {
    pub community: String,
    pub priority: Priority,
    pub at_ms: u64,
    pub order: String,
}

impl EscalationKey {
    pub fn key(&self) -> String {
        format!(
            "{}/{}/{:016}/{}",
            self.community,
            super::priority_rank(self.priority),
            self.at_ms,
            self.order
        )
    }

    /// The order a row of `community` points at.
    pub fn order_of<'a>(key: &'a str, community: &str) -> Option<&'a str> {
        let rest = key.strip_prefix(community)?.strip_prefix('/')?;
        let mut parts = rest.splitn(3, '/');
        parts.next()?;
        parts.next()?;
        parts.next()
    }

    /// The prefix of every row of `community`.
    pub fn prefix(community: &str) -> String {
        format!("{community}/")
    }
}

// ---- the handler's side: what the delivery projection writes ---------------------------

fn escalation_key(record: &OrderRecord, at_ms: u64) -> EscalationKey {
    EscalationKey {
        community: record.community.clone(),
        priority: record.priority,
        at_ms,
        order: record.order.clone(),
    }
}

pub(super) fn open(
    state: &mut dyn StateTx,
    envelope: &Envelope,
    record: &mut OrderRecord,
    reason: EscalationReason,
) -> Result<(), Rejection> {
    let at_ms = envelope.unix_millis();
    state.put(
        ESCALATIONS,
        &escalation_key(record, at_ms).key(),
        Vec::new(),
    );
    let counter = Counter::Escalations {
        community: record.community.clone(),
        priority: record.priority,
        reason,
    };
    bump(state, &counter.key(), 1)?;
    record.escalation = Some(Escalation {
        reason,
        at_ms,
        closed: None,
    });
    Ok(())
}

/// Staff closed an escalation: an open one leaves the escalations index; an overdue order
/// (escalated by time, never written) leaves the open orders. Either way it is in exactly
/// one place afterwards: closed.
pub(super) fn close(
    state: &mut dyn StateTx,
    envelope: &Envelope,
    closed: &lifeline_events::EscalationClosed,
) -> Result<(), Rejection> {
    let mut record = load_order(state, &closed.order)?;
    let closure = Closure {
        outcome: closed.outcome,
        replacement: closed.replacement.clone(),
        note: closed.note.clone(),
        by: envelope.actor.id.clone(),
        at: time_text(envelope),
    };
    match record.disposition(envelope.unix_millis()) {
        Disposition::Escalated(EscalationReason::Overdue) if record.escalation.is_none() => {
            let open = OpenKey {
                priority: record.priority,
                placed_at_ms: record.placed_at_ms,
                order: closed.order.clone(),
            };
            state.delete(OPEN, &open.key());
            // Closed while waiting for its pick (re-ordered elsewhere, say): off the sheets.
            if record.status.stage == crate::order::Stage::Placed {
                super::sheets::leave(state, &record);
            }
            record.escalation = Some(Escalation {
                reason: EscalationReason::Overdue,
                at_ms: overdue_at_ms(record.priority, record.placed_at_ms),
                closed: Some(closure),
            });
        }
        Disposition::Escalated(reason) => {
            let Some(escalation) = record.escalation.as_mut() else {
                return Err(Rejection::new(
                    Reason::CorruptState,
                    format!("order {} escalated without a record", closed.order),
                ));
            };
            let at_ms = escalation.at_ms;
            escalation.closed = Some(closure);
            state.delete(ESCALATIONS, &escalation_key(&record, at_ms).key());
            let counter = Counter::Escalations {
                community: record.community.clone(),
                priority: record.priority,
                reason,
            };
            bump(state, &counter.key(), -1)?;
        }
        other => {
            return Err(Rejection::new(
                Reason::ImpossibleTransition,
                format!("order {} is not escalated ({other:?})", closed.order),
            ));
        }
    }
    state.put_json(ORDERS, &closed.order, &record);
    Ok(())
}
