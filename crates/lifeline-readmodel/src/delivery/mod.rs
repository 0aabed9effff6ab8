//! The delivery-status consumer: each order's stage and history, with lookups by order,
//! household, building and run. Rules in `lifeline_domain::delivery`.

mod escalations;
pub mod metrics;

pub use escalations::{Escalated, escalations};

use std::collections::BTreeMap;

use lifeline_domain::delivery::keys;
use lifeline_domain::delivery::{BY_BUILDING, BY_HOUSEHOLD, ORDERS, OrderRecord, RUNS, RunRecord};
use lifeline_domain::order::Stage;
use lifeline_store::{ProjectionStore, StoreError, decode_row};

pub use lifeline_domain::delivery::NAME;

pub fn order(store: &ProjectionStore, order: &str) -> Result<Option<OrderRecord>, StoreError> {
    store.get_json(ORDERS, order)
}

fn orders_by_index(
    store: &ProjectionStore,
    index: &str,
    owner: &str,
) -> Result<Vec<OrderRecord>, StoreError> {
    let mut orders = Vec::new();
    for (key, _) in store.scan_prefix(index, &keys::index_prefix(owner))? {
        let Some(order_id) = keys::order_of_index_key(&key, owner) else {
            continue;
        };
        if let Some(record) = order(store, order_id)? {
            orders.push(record);
        }
    }
    Ok(orders)
}

pub fn orders_of_household(
    store: &ProjectionStore,
    household: &str,
) -> Result<Vec<OrderRecord>, StoreError> {
    orders_by_index(store, BY_HOUSEHOLD, household)
}

pub fn orders_in_building(
    store: &ProjectionStore,
    building: &str,
) -> Result<Vec<OrderRecord>, StoreError> {
    orders_by_index(store, BY_BUILDING, building)
}

pub fn run(store: &ProjectionStore, run: &str) -> Result<Option<RunRecord>, StoreError> {
    store.get_json(RUNS, run)
}

pub fn all_runs(store: &ProjectionStore) -> Result<Vec<RunRecord>, StoreError> {
    store
        .scan_prefix(RUNS, "")?
        .into_iter()
        .map(|(key, bytes)| decode_row(RUNS, &key, &bytes))
        .collect()
}

pub fn all_orders(store: &ProjectionStore) -> Result<Vec<OrderRecord>, StoreError> {
    store
        .scan_prefix(ORDERS, "")?
        .into_iter()
        .map(|(key, bytes)| decode_row(ORDERS, &key, &bytes))
        .collect()
}

/// Orders counted by stage, and how many of them are final.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct StageCounts {
    pub by_stage: BTreeMap<&'static str, u64>,
    pub total: u64,
    pub finished: u64,
}

pub fn stage_counts(store: &ProjectionStore) -> Result<StageCounts, StoreError> {
    let mut counts = StageCounts::default();
    for stage in Stage::ALL {
        counts.by_stage.insert(stage.as_str(), 0);
    }
    for record in all_orders(store)? {
        *counts
            .by_stage
            .entry(record.status.stage.as_str())
            .or_default() += 1;
        counts.total += 1;
        if record.is_final {
            counts.finished += 1;
        }
    }
    Ok(counts)
}

/// Orders by (community, stage) now, from the projection's counters alone (a few rows,
/// whatever the number of orders).
pub fn stage_counters(
    store: &ProjectionStore,
) -> Result<BTreeMap<(String, &'static str), u64>, StoreError> {
    use lifeline_domain::delivery::STATS;
    use lifeline_domain::delivery::keys::Counter;
    let mut counts = BTreeMap::new();
    for (key, value) in store.scan_prefix(STATS, "")? {
        if let Some(Counter::Stage { community, stage }) = Counter::parse(&key) {
            counts.insert(
                (community, stage.as_str()),
                decode_row(STATS, &key, &value)?,
            );
        }
    }
    Ok(counts)
}

