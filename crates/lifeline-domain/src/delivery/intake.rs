//! How an order enters the delivery status, whatever its kind: goods placed with a partner,
//! a parcel handed in at the checkpoint, or a medicine errand a volunteer runs. From the
//! checkpoint on, all three follow the same lifecycle (runs, drops, escalations, the
//! coverage ledger); before it, each has its own steps.

use lifeline_events::{
    Envelope, ErrandAccepted, ErrandCollected, ErrandRequested, ErrandRoute, OrderPlaced,
    ParcelReceived, Priority,
};
use serde::{Deserialize, Serialize};

use super::{
    BY_BUILDING, BY_CAMPAIGN, BY_HOUSEHOLD, BY_PARTNER, Counter, OPEN, ORDERS, OpenKey,
    OrderRecord, Transition, bump, coverage, keys, load_order, step_order, time_text,
};
use crate::order::{OrderStatus, Step};
use crate::{Reason, Rejection, StateTx, StateTxExt};

/// What an order carries to the door, and so which steps lead to the checkpoint.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum OrderKind {
    /// Picked by a supermarket partner, brought to the checkpoint in its vehicle.
    #[default]
    Goods,
    /// A courier company's parcel, recorded by staff at the checkpoint.
    Parcel,
    /// A prescription a volunteer collects from a hospital or pharmacy.
    Errand,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ParcelInfo {
    pub carrier: String,
    pub tracking: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrandInfo {
    pub place: String,
    pub medicine: String,
    /// The volunteer who took it on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volunteer: Option<String>,
    /// Where it went once collected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<ErrandRoute>,
}

/// A new order of any kind, before it is written.
pub(super) struct NewOrder<'a> {
    pub order: &'a str,
    pub community: &'a str,
    pub building: &'a str,
    pub unit: &'a str,
    pub household: &'a str,
    pub priority: Priority,
    pub kind: OrderKind,
    pub status: OrderStatus,
    pub detail: Option<String>,
}

impl NewOrder<'_> {
    fn record(&self, envelope: &Envelope) -> OrderRecord {
        OrderRecord {
            order: self.order.to_owned(),
            community: self.community.to_owned(),
            building: self.building.to_owned(),
            unit: self.unit.to_owned(),
            household: self.household.to_owned(),
            partner: String::new(),
            priority: self.priority,
            placed_at_ms: envelope.unix_millis(),
            status: self.status,
            is_final: false,
            run: None,
            items: Vec::new(),
            campaign: None,
            escalation: None,
            kind: self.kind,
            parcel: None,
            errand: None,
            vehicle: None,
            history: vec![Transition {
                stage: self.status.stage,
                at: time_text(envelope),
                event_id: envelope.id.to_string(),
                detail: self.detail.clone(),
            }],
        }
    }
}

/// Writes a new order with its indexes, counters and ledger row, in the caller's write.
fn open_order(
    state: &mut dyn StateTx,
    envelope: &Envelope,
    record: &OrderRecord,
) -> Result<(), Rejection> {
    if state.get(ORDERS, &record.order).is_some() {
        return Err(Rejection::new(Reason::DuplicateOrder, record.order.clone()));
    }
    state.put_json(ORDERS, &record.order, record);
    let stage = Counter::Stage {
        community: record.community.clone(),
        stage: record.status.stage,
    };
    bump(state, &stage.key(), 1)?;
    if let Some(campaign) = &record.campaign {
        let counter = Counter::Campaign {
            community: record.community.clone(),
            campaign: campaign.clone(),
            building: record.building.clone(),
            stage: record.status.stage,
        };
        bump(state, &counter.key(), 1)?;
        state.put(
            BY_CAMPAIGN,
            &keys::index_key(campaign, &record.order),
            Vec::new(),
        );
    }
    let open = OpenKey {
        priority: record.priority,
        placed_at_ms: record.placed_at_ms,
        order: record.order.clone(),
    };
    state.put(OPEN, &open.key(), Vec::new());
    if record.status.stage == crate::order::Stage::Placed {
        super::sheets::wait(state, record);
    }
    state.put(
        BY_HOUSEHOLD,
        &keys::index_key(&record.household, &record.order),
        Vec::new(),
    );
    state.put(
        BY_BUILDING,
        &keys::index_key(&record.building, &record.order),
        Vec::new(),
    );
    if !record.partner.is_empty() {
        state.put(
            BY_PARTNER,
            &keys::index_key(&record.partner, &record.order),
            Vec::new(),
        );
    }
    let at = coverage::at(envelope);
    coverage::touch(state, &record.community, &record.household, |row| {
        row.building = record.building.clone();
        row.last_order_ms = Some(at);
    })
}

