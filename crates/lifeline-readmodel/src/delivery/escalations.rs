//! The escalation list staff work from: final failures from the escalations index, and
//! orders past their overdue time from the open-orders index (oldest first, reading only
//! the overdue ones). See `lifeline_domain::delivery::escalation` for the rules.

use std::collections::BTreeMap;

use lifeline_domain::delivery::escalation::{EscalationKey, overdue_after_seconds};
use lifeline_domain::delivery::keys::OpenKey;
use lifeline_domain::delivery::{ESCALATIONS, EscalationReason, OPEN, OrderRecord};
use lifeline_events::Priority;
use lifeline_store::{ProjectionStore, StoreError};

/// An order waiting for staff: why, and since when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Escalated {
    pub record: OrderRecord,
    pub reason: EscalationReason,
    /// Unix milliseconds at which it escalated.
    pub since_ms: u64,
}

/// Open orders of every community past their overdue time at `now_ms`, oldest first per
/// priority.
fn overdue(store: &ProjectionStore, now_ms: u64) -> Result<Vec<Escalated>, StoreError> {
    let mut found = Vec::new();
    for priority in Priority::ALL {
        let after_ms = u64::try_from(overdue_after_seconds(priority)).unwrap_or(0) * 1000;
        let Some(cutoff) = now_ms.checked_sub(after_ms) else {
            continue;
        };
        // Every open key of this priority placed at or before the cutoff sorts below this.
        let bound = OpenKey {
            priority,
            placed_at_ms: cutoff.saturating_add(1),
            order: String::new(),
        }
        .key();
        for (key, _) in store.scan_range(OPEN, &OpenKey::prefix(priority), &bound)? {
            let Some(open) = OpenKey::parse(&key) else {
                continue;
            };
            if let Some(record) = super::order(store, &open.order)? {
                found.push(Escalated {
                    since_ms: open.placed_at_ms.saturating_add(after_ms),
                    reason: EscalationReason::Overdue,
                    record,
                });
            }
        }
    }
    Ok(found)
}

/// A community's open escalations at `now_ms`: most urgent first, then oldest.
pub fn escalations(
    store: &ProjectionStore,
    community: &str,
    now_ms: u64,
) -> Result<Vec<Escalated>, StoreError> {
    let mut list = Vec::new();
    for (key, _) in store.scan_prefix(ESCALATIONS, &EscalationKey::prefix(community))? {
        let Some(order) = EscalationKey::order_of(&key, community) else {
            continue;
        };
        if let Some(record) = super::order(store, order)?
            && let Some(escalation) = record.escalation.clone()
        {
            list.push(Escalated {
                reason: escalation.reason,
                since_ms: escalation.at_ms,
                record,
            });
        }
    }
    list.extend(
        overdue(store, now_ms)?
            .into_iter()
            .filter(|escalated| escalated.record.community == community),
    );
    list.sort_by_key(|escalated| {
        (
            std::cmp::Reverse(escalated.record.priority),
            escalated.since_ms,
        )
    });
    Ok(list)
}

/// Overdue orders counted by (community, priority), for the metrics.
pub fn overdue_counts(
    store: &ProjectionStore,
    now_ms: u64,
) -> Result<BTreeMap<(String, &'static str), u64>, StoreError> {
    let mut counts = BTreeMap::new();
    for escalated in overdue(store, now_ms)? {
        *counts
            .entry((
                escalated.record.community.clone(),
                escalated.record.priority.as_str(),
            ))
            .or_default() += 1;
    }
    Ok(counts)
}