/// The operators' view of delivery, read from the projection's counters and indexes.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct OpsSnapshot {
    /// (community, stage) -> orders in that stage now.
    pub orders_by_stage: BTreeMap<(String, String), u64>,
    /// (community, outcome, reason) -> drops; reason is empty for delivered drops.
    pub drops: BTreeMap<(String, String, String), u64>,
    pub runs_in_progress: BTreeMap<String, u64>,
    /// priority -> age in seconds of its oldest undelivered order, now.
    pub oldest_undelivered_seconds: BTreeMap<&'static str, f64>,
    /// community -> vulnerable households without a delivery today.
    pub vulnerable_unserved: BTreeMap<String, u64>,
    /// community -> vulnerable households without a delivery for
    /// `UNSERVED_ALERT_HOURS` (since registration when never served), by the wall clock.
    pub vulnerable_unserved_24h: BTreeMap<String, u64>,
    /// (community, campaign, building, stage) -> the campaign's orders there now.
    pub campaign_orders: BTreeMap<(String, String, String, &'static str), u64>,
    /// (community, priority, reason) -> orders escalated to staff and not closed, now.
    pub escalations_open: BTreeMap<(String, &'static str, &'static str), u64>,
    /// The time of the last event applied (RFC 3339), the projection's "now".
    pub clock: Option<String>,
}

/// Reads the counters and indexes the delivery handler keeps; cheap enough for every scrape
/// (a few hundred rows at most: counters, the first open order per priority, vulnerable
/// households).
pub fn ops_snapshot(store: &ProjectionStore) -> Result<OpsSnapshot, StoreError> {
    use lifeline_domain::delivery::keys::{CLOCK, Counter, OpenKey};
    use lifeline_domain::delivery::{OPEN, STATS, VULNERABLE, VulnerableHousehold};
    use lifeline_events::Priority;

    let mut snapshot = OpsSnapshot::default();
    for (key, value) in store.scan_prefix(STATS, "")? {
        if key == CLOCK {
            snapshot.clock = Some(decode_row(STATS, &key, &value)?);
            continue;
        }
        let count: u64 = decode_row(STATS, &key, &value)?;
        match Counter::parse(&key) {
            Some(Counter::Stage { community, stage }) => {
                snapshot
                    .orders_by_stage
                    .insert((community, stage.as_str().to_owned()), count);
            }
            Some(Counter::Delivered { community }) => {
                snapshot
                    .drops
                    .insert((community, "delivered".to_owned(), String::new()), count);
            }
            Some(Counter::Failed { community, reason }) => {
                snapshot.drops.insert(
                    (community, "failed".to_owned(), reason.as_str().to_owned()),
                    count,
                );
            }
            Some(Counter::RunsOpen { community }) => {
                snapshot.runs_in_progress.insert(community, count);
            }
            Some(Counter::Campaign {
                community,
                campaign,
                building,
                stage,
            }) => {
                snapshot
                    .campaign_orders
                    .insert((community, campaign, building, stage.as_str()), count);
            }
            Some(Counter::Escalations {
                community,
                priority,
                reason,
            }) => {
                snapshot
                    .escalations_open
                    .insert((community, priority.as_str(), reason.as_str()), count);
            }
            None => {}
        }
    }
    // Ages and "today" are wall-clock facts: an order nobody touches keeps getting older.
    // "Today" is the calendar day in the community's offset, taken from its latest event.
    let offset = snapshot
        .clock
        .as_deref()
        .and_then(|text| {
            time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()
        })
        .map_or(time::UtcOffset::UTC, |time| time.offset());
    let now = time::OffsetDateTime::now_utc().to_offset(offset);
    for priority in Priority::ALL {
        let age = match store.first_with_prefix(OPEN, &OpenKey::prefix(priority))? {
            Some(key) => {
                let placed_ms =
                    OpenKey::parse(&key).map_or(0, |open| i128::from(open.placed_at_ms));
                ((now.unix_timestamp_nanos() / 1_000_000 - placed_ms) as f64 / 1000.0).max(0.0)
            }
            None => 0.0,
        };
        snapshot
            .oldest_undelivered_seconds
            .insert(priority.as_str(), age);
    }
    // Every community with orders exports every escalation series, at zero when none is
    // open, so an alert on it sees the series from the first scrape.
    let communities: std::collections::BTreeSet<String> = snapshot
        .orders_by_stage
        .keys()
        .map(|(community, _)| community.clone())
        .collect();
    for community in communities {
        for priority in Priority::ALL {
            for reason in lifeline_domain::delivery::EscalationReason::ALL {
                snapshot
                    .escalations_open
                    .entry((community.clone(), priority.as_str(), reason.as_str()))
                    .or_insert(0);
            }
        }
    }
    let now_ms = u64::try_from(now.unix_timestamp_nanos() / 1_000_000).unwrap_or(0);
    for ((community, priority), count) in escalations::overdue_counts(store, now_ms)? {
        snapshot.escalations_open.insert(
            (
                community,
                priority,
                lifeline_domain::delivery::EscalationReason::Overdue.as_str(),
            ),
            count,
        );
    }
    // "Today" follows event time: the day of the latest event, in its own offset, so a
    // replayed day reads as it did live.
    let date = clock_time(snapshot.clock.as_deref()).map_or(now.date(), |clock| clock.date());
    let today = Some(format!(
        "{:04}-{:02}-{:02}",
        date.year(),
        u8::from(date.month()),
        date.day()
    ));
    for (key, value) in store.scan_prefix(VULNERABLE, "")? {
        let household: VulnerableHousehold = decode_row(VULNERABLE, &key, &value)?;
        let entry = snapshot
            .vulnerable_unserved
            .entry(household.community.clone())
            .or_default();
        if household.last_served_day.is_none() || household.last_served_day != today {
            *entry += 1;
        }
        let long = snapshot
            .vulnerable_unserved_24h
            .entry(household.community.clone())
            .or_default();
        if household.unserved_for(now_ms, lifeline_domain::delivery::UNSERVED_ALERT_HOURS) {
            *long += 1;
        }
    }
    Ok(snapshot)
}

