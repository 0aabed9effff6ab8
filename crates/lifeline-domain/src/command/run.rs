//! The checkpoint and the tricycle: a vehicle's arrival, a run's departure and return,
//! and each drop at a door.

use std::collections::BTreeSet;

use lifeline_events::{
    ArrivedAtCheckpoint, DropDelivered, DropFailed, DropFailure, Event, Proof, RunDeparted,
    RunReturned,
};

use super::{CommandError, Views};
use crate::delivery::{OrderKind, RunRecord, RunState};
use crate::order::Stage;

/// An arrival carries 1 to this many orders.
pub const MAX_ARRIVAL_ORDERS: usize = 1000;

/// A partner's vehicle at the checkpoint with picked orders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arrival {
    /// The arrival's id (the gateway uses the event id).
    pub arrival: String,
    pub community: String,
    pub partner: String,
    /// Orders named one by one (may be empty when `batches` names pick sheets).
    pub orders: Vec<String>,
    /// The registered vehicle that brought them, and who drove it.
    pub vehicle: Option<String>,
    pub driver: Option<String>,
    /// Pick sheets carried whole: every order picked from them and not yet brought.
    pub batches: Vec<String>,
}

/// The size limits of an arrival, checked before anything is read.
fn check_arrival_shape(orders: &[String]) -> Result<(), CommandError> {
    if orders.is_empty() || orders.len() > MAX_ARRIVAL_ORDERS {
        return Err(CommandError::ArrivalSize {
            max: MAX_ARRIVAL_ORDERS,
        });
    }
    let mut seen = BTreeSet::new();
    if let Some(order) = orders.iter().find(|order| !seen.insert(order.as_str())) {
        return Err(CommandError::DuplicateOrder {
            order: order.clone(),
        });
    }
    Ok(())
}

/// The most orders a pick sheet (a batch) lists.
pub const MAX_BATCH_ORDERS: usize = 10_000;

/// How many pick sheets one arrival may carry.
pub const MAX_ARRIVAL_BATCHES: usize = 20;

/// Who drove a vehicle, as staff write it down.
pub const MAX_DRIVER_CHARS: usize = 64;

pub fn arrive(
    views: &Views<'_>,
    mut command: Arrival,
) -> Result<ArrivedAtCheckpoint, CommandError> {
    if !command.orders.is_empty() {
        check_arrival_shape(&command.orders)?;
    }
    if command.batches.len() > MAX_ARRIVAL_BATCHES {
        return Err(CommandError::OutOfRange {
            field: "batches",
            min: 0,
            max: MAX_ARRIVAL_BATCHES as i64,
        });
    }
    if let Some(driver) = &command.driver
        && (driver.trim().is_empty() || driver.chars().count() > MAX_DRIVER_CHARS)
    {
        return Err(CommandError::InvalidText {
            field: "driver",
            max: MAX_DRIVER_CHARS,
        });
    }
    if let Some(vehicle) = &command.vehicle {
        let known = views.vehicle(vehicle)?.is_some_and(|registered| {
            registered.community == command.community
                && registered
                    .partner
                    .as_ref()
                    .is_none_or(|owner| *owner == command.partner)
        });
        if !known {
            return Err(CommandError::UnknownVehicle {
                vehicle: vehicle.clone(),
                community: command.community,
                partner: command.partner,
            });
        }
    }
    // A sheet carried whole: its orders picked and still waiting for a vehicle.
    for batch in &command.batches {
        let rows = views.batch_orders(&command.partner, batch, MAX_BATCH_ORDERS + 1)?;
        if rows.len() > MAX_BATCH_ORDERS {
            return Err(CommandError::ArrivalSize {
                max: MAX_ARRIVAL_ORDERS,
            });
        }
        for order in rows {
            if command.orders.contains(&order) {
                continue;
            }
            if views
                .order(&order)?
                .is_some_and(|record| record.status.stage == Stage::Picked)
            {
                command.orders.push(order);
            }
        }
    }
    check_arrival_shape(&command.orders)?;
    for order in &command.orders {
        let record = views
            .order(order)?
            .ok_or_else(|| CommandError::UnknownOrder {
                order: order.clone(),
            })?;
        if record.community != command.community || record.partner != command.partner {
            return Err(CommandError::OrderElsewhere {
                order: order.clone(),
                partner: command.partner,
                community: command.community,
            });
        }
        if record.status.stage != Stage::Picked {
            return Err(CommandError::NotPicked {
                order: order.clone(),
                stage: record.status.stage.as_str(),
            });
        }
    }
    Ok(ArrivedAtCheckpoint {
        arrival: command.arrival,
        community: command.community,
        partner: command.partner,
        orders: command.orders,
        vehicle: command.vehicle,
        driver: command.driver,
        batches: command.batches,
    })
}

