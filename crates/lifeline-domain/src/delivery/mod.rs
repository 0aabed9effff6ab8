//! Delivery status: each order's stage with the time of every transition, and lookups by
//! household, building and run. Impossible transitions are rejected (and so parked).

use lifeline_events::{Envelope, Event, OrderLine, OrderPicked, Priority};
use serde::{Deserialize, Serialize};

use crate::command::check_pick_lines;
use crate::order::{OrderStatus, Stage, Step};
use crate::{Applied, Handler, Reason, Rejection, StateTx, StateTxExt};

pub mod coverage;
pub mod escalation;
mod intake;
pub mod keys;
pub mod sheets;

pub use escalation::{Closure, Disposition, Escalation, EscalationKey, EscalationReason};
pub use intake::{ErrandInfo, OrderKind, ParcelInfo};

pub const NAME: &str = "delivery";
pub const ORDERS: &str = "orders";
/// Index rows `<household>/<order>` with an empty value.
pub const BY_HOUSEHOLD: &str = "by_household";
/// Index rows `<building>/<order>` with an empty value.
pub const BY_BUILDING: &str = "by_building";
/// Index rows `<partner>/<order>` with an empty value.
pub const BY_PARTNER: &str = "by_partner";
pub const RUNS: &str = "runs";
/// Counters kept with the state, so metrics derived from them survive restarts and equal
/// a replay: `stage/<community>/<stage>`, `drops/<community>/delivered`,
/// `drops/<community>/failed/<reason>`, `runs_open/<community>`, and `clock` (the time of
/// the last event applied, the projection's idea of "now").
pub const STATS: &str = "stats";
/// Orders not yet final, keyed `<priority rank>/<placed unix ms, 16 digits>/<order>`, so
/// the first key under a priority is its oldest undelivered order.
pub const OPEN: &str = "open_orders";
/// The coverage ledger, one row per household: `<community>/<household>`.
pub const COVERAGE: &str = "coverage";
/// Index rows `<campaign>/<order>` with an empty value.
pub const BY_CAMPAIGN: &str = "by_campaign";
/// Open escalations of final failures, keyed by [`EscalationKey`], empty values.
pub const ESCALATIONS: &str = "escalations";
/// Vulnerable households, keyed by household, with the day they were last served.
pub const VULNERABLE: &str = "vulnerable";

/// Hours without a delivery after which a vulnerable household counts in
/// `lifeline_delivery_vulnerable_households_unserved_24h` (alert
/// `VulnerableHouseholdUnserved24h`).
pub const UNSERVED_ALERT_HOURS: u64 = 24;

/// A vulnerable household as the operators' board sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VulnerableHousehold {
    pub community: String,
    pub building: String,
    pub vulnerabilities: Vec<lifeline_events::Vulnerability>,
    /// `YYYY-MM-DD` of the last delivered drop, in the event's own offset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_served_day: Option<String>,
    /// Unix ms of the last delivered drop.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_served_ms: Option<u64>,
    /// Unix ms of the registration that first made the household vulnerable: the clock of
    /// "unserved for N hours" for a household never served.
    #[serde(default)]
    pub since_ms: u64,
}

impl VulnerableHousehold {
    /// No delivery within `hours` before `now_ms`, counting from its registration when it
    /// was never served.
    pub fn unserved_for(&self, now_ms: u64, hours: u64) -> bool {
        let since = self.last_served_ms.unwrap_or(self.since_ms);
        now_ms.saturating_sub(since) >= hours.saturating_mul(3_600_000)
    }
}

pub use keys::{Counter, OpenKey, priority_rank};

fn bump(state: &mut dyn StateTx, key: &str, delta: i64) -> Result<(), Rejection> {
    let current: i64 = state.get_json(STATS, key)?.unwrap_or(0);
    state.put_json(STATS, key, &(current + delta));
    Ok(())
}