pub(super) fn placed(
    state: &mut dyn StateTx,
    envelope: &Envelope,
    placed: &OrderPlaced,
) -> Result<(), Rejection> {
    let mut record = NewOrder {
        order: &placed.order,
        community: &placed.community,
        building: &placed.building,
        unit: &placed.unit,
        household: &placed.household,
        priority: placed.priority,
        kind: OrderKind::Goods,
        status: OrderStatus::placed(),
        detail: placed
            .on_behalf_by
            .as_ref()
            .map(|staff| format!("placed by staff {staff}")),
    }
    .record(envelope);
    record.partner = placed.partner.clone();
    record.items = placed.lines.clone();
    record.campaign = placed.campaign.clone();
    open_order(state, envelope, &record)
}

pub(super) fn parcel(
    state: &mut dyn StateTx,
    envelope: &Envelope,
    parcel: &ParcelReceived,
) -> Result<(), Rejection> {
    let mut record = NewOrder {
        order: &parcel.order,
        community: &parcel.community,
        building: &parcel.building,
        unit: &parcel.unit,
        household: &parcel.household,
        priority: parcel.priority,
        kind: OrderKind::Parcel,
        status: OrderStatus::received(),
        detail: Some(format!(
            "parcel {} from {}",
            parcel.tracking, parcel.carrier
        )),
    }
    .record(envelope);
    record.parcel = Some(ParcelInfo {
        carrier: parcel.carrier.clone(),
        tracking: parcel.tracking.clone(),
    });
    open_order(state, envelope, &record)
}

pub(super) fn errand_requested(
    state: &mut dyn StateTx,
    envelope: &Envelope,
    errand: &ErrandRequested,
) -> Result<(), Rejection> {
    let mut record = NewOrder {
        order: &errand.order,
        community: &errand.community,
        building: &errand.building,
        unit: &errand.unit,
        household: &errand.household,
        priority: errand.priority,
        kind: OrderKind::Errand,
        status: OrderStatus::placed(),
        detail: Some(format!("{} from {}", errand.medicine, errand.place)),
    }
    .record(envelope);
    record.errand = Some(ErrandInfo {
        place: errand.place.clone(),
        medicine: errand.medicine.clone(),
        volunteer: None,
        route: None,
    });
    open_order(state, envelope, &record)
}

/// The errand's record, refused when the order is not an errand.
fn load_errand(state: &dyn StateTx, order: &str) -> Result<OrderRecord, Rejection> {
    let record = load_order(state, order)?;
    if record.kind != OrderKind::Errand {
        return Err(Rejection::new(
            Reason::ImpossibleTransition,
            format!("order {order} is not an errand"),
        ));
    }
    Ok(record)
}

pub(super) fn errand_accepted(
    state: &mut dyn StateTx,
    envelope: &Envelope,
    accepted: &ErrandAccepted,
) -> Result<(), Rejection> {
    load_errand(state, &accepted.order)?;
    step_order(
        state,
        envelope,
        &accepted.order,
        Step::Accept,
        Some(format!("volunteer {}", accepted.volunteer)),
        None,
    )?;
    let mut record = load_order(state, &accepted.order)?;
    if let Some(errand) = record.errand.as_mut() {
        errand.volunteer = Some(accepted.volunteer.clone());
    }
    state.put_json(ORDERS, &accepted.order, &record);
    Ok(())
}

pub(super) fn errand_collected(
    state: &mut dyn StateTx,
    envelope: &Envelope,
    collected: &ErrandCollected,
) -> Result<(), Rejection> {
    // Who may collect is the command's rule (the volunteer who accepted); the projections
    // record what happened, as dispatch does, so the two never disagree on the order.
    load_errand(state, &collected.order)?;
    let to_door = collected.route == ErrandRoute::Door;
    // On its way to the door the errand rides with its volunteer: the errand is its own run.
    let run = to_door.then_some(collected.order.as_str());
    step_order(
        state,
        envelope,
        &collected.order,
        Step::Collect { to_door },
        Some(format!("collected by {}", collected.volunteer)),
        run,
    )?;
    let mut record = load_order(state, &collected.order)?;
    if let Some(errand) = record.errand.as_mut() {
        errand.route = Some(collected.route);
    }
    state.put_json(ORDERS, &collected.order, &record);
    Ok(())
}