/// A partner's orders waiting for their pick in a community (or one building of it), in
/// walking order (building, unit, household), at most `limit`: what a pick sheet lists.
pub fn waiting_for_pick(
    store: &ProjectionStore,
    partner: &str,
    community: &str,
    building: Option<&str>,
    limit: usize,
) -> Result<Vec<OrderRecord>, StoreError> {
    use lifeline_domain::delivery::sheets;
    let prefix = sheets::picking_prefix(partner, community, building);
    let mut orders = Vec::new();
    for (key, _) in store.scan_prefix_from(sheets::PICKING, &prefix, &prefix, limit)? {
        if let Some(record) = order(store, sheets::order_of_picking_key(&key))? {
            orders.push(record);
        }
    }
    Ok(orders)
}

pub fn orders_of_partner(
    store: &ProjectionStore,
    partner: &str,
) -> Result<Vec<OrderRecord>, StoreError> {
    orders_by_index(store, lifeline_domain::delivery::BY_PARTNER, partner)
}

/// The projection's clock (the latest event's time), parsed.
fn clock_time(clock: Option<&str>) -> Option<time::OffsetDateTime> {
    time::OffsetDateTime::parse(clock?, &time::format_description::well_known::Rfc3339).ok()
}

/// Vulnerable households of `community` with no delivery today (the operators' "not one
/// missed" list), today being the day of the latest event, in its offset: event time, so
/// a replayed day reads the same as it did live.
pub fn vulnerable_unserved(
    store: &ProjectionStore,
    community: &str,
) -> Result<Vec<serde_json::Value>, StoreError> {
    use lifeline_domain::delivery::{STATS, VULNERABLE, VulnerableHousehold};
    let clock = store.get_json::<String>(STATS, lifeline_domain::delivery::keys::CLOCK)?;
    let offset = clock
        .clone()
        .and_then(|text| {
            time::OffsetDateTime::parse(&text, &time::format_description::well_known::Rfc3339).ok()
        })
        .map_or(time::UtcOffset::UTC, |time| time.offset());
    let date = clock_time(clock.as_deref()).map_or_else(
        || time::OffsetDateTime::now_utc().to_offset(offset).date(),
        |t| t.date(),
    );
    let today = format!(
        "{:04}-{:02}-{:02}",
        date.year(),
        u8::from(date.month()),
        date.day()
    );
    let mut unserved = Vec::new();
    for (household, bytes) in store.scan_prefix(VULNERABLE, "")? {
        let row: VulnerableHousehold = decode_row(VULNERABLE, &household, &bytes)?;
        if row.community == community && row.last_served_day.as_deref() != Some(today.as_str()) {
            unserved.push(serde_json::json!({
                "household": household,
                "building": row.building,
                "vulnerabilities": row.vulnerabilities,
                "last_served_day": row.last_served_day,
            }));
        }
    }
    Ok(unserved)
}