/// The calendar day of an event, in its own offset.
pub fn day_of(envelope: &Envelope) -> String {
    let date = envelope.time.date();
    format!(
        "{:04}-{:02}-{:02}",
        date.year(),
        u8::from(date.month()),
        date.day()
    )
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Transition {
    pub stage: Stage,
    /// RFC 3339 time of the event that caused the transition.
    pub at: String,
    pub event_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OrderRecord {
    pub order: String,
    pub community: String,
    pub building: String,
    pub unit: String,
    pub household: String,
    /// The partner that picks it; empty for parcels and errands.
    #[serde(default)]
    pub partner: String,
    pub priority: Priority,
    /// Unix milliseconds of the `order.placed` event.
    #[serde(default)]
    pub placed_at_ms: u64,
    pub status: OrderStatus,
    pub is_final: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<String>,
    /// What goes to the door: the ordered lines, replaced by what was picked.
    #[serde(default)]
    pub items: Vec<OrderLine>,
    pub history: Vec<Transition>,
    /// The campaign it was placed for, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub campaign: Option<String>,
    /// Set when the order escalated to staff (and, once closed, how they closed it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub escalation: Option<Escalation>,
    #[serde(default)]
    pub kind: OrderKind,
    /// Carrier and tracking number of a parcel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parcel: Option<ParcelInfo>,
    /// Place, medicine and volunteer of an errand.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errand: Option<ErrandInfo>,
    /// The registered vehicle that brought it to the checkpoint, when the arrival said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vehicle: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum RunState {
    Planned,
    Departed,
    Returned,
}

/// What happens to a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunStep {
    Depart,
    Return,
}

impl RunState {
    /// The state after `step`, or `None` when the step is impossible.
    pub fn next(self, step: RunStep) -> Option<RunState> {
        match (self, step) {
            (RunState::Planned, RunStep::Depart) => Some(RunState::Departed),
            (RunState::Departed, RunStep::Return) => Some(RunState::Returned),
            _ => None,
        }
    }

    /// The wire name, as serde spells it (for messages and labels).
    pub fn as_str(self) -> &'static str {
        lifeline_events::wire_name(&self)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RunRecord {
    pub run: String,
    pub community: String,
    pub tricycle: String,
    pub state: RunState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub courier: Option<String>,
    pub orders: Vec<String>,
    pub planned_at: String,
    /// The route's length in metres, when dispatch routed the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distance_m: Option<u32>,
}

#[derive(Debug, Default)]
pub struct DeliveryStatus;

/// What a pick hands over: each line's picked quantity and any substitute.
pub fn picked_items(picked: &OrderPicked) -> Vec<OrderLine> {
    let mut items = Vec::new();
    for line in &picked.lines {
        if line.picked > 0 {
            items.push(OrderLine {
                item: line.item.clone(),
                quantity: line.picked,
            });
        }
        if let Some(substitute) = &line.substitute {
            items.push(OrderLine {
                item: substitute.item.clone(),
                quantity: substitute.quantity,
            });
        }
    }
    items
}

/// True when a pick hands over any goods at all.
pub fn anything_picked(picked: &OrderPicked) -> bool {
    picked
        .lines
        .iter()
        .any(|line| line.picked > 0 || line.substitute.is_some())
}

fn time_text(envelope: &Envelope) -> String {
    envelope
        .time
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

fn load_order(state: &dyn StateTx, order: &str) -> Result<OrderRecord, Rejection> {
    state
        .get_json::<OrderRecord>(ORDERS, order)?
        .ok_or_else(|| Rejection::new(Reason::UnknownOrder, order.to_owned()))
}

/// Moves an order one step and records the transition.
fn step_order(
    state: &mut dyn StateTx,
    envelope: &Envelope,
    order: &str,
    step: Step,
    detail: Option<String>,
    run: Option<&str>,
) -> Result<(), Rejection> {
    let mut record = load_order(state, order)?;
    let status = record.status.next(step).map_err(|error| {
        Rejection::new(
            Reason::ImpossibleTransition,
            format!("order {order}: {error}"),
        )
    })?;
    bump(
        state,
        &Counter::Stage {
            community: record.community.clone(),
            stage: record.status.stage,
        }
        .key(),
        -1,
    )?;
    bump(
        state,
        &Counter::Stage {
            community: record.community.clone(),
            stage: status.stage,
        }
        .key(),
        1,
    )?;
    if let Some(campaign) = &record.campaign {
        for (stage, delta) in [(record.status.stage, -1), (status.stage, 1)] {
            let counter = Counter::Campaign {
                community: record.community.clone(),
                campaign: campaign.clone(),
                building: record.building.clone(),
                stage,
            };
            bump(state, &counter.key(), delta)?;
        }
    }
    if record.status.stage == Stage::Placed && status.stage != Stage::Placed {
        sheets::leave(state, &record);
    }
    if status.is_final() && !record.is_final {
        let open = OpenKey {
            priority: record.priority,
            placed_at_ms: record.placed_at_ms,
            order: order.to_owned(),
        };
        state.delete(OPEN, &open.key());
        let reason = match status.stage {
            Stage::Failed => Some(EscalationReason::DropsFailed),
            Stage::NothingPicked => Some(EscalationReason::NothingPicked),
            _ => None,
        };
        // A final failure leaves the open orders for the escalations, in the same write;
        // an order staff already settled (closed as overdue) is not escalated twice.
        if let Some(reason) = reason
            && record.escalation.is_none()
        {
            escalation::open(state, envelope, &mut record, reason)?;
        }
    }
    record.status = status;
    record.is_final = status.is_final();
    if let Some(run) = run {
        record.run = Some(run.to_owned());
    }
    record.history.push(Transition {
        stage: status.stage,
        at: time_text(envelope),
        event_id: envelope.id.to_string(),
        detail,
    });
    state.put_json(ORDERS, order, &record);
    Ok(())
}

fn load_run(state: &dyn StateTx, run: &str) -> Result<RunRecord, Rejection> {
    state
        .get_json::<RunRecord>(RUNS, run)?
        .ok_or_else(|| Rejection::new(Reason::UnknownRun, run.to_owned()))
}

/// A drop must be for an order on that run, and the run must be out.
fn check_drop(state: &dyn StateTx, order: &str, run: &str) -> Result<(), Rejection> {
    let record = load_order(state, order)?;
    if record.status.stage != Stage::OnRun || record.run.as_deref() != Some(run) {
        return Err(Rejection::new(
            Reason::ImpossibleTransition,
            format!(
                "order {order} is {:?}, not on run {run}",
                record.status.stage
            ),
        ));
    }
    Ok(())
}

impl Handler for DeliveryStatus {
    fn name(&self) -> &'static str {
        NAME
    }

    fn tables(&self) -> &'static [&'static str] {
        &[
            ORDERS,
            BY_HOUSEHOLD,
            BY_BUILDING,
            BY_PARTNER,
            RUNS,
            STATS,
            OPEN,
            VULNERABLE,
            ESCALATIONS,
            BY_CAMPAIGN,
            COVERAGE,
            sheets::PICKING,
            sheets::BY_BATCH,
        ]
    }

    fn apply(
        &self,
        state: &mut dyn StateTx,
        envelope: &Envelope,
        _emit: &mut Vec<Envelope>,
    ) -> Result<Applied, Rejection> {
        let applied = apply_event(state, envelope)?;
        if applied == Applied::Changed {
            state.put_json(STATS, keys::CLOCK, &time_text(envelope));
        }
        Ok(applied)
    }

    /// Coverage and "unserved today" read the clock: another partition's events move it
    /// too, so a quiet partition's households still age.
    fn keeps_clock(&self) -> bool {
        true
    }

    fn stepped_over(&self, state: &mut dyn StateTx, time: time::OffsetDateTime) {
        let text = time.format(&time::format_description::well_known::Rfc3339);
        state.put_json(STATS, keys::CLOCK, &text.unwrap_or_default());
    }
}

fn apply_event(state: &mut dyn StateTx, envelope: &Envelope) -> Result<Applied, Rejection> {
    match &envelope.event {
        Event::OrderPlaced(placed) => {
            intake::placed(state, envelope, placed)?;
            Ok(Applied::Changed)
        }
        Event::ParcelReceived(parcel) => {
            intake::parcel(state, envelope, parcel)?;
            Ok(Applied::Changed)
        }
        Event::ErrandRequested(errand) => {
            intake::errand_requested(state, envelope, errand)?;
            Ok(Applied::Changed)
        }
        Event::ErrandAccepted(accepted) => {
            intake::errand_accepted(state, envelope, accepted)?;
            Ok(Applied::Changed)
        }
        Event::ErrandCollected(collected) => {
            intake::errand_collected(state, envelope, collected)?;
            Ok(Applied::Changed)
        }
        Event::OrderReprioritized(raised) => {
            let mut record = load_order(state, &raised.order)?;
            // Final, or escalated (an overdue order staff closed is in no open list): the
            // raise changes nothing.
            if raised.priority <= record.priority || record.is_final || record.escalation.is_some()
            {
                return Ok(Applied::Ignored);
            }
            // The open-orders index is keyed by priority: the order moves to its new part.
            let mut open = OpenKey {
                priority: record.priority,
                placed_at_ms: record.placed_at_ms,
                order: record.order.clone(),
            };
            state.delete(OPEN, &open.key());
            open.priority = raised.priority;
            state.put(OPEN, &open.key(), Vec::new());
            record.priority = raised.priority;
            state.put_json(ORDERS, &raised.order, &record);
            Ok(Applied::Changed)
        }
        Event::OrderCancelled(cancelled) => {
            step_order(
                state,
                envelope,
                &cancelled.order,
                Step::Cancel,
                Some(cancelled.reason.clone()),
                None,
            )?;
            Ok(Applied::Changed)
        }
        Event::OrderPicked(picked) => {
            let record = load_order(state, &picked.order)?;
            // The same line rules as the pick command, for picks published straight to
            // NATS. Checked only while the order waits for its pick (its items are still
            // the ordered lines); a later pick is an impossible transition below.
            if record.status.stage == Stage::Placed {
                check_pick_lines(&record.items, &picked.lines)
                    .map_err(|error| Rejection::new(Reason::InvalidPick, error.to_string()))?;
            }
            if record.partner != picked.partner {
                return Err(Rejection::new(
                    Reason::WrongPartner,
                    format!(
                        "order {} belongs to partner {}",
                        picked.order, record.partner
                    ),
                ));
            }
            let anything = anything_picked(picked);
            let detail = (!anything).then(|| "nothing could be picked".to_owned());
            step_order(
                state,
                envelope,
                &picked.order,
                Step::Pick {
                    anything_picked: anything,
                },
                detail,
                None,
            )?;
            let mut record = load_order(state, &picked.order)?;
            record.items = picked_items(picked);
            state.put_json(ORDERS, &picked.order, &record);
            if anything {
                sheets::picked_from(state, picked);
            }
            Ok(Applied::Changed)
        }
        Event::ArrivedAtCheckpoint(arrival) => {
            for order in &arrival.orders {
                step_order(state, envelope, order, Step::ArriveAtCheckpoint, None, None)?;
                if arrival.vehicle.is_some() {
                    let mut record = load_order(state, order)?;
                    record.vehicle.clone_from(&arrival.vehicle);
                    state.put_json(ORDERS, order, &record);
                }
            }
            Ok(Applied::Changed)
        }
        Event::RunPlanned(planned) => {
            if state.get(RUNS, &planned.run).is_some() {
                return Err(Rejection::new(Reason::DuplicateRun, planned.run.clone()));
            }
            let orders: Vec<String> = planned.orders().cloned().collect();
            for order in &orders {
                step_order(
                    state,
                    envelope,
                    order,
                    Step::PlanOnRun,
                    Some(format!("run {}", planned.run)),
                    Some(&planned.run),
                )?;
            }
            let run = RunRecord {
                run: planned.run.clone(),
                community: planned.community.clone(),
                tricycle: planned.tricycle.clone(),
                state: RunState::Planned,
                courier: None,
                orders,
                planned_at: time_text(envelope),
                distance_m: planned.distance_m,
            };
            state.put_json(RUNS, &planned.run, &run);
            let runs_open = Counter::RunsOpen {
                community: planned.community.clone(),
            };
            bump(state, &runs_open.key(), 1)?;
            Ok(Applied::Changed)
        }
        Event::RunDeparted(departed) => {
            let mut run = load_run(state, &departed.run)?;
            run.state = run.state.next(RunStep::Depart).ok_or_else(|| {
                Rejection::new(
                    Reason::ImpossibleTransition,
                    format!("run {} departed while {}", run.run, run.state.as_str()),
                )
            })?;
            run.courier = Some(departed.courier.clone());
            state.put_json(RUNS, &departed.run, &run);
            Ok(Applied::Changed)
        }
        Event::RunReturned(returned) => {
            let mut run = load_run(state, &returned.run)?;
            let returned_state = run.state.next(RunStep::Return).ok_or_else(|| {
                Rejection::new(
                    Reason::ImpossibleTransition,
                    format!("run {} returned while {}", run.run, run.state.as_str()),
                )
            })?;
            for order in &run.orders {
                let record = load_order(state, order)?;
                if record.status.stage == Stage::OnRun
                    && record.run.as_deref() == Some(run.run.as_str())
                {
                    step_order(
                        state,
                        envelope,
                        order,
                        Step::ReturnUndropped,
                        Some("returned undropped".to_owned()),
                        None,
                    )?;
                }
            }
            run.state = returned_state;
            state.put_json(RUNS, &returned.run, &run);
            let runs_open = Counter::RunsOpen {
                community: run.community.clone(),
            };
            bump(state, &runs_open.key(), -1)?;
            Ok(Applied::Changed)
        }
        Event::DropDelivered(delivered) => {
            check_drop(state, &delivered.order, &delivered.run)?;
            step_order(state, envelope, &delivered.order, Step::Deliver, None, None)?;
            let counter = Counter::Delivered {
                community: delivered.community.clone(),
            };
            bump(state, &counter.key(), 1)?;
            let at = coverage::at(envelope);
            coverage::touch(state, &delivered.community, &delivered.household, |row| {
                row.last_delivery_ms = Some(at);
                row.last_attempt_ms = Some(at);
            })?;
            if let Some(mut household) =
                state.get_json::<VulnerableHousehold>(VULNERABLE, &delivered.household)?
            {
                household.last_served_day = Some(day_of(envelope));
                household.last_served_ms = Some(at);
                state.put_json(VULNERABLE, &delivered.household, &household);
            }
            Ok(Applied::Changed)
        }
        Event::DropFailed(failed) => {
            check_drop(state, &failed.order, &failed.run)?;
            step_order(
                state,
                envelope,
                &failed.order,
                Step::FailDrop,
                Some(failed.reason.as_str().to_owned()),
                None,
            )?;
            let counter = Counter::Failed {
                community: failed.community.clone(),
                reason: failed.reason,
            };
            bump(state, &counter.key(), 1)?;
            let at = coverage::at(envelope);
            coverage::touch(state, &failed.community, &failed.household, |row| {
                row.last_attempt_ms = Some(at);
            })?;
            Ok(Applied::Changed)
        }
        Event::EscalationClosed(closed) => {
            escalation::close(state, envelope, closed)?;
            Ok(Applied::Changed)
        }
        Event::HouseholdRegistered(household) => {
            coverage::touch(state, &household.community, &household.household, |row| {
                row.building = household.building.clone();
                row.vulnerable = !household.vulnerabilities.is_empty();
            })?;
            if household.vulnerabilities.is_empty() {
                // A household re-registered as no longer vulnerable leaves the list.
                if state.get(VULNERABLE, &household.household).is_some() {
                    state.delete(VULNERABLE, &household.household);
                }
                return Ok(Applied::Changed);
            }
            let known = state.get_json::<VulnerableHousehold>(VULNERABLE, &household.household)?;
            let row = VulnerableHousehold {
                community: household.community.clone(),
                building: household.building.clone(),
                vulnerabilities: household.vulnerabilities.clone(),
                last_served_day: known.as_ref().and_then(|k| k.last_served_day.clone()),
                last_served_ms: known.as_ref().and_then(|k| k.last_served_ms),
                since_ms: known.map_or(envelope.unix_millis(), |k| k.since_ms),
            };
            state.put_json(VULNERABLE, &household.household, &row);
            Ok(Applied::Changed)
        }
        _ => Ok(Applied::Ignored),
    }
}

#[cfg(test)]
mod examples;
#[cfg(test)]
mod tests;
