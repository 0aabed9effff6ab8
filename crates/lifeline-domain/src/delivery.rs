//! Delivery status: each order's stage with the time of every transition, and lookups by
//! household, building and run. Impossible transitions are rejected (and so parked).

use lifeline_events::{Envelope, Event, OrderPicked, PickOutcome, Priority};
use serde::{Deserialize, Serialize};

use crate::order::{OrderStatus, Stage, Step};
use crate::{Applied, Handler, Rejection, StateTx, StateTxExt};

pub const NAME: &str = "delivery";
pub const ORDERS: &str = "orders";
/// Index rows `<household>/<order>` with an empty value.
pub const BY_HOUSEHOLD: &str = "by_household";
/// Index rows `<building>/<order>` with an empty value.
pub const BY_BUILDING: &str = "by_building";
pub const RUNS: &str = "runs";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transition {
    pub stage: Stage,
    /// RFC 3339 time of the event that caused the transition.
    pub at: String,
    pub event_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderRecord {
    pub order: String,
    pub community: String,
    pub building: String,
    pub unit: String,
    pub household: String,
    pub partner: String,
    pub priority: Priority,
    pub status: OrderStatus,
    pub is_final: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<String>,
    pub history: Vec<Transition>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunState {
    Planned,
    Departed,
    Returned,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunRecord {
    pub run: String,
    pub community: String,
    pub tricycle: String,
    pub state: RunState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub courier: Option<String>,
    pub orders: Vec<String>,
    pub planned_at: String,
}

#[derive(Debug, Default)]
pub struct DeliveryStatus;

/// Checks that a pick's lines are self-consistent (shared with the inventory rules).
pub fn validate_pick_lines(picked: &OrderPicked) -> Result<(), Rejection> {
    if picked.lines.is_empty() {
        return Err(Rejection::new("invalid_pick", "a pick has no lines"));
    }
    for line in &picked.lines {
        let consistent = match line.outcome {
            PickOutcome::Picked => line.picked == line.ordered && line.substitute.is_none(),
            PickOutcome::Short => line.picked < line.ordered && line.substitute.is_none(),
            PickOutcome::Substituted => line
                .substitute
                .as_ref()
                .is_some_and(|substitute| substitute.quantity > 0 && substitute.item != line.item),
        };
        if !consistent {
            return Err(Rejection::new(
                "invalid_pick",
                format!(
                    "line for {} is inconsistent with outcome {:?}",
                    line.item, line.outcome
                ),
            ));
        }
    }
    Ok(())
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
        .ok_or_else(|| Rejection::new("unknown_order", order.to_owned()))
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
        Rejection::new("impossible_transition", format!("order {order}: {error}"))
    })?;
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
        .ok_or_else(|| Rejection::new("unknown_run", run.to_owned()))
}

/// A drop must be for an order on that run, and the run must be out.
fn check_drop(state: &dyn StateTx, order: &str, run: &str) -> Result<(), Rejection> {
    let record = load_order(state, order)?;
    if record.status.stage != Stage::OnRun || record.run.as_deref() != Some(run) {
        return Err(Rejection::new(
            "impossible_transition",
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
        &[ORDERS, BY_HOUSEHOLD, BY_BUILDING, RUNS]
    }

    fn apply(
        &self,
        state: &mut dyn StateTx,
        envelope: &Envelope,
        _emit: &mut Vec<Envelope>,
    ) -> Result<Applied, Rejection> {
        match &envelope.event {
            Event::OrderPlaced(placed) => {
                if state.get(ORDERS, &placed.order).is_some() {
                    return Err(Rejection::new("duplicate_order", placed.order.clone()));
                }
                let record = OrderRecord {
                    order: placed.order.clone(),
                    community: placed.community.clone(),
                    building: placed.building.clone(),
                    unit: placed.unit.clone(),
                    household: placed.household.clone(),
                    partner: placed.partner.clone(),
                    priority: placed.priority,
                    status: OrderStatus::placed(),
                    is_final: false,
                    run: None,
                    history: vec![Transition {
                        stage: Stage::Placed,
                        at: time_text(envelope),
                        event_id: envelope.id.to_string(),
                        detail: placed
                            .on_behalf_by
                            .as_ref()
                            .map(|staff| format!("placed by staff {staff}")),
                    }],
                };
                state.put_json(ORDERS, &placed.order, &record);
                state.put(
                    BY_HOUSEHOLD,
                    &format!("{}/{}", placed.household, placed.order),
                    Vec::new(),
                );
                state.put(
                    BY_BUILDING,
                    &format!("{}/{}", placed.building, placed.order),
                    Vec::new(),
                );
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
                validate_pick_lines(picked)?;
                let record = load_order(state, &picked.order)?;
                if record.partner != picked.partner {
                    return Err(Rejection::new(
                        "wrong_partner",
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
                Ok(Applied::Changed)
            }
            Event::ArrivedAtCheckpoint(arrival) => {
                for order in &arrival.orders {
                    step_order(state, envelope, order, Step::ArriveAtCheckpoint, None, None)?;
                }
                Ok(Applied::Changed)
            }
            Event::RunPlanned(planned) => {
                if state.get(RUNS, &planned.run).is_some() {
                    return Err(Rejection::new("duplicate_run", planned.run.clone()));
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
                };
                state.put_json(RUNS, &planned.run, &run);
                Ok(Applied::Changed)
            }
            Event::RunDeparted(departed) => {
                let mut run = load_run(state, &departed.run)?;
                if run.state != RunState::Planned {
                    return Err(Rejection::new(
                        "impossible_transition",
                        format!("run {} departed while {:?}", run.run, run.state),
                    ));
                }
                run.state = RunState::Departed;
                run.courier = Some(departed.courier.clone());
                state.put_json(RUNS, &departed.run, &run);
                Ok(Applied::Changed)
            }
            Event::RunReturned(returned) => {
                let mut run = load_run(state, &returned.run)?;
                if run.state != RunState::Departed {
                    return Err(Rejection::new(
                        "impossible_transition",
                        format!("run {} returned while {:?}", run.run, run.state),
                    ));
                }
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
                run.state = RunState::Returned;
                state.put_json(RUNS, &returned.run, &run);
                Ok(Applied::Changed)
            }
            Event::DropDelivered(delivered) => {
                check_drop(state, &delivered.order, &delivered.run)?;
                step_order(state, envelope, &delivered.order, Step::Deliver, None, None)?;
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
                Ok(Applied::Changed)
            }
            _ => Ok(Applied::Ignored),
        }
    }
}