/// A campaign's orders per building and stage, from the counters the delivery handler
/// keeps: building -> stage -> orders.
pub fn campaign_progress(
    store: &ProjectionStore,
    community: &str,
    campaign: &str,
) -> Result<BTreeMap<String, BTreeMap<&'static str, u64>>, StoreError> {
    use lifeline_domain::delivery::STATS;
    let prefix = format!("campaign/{community}/{campaign}/");
    let mut progress: BTreeMap<String, BTreeMap<&'static str, u64>> = BTreeMap::new();
    for (key, value) in store.scan_prefix(STATS, &prefix)? {
        let count: u64 = decode_row(STATS, &key, &value)?;
        if let Some(keys::Counter::Campaign {
            building, stage, ..
        }) = keys::Counter::parse(&key)
        {
            progress
                .entry(building)
                .or_default()
                .insert(stage.as_str(), count);
        }
    }
    Ok(progress)
}

/// The orders placed for a campaign.
pub fn campaign_orders(
    store: &ProjectionStore,
    campaign: &str,
) -> Result<Vec<OrderRecord>, StoreError> {
    orders_by_index(store, lifeline_domain::delivery::BY_CAMPAIGN, campaign)
}

/// The coverage ledger of a community: households not delivered to within `hours` of the
/// projection's clock (event time), vulnerable first, then never served, then longest
/// since. Returns the clock used (Unix ms) with the rows.
pub fn unserved_households(
    store: &ProjectionStore,
    community: &str,
    hours: u64,
) -> Result<
    (
        u64,
        Vec<lifeline_domain::delivery::coverage::HouseholdCoverage>,
    ),
    StoreError,
> {
    use lifeline_domain::delivery::coverage::HouseholdCoverage;
    use lifeline_domain::delivery::{COVERAGE, STATS};
    let clock = store.get_json::<String>(STATS, keys::CLOCK)?;
    let now_ms = clock_time(clock.as_deref()).map_or(0, |time| {
        u64::try_from(time.unix_timestamp_nanos() / 1_000_000).unwrap_or(0)
    });
    let mut rows = Vec::new();
    for (key, value) in store.scan_prefix(COVERAGE, &keys::index_prefix(community))? {
        let row: HouseholdCoverage = decode_row(COVERAGE, &key, &value)?;
        if row.unserved_for(now_ms, hours) {
            rows.push(row);
        }
    }
    rows.sort_by_key(|row| {
        (
            !row.vulnerable,
            row.last_delivery_ms.is_some(),
            row.last_delivery_ms,
            row.household.clone(),
        )
    });
    Ok((now_ms, rows))
}