fn known_run(views: &Views<'_>, run: &str) -> Result<RunRecord, CommandError> {
    views.run(run)?.ok_or_else(|| CommandError::UnknownRun {
        run: run.to_owned(),
    })
}

/// The work group whose volunteers carry to the door of a sealed building or unit.
pub const DOOR_TO_DOOR_GROUP: &str = "rapid_delivery";

/// The work groups whose volunteers ride tricycle runs. Security, disinfection, liaison and
/// the hotlines have their own work; a run does not leave with one of them.
pub const RIDING_GROUPS: [&str; 3] = ["rapid_delivery", "supplies", "medicine_runs"];

/// A planned run leaves with its courier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DepartRun {
    pub run: String,
    /// The volunteer riding; a run does not leave without one.
    pub courier: Option<String>,
}

pub fn depart_run(views: &Views<'_>, command: DepartRun) -> Result<RunDeparted, CommandError> {
    let record = known_run(views, &command.run)?;
    let courier = command.courier.ok_or(CommandError::CourierRequired)?;
    let volunteer = views.volunteer(&courier)?;
    if volunteer
        .as_ref()
        .is_none_or(|volunteer| volunteer.community != record.community)
    {
        return Err(CommandError::UnknownCourier {
            courier,
            community: record.community,
        });
    }
    if record.state != RunState::Planned {
        return Err(CommandError::RunNotPlanned {
            run: command.run,
            state: record.state.as_str(),
        });
    }
    let group = volunteer
        .map(|volunteer| volunteer.group)
        .unwrap_or_default();
    if !RIDING_GROUPS.contains(&group.as_str()) {
        return Err(CommandError::NotARider { courier, group });
    }
    // Only the door-to-door group enters a sealed building or unit.
    if group != DOOR_TO_DOOR_GROUP {
        for order in &record.orders {
            if let Some(order) = views.order(order)?
                && views.behind_seal(&order.community, &order.building, &order.unit)?
            {
                return Err(CommandError::CourierNotCleared {
                    courier,
                    building: order.building,
                });
            }
        }
    }
    Ok(RunDeparted {
        run: command.run,
        community: record.community,
        tricycle: record.tricycle,
        courier,
    })
}

/// A departed run is back at the checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReturnRun {
    pub run: String,
}

pub fn return_run(views: &Views<'_>, command: ReturnRun) -> Result<RunReturned, CommandError> {
    let record = known_run(views, &command.run)?;
    if record.state != RunState::Departed {
        return Err(CommandError::RunNotOut {
            run: command.run,
            state: record.state.as_str(),
        });
    }
    Ok(RunReturned {
        run: command.run,
        community: record.community,
        tricycle: record.tricycle,
    })
}

/// What happened at the door.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DropOutcome {
    Delivered {
        proof: Proof,
    },
    /// `reason` is required; `None` is refused.
    Failed {
        reason: Option<DropFailure>,
        note: Option<String>,
    },
}

/// One drop of a departed run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordDrop {
    pub run: String,
    pub order: String,
    pub outcome: DropOutcome,
}

pub fn record_drop(views: &Views<'_>, command: RecordDrop) -> Result<Event, CommandError> {
    let order = views
        .order(&command.order)?
        .ok_or_else(|| CommandError::UnknownOrder {
            order: command.order.clone(),
        })?;
    // An errand its volunteer takes straight to the door is its own run.
    let own_run = order.kind == OrderKind::Errand && command.run == command.order;
    let run_orders = if own_run {
        vec![order.order.clone()]
    } else {
        let run = known_run(views, &command.run)?;
        if run.state != RunState::Departed {
            return Err(CommandError::RunNotOut {
                run: command.run,
                state: run.state.as_str(),
            });
        }
        run.orders
    };
    let on_this_run = run_orders.contains(&command.order)
        && order.status.stage == Stage::OnRun
        && order.run.as_deref() == Some(command.run.as_str());
    if !on_this_run {
        return Err(CommandError::NotOnRun {
            order: command.order,
            run: command.run,
            stage: order.status.stage.as_str(),
        });
    }
    let community = order.community.clone();
    Ok(match command.outcome {
        // Behind a seal a drop is contactless: it needs a proof code or photo.
        DropOutcome::Delivered { proof }
            if proof.code.is_none()
                && proof.photo_sha256.is_none()
                && views.behind_seal(&order.community, &order.building, &order.unit)? =>
        {
            return Err(CommandError::ProofRequired {
                order: order.order,
                unit: order.unit,
            });
        }
        DropOutcome::Delivered { proof } => Event::DropDelivered(DropDelivered {
            order: order.order,
            run: command.run,
            community: community.clone(),
            household: order.household,
            proof,
        }),
        DropOutcome::Failed { reason, note } => Event::DropFailed(DropFailed {
            order: order.order,
            run: command.run,
            community: community.clone(),
            household: order.household,
            reason: reason.ok_or(CommandError::FailureNeedsReason)?,
            note,
        }),
    })
}
