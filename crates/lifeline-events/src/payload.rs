//! The typed payload of every event type, grouped by subject family.

use serde::{Deserialize, Serialize};

use crate::care::*;

/// Identifies a community, building, unit, household, order, run, partner, item, tricycle or
/// volunteer. Ids that appear in subjects must satisfy [`crate::is_token`].
pub type Id = String;

/// Why a household needs to be served first. Found by canvassing, cross-checked so that
/// not one is missed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Vulnerability {
    ElderlyAlone,
    Dialysis,
    Pregnant,
    ExamStudent,
    Disabled,
}

/// What a seal applies to: a whole community, one building, or one unit of a building.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "level", rename_all = "snake_case")]
pub enum SealScope {
    Community,
    Building { building: Id },
    Unit { building: Id, unit: Id },
}

/// Delivery priority. Ordering matters: `Urgent > Priority > Routine`.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Priority {
    #[default]
    Routine,
    /// A vulnerable household's order.
    Priority,
    /// Medicine, or anything a person's health depends on today.
    Urgent,
}

impl Priority {
    pub const ALL: [Priority; 3] = [Priority::Routine, Priority::Priority, Priority::Urgent];

    pub fn as_str(self) -> &'static str {
        crate::wire_name(&self)
    }

    /// One character that sorts the most urgent first, for keys of rows kept in queue
    /// order (checkpoint queues, shortfall lines).
    pub fn queue_char(self) -> char {
        match self {
            Priority::Urgent => '0',
            Priority::Priority => '1',
            Priority::Routine => '2',
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OrderLine {
    pub item: Id,
    pub quantity: u32,
}

/// What the partner did with one ordered line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PickOutcome {
    /// Picked in full: `picked == ordered`.
    Picked,
    /// Fewer than ordered, possibly none: `picked < ordered`.
    Short,
    /// Replaced by `substitute` (taken from the partner's stock of that item).
    Substituted,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Substitute {
    pub item: Id,
    pub quantity: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PickLine {
    pub item: Id,
    pub ordered: u32,
    pub outcome: PickOutcome,
    /// How many of `item` were picked.
    pub picked: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub substitute: Option<Substitute>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stop {
    pub building: Id,
    pub unit: Id,
    pub household: Id,
    pub orders: Vec<Id>,
}

/// Proof of a contactless drop.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proof {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub photo_sha256: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
}

/// Why a drop failed. A fixed list, so dashboards and retries can act on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DropFailure {
    NoAnswer,
    WrongAddress,
    Refused,
    AccessBlocked,
    Damaged,
    UnitSealed,
    Other,
}

impl DropFailure {
    pub const ALL: [DropFailure; 7] = [
        DropFailure::NoAnswer,
        DropFailure::WrongAddress,
        DropFailure::Refused,
        DropFailure::AccessBlocked,
        DropFailure::Damaged,
        DropFailure::UnitSealed,
        DropFailure::Other,
    ];

    pub fn as_str(self) -> &'static str {
        crate::wire_name(&self)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemKind {
    Package,
    Item,
    Medicine,
}

// ---- registry ------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CommunityRegistered {
    pub community: Id,
    pub name: String,
    /// The name in Chinese, as residents and staff say it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name_zh: Option<String>,
    pub checkpoint: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint_zh: Option<String>,
    /// Where the checkpoint is on the community's grid (metres east, north): where every
    /// tricycle run starts and ends. Without it dispatch cannot route runs and keeps the
    /// planner's order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint_x_m: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint_y_m: Option<i32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BuildingRegistered {
    pub community: Id,
    pub building: Id,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name_zh: Option<String>,
    /// Position on the community's local grid, metres east of its origin.
    pub x_m: i32,
    /// Metres north of the origin.
    pub y_m: i32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UnitRegistered {
    pub community: Id,
    pub building: Id,
    pub unit: Id,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name_zh: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HouseholdRegistered {
    pub community: Id,
    pub building: Id,
    pub unit: Id,
    pub household: Id,
    pub door: String,
    pub head_count: u32,
    #[serde(default)]
    pub vulnerabilities: Vec<Vulnerability>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SealChanged {
    pub community: Id,
    pub scope: SealScope,
    pub sealed: bool,
}

/// A household's contact phone, kept apart from its registration: personal data that only
/// the registry keeps and only staff and operators of the community read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContactChanged {
    pub community: Id,
    pub household: Id,
    /// `None` removes the number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
}

/// A vehicle that brings goods to a community's checkpoint: one of the cars lent to the
/// community, or a partner's van.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VehicleRegistered {
    pub community: Id,
    pub vehicle: Id,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name_zh: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plate: Option<String>,
    /// The partner whose van it is; `None` for the community's own (lent) cars.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partner: Option<Id>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TricycleRegistered {
    pub community: Id,
    pub tricycle: Id,
    pub capacity_g: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VolunteerRegistered {
    pub community: Id,
    pub volunteer: Id,
    pub name: String,
    pub group: String,
}

/// A supermarket partner joins lifeline (or its names and communities change). Registered
/// by operators; a partner is also known once it holds stock.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PartnerRegistered {
    pub partner: Id,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name_zh: Option<String>,
    /// The communities it supplies.
    #[serde(default)]
    pub communities: Vec<Id>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ItemRegistered {
    pub item: Id,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name_zh: Option<String>,
    pub kind: ItemKind,
    pub weight_g: u32,
}

// ---- orders --------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderPlaced {
    pub order: Id,
    pub community: Id,
    pub building: Id,
    pub unit: Id,
    pub household: Id,
    /// The supermarket partner that picks this order.
    pub partner: Id,
    pub lines: Vec<OrderLine>,
    #[serde(default)]
    pub priority: Priority,
    /// Total weight of the lines, grams (catalogue weights at the time of ordering).
    pub weight_g: u32,
    /// The staff member who placed the order for a resident who cannot, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_behalf_by: Option<Id>,
    /// The campaign this order was placed for, if any (see `campaign.started.v1`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub campaign: Option<Id>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderCancelled {
    pub order: Id,
    pub community: Id,
    pub reason: String,
}

/// An open order's priority was raised because its household's registration changed (it
/// became vulnerable). Published by dispatch, once per order and registration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderReprioritized {
    pub order: Id,
    pub community: Id,
    pub household: Id,
    /// The new priority; always higher than the order had.
    pub priority: Priority,
    pub reason: String,
}

// ---- picks ---------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderPicked {
    pub order: Id,
    pub community: Id,
    pub partner: Id,
    pub lines: Vec<PickLine>,
    /// The pick sheet it was picked from, so a vehicle can carry the sheet as one batch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch: Option<Id>,
}

// ---- stock ---------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StockReceived {
    pub partner: Id,
    pub item: Id,
    pub quantity: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StockAdjusted {
    pub partner: Id,
    pub item: Id,
    /// Signed change to on-hand stock (a count found wrong, spoiled goods).
    pub delta: i64,
    pub reason: String,
}

// ---- runs ----------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArrivedAtCheckpoint {
    /// One supermarket vehicle's arrival.
    pub arrival: Id,
    pub community: Id,
    pub partner: Id,
    pub orders: Vec<Id>,
    /// The registered vehicle that brought them (`vehicle.registered.v1`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vehicle: Option<Id>,
    /// Who drove it, as staff wrote it down.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver: Option<String>,
    /// The pick sheets whose picked orders it carried (`orders` lists them all).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub batches: Vec<Id>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunPlanned {
    pub run: Id,
    pub community: Id,
    pub tricycle: Id,
    /// Stops in the order they are driven.
    pub stops: Vec<Stop>,
    pub load_g: u32,
    /// Length of the route in metres, from the checkpoint along the stops and back; absent
    /// when the community's map is not known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distance_m: Option<u32>,
}

impl RunPlanned {
    pub fn orders(&self) -> impl Iterator<Item = &Id> {
        self.stops.iter().flat_map(|stop| stop.orders.iter())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunDeparted {
    pub run: Id,
    pub community: Id,
    pub tricycle: Id,
    /// The courier riding the tricycle.
    pub courier: Id,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunReturned {
    pub run: Id,
    pub community: Id,
    pub tricycle: Id,
}

// ---- drops ---------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DropDelivered {
    pub order: Id,
    pub run: Id,
    pub community: Id,
    pub household: Id,
    #[serde(default)]
    pub proof: Proof,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DropFailed {
    pub order: Id,
    pub run: Id,
    pub community: Id,
    pub household: Id,
    pub reason: DropFailure,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// Every event type lifeline knows. The wire name of each is `family.name.vN`; a change
/// that breaks a payload gets a new version and a new variant, the old one stays readable.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    CommunityRegistered(CommunityRegistered),
    BuildingRegistered(BuildingRegistered),
    UnitRegistered(UnitRegistered),
    HouseholdRegistered(HouseholdRegistered),
    ContactChanged(ContactChanged),
    VehicleRegistered(VehicleRegistered),
    SealChanged(SealChanged),
    TricycleRegistered(TricycleRegistered),
    VolunteerRegistered(VolunteerRegistered),
    ItemRegistered(ItemRegistered),
    PartnerRegistered(PartnerRegistered),
    OrderPlaced(OrderPlaced),
    OrderCancelled(OrderCancelled),
    OrderReprioritized(OrderReprioritized),
    OrderPicked(OrderPicked),
    StockReceived(StockReceived),
    StockAdjusted(StockAdjusted),
    ArrivedAtCheckpoint(ArrivedAtCheckpoint),
    RunPlanned(RunPlanned),
    RunDeparted(RunDeparted),
    RunReturned(RunReturned),
    DropDelivered(DropDelivered),
    DropFailed(DropFailed),
    EscalationClosed(EscalationClosed),
    CampaignStarted(CampaignStarted),
    CampaignContinued(CampaignContinued),
    ParcelReceived(ParcelReceived),
    ErrandRequested(ErrandRequested),
    ErrandAccepted(ErrandAccepted),
    ErrandCollected(ErrandCollected),
    LedgerImported(LedgerImported),
}

/// Declares, once, the wire name of every variant and how to encode and decode it.
macro_rules! event_types {
    ($($variant:ident => $name:literal),+ $(,)?) => {
        impl Event {
    /// Whether this event is the first on its subject: it opens its aggregate (an order,
    /// a run, a campaign). A process manager publishes such follow-ups only onto an empty
    /// subject, which keeps them once-only beyond JetStream's duplicate window.
    pub fn opens_aggregate(&self) -> bool {
        matches!(
            self,
            Event::OrderPlaced(_)
                | Event::RunPlanned(_)
                | Event::CampaignStarted(_)
                | Event::ParcelReceived(_)
                | Event::ErrandRequested(_)
        )
    }

            /// Every wire type name, in catalogue order.
            pub const TYPES: &'static [&'static str] = &[$($name),+];

            /// The wire type name, `family.name.vN`.
            pub fn event_type(&self) -> &'static str {
                match self {
                    $(Event::$variant(_) => $name,)+
                }
            }

            pub(crate) fn data_to_value(&self) -> serde_json::Result<serde_json::Value> {
                match self {
                    $(Event::$variant(payload) => serde_json::to_value(payload),)+
                }
            }

            /// `None` when the type is unknown; `Some(Err)` when the data does not fit it.
            pub(crate) fn from_type_and_data(
                event_type: &str,
                data: &str,
            ) -> Option<serde_json::Result<Event>> {
                match event_type {
                    $($name => Some(serde_json::from_str(data).map(Event::$variant)),)+
                    _ => None,
                }
            }
        }
    };
}

event_types! {
    CommunityRegistered => "community.registered.v1",
    BuildingRegistered => "building.registered.v1",
    UnitRegistered => "unit.registered.v1",
    HouseholdRegistered => "household.registered.v1",
    ContactChanged => "contact.changed.v1",
    VehicleRegistered => "vehicle.registered.v1",
    SealChanged => "seal.changed.v1",
    TricycleRegistered => "tricycle.registered.v1",
    VolunteerRegistered => "volunteer.registered.v1",
    ItemRegistered => "item.registered.v1",
    PartnerRegistered => "partner.registered.v1",
    OrderPlaced => "order.placed.v1",
    OrderCancelled => "order.cancelled.v1",
    OrderReprioritized => "order.reprioritized.v1",
    OrderPicked => "order.picked.v1",
    StockReceived => "stock.received.v1",
    StockAdjusted => "stock.adjusted.v1",
    ArrivedAtCheckpoint => "checkpoint.arrived.v1",
    RunPlanned => "run.planned.v1",
    RunDeparted => "run.departed.v1",
    RunReturned => "run.returned.v1",
    DropDelivered => "drop.delivered.v1",
    DropFailed => "drop.failed.v1",
    EscalationClosed => "escalation.closed.v1",
    CampaignStarted => "campaign.started.v1",
    CampaignContinued => "campaign.continued.v1",
    ParcelReceived => "parcel.received.v1",
    ErrandRequested => "errand.requested.v1",
    ErrandAccepted => "errand.accepted.v1",
    ErrandCollected => "errand.collected.v1",
    LedgerImported => "ledger.imported.v1",
}

impl Event {
    /// The order this event is about, when it is about exactly one.
    pub fn order_id(&self) -> Option<&str> {
        match self {
            Event::OrderPlaced(e) => Some(&e.order),
            Event::OrderCancelled(e) => Some(&e.order),
            Event::OrderReprioritized(e) => Some(&e.order),
            Event::OrderPicked(e) => Some(&e.order),
            Event::DropDelivered(e) => Some(&e.order),
            Event::DropFailed(e) => Some(&e.order),
            Event::EscalationClosed(e) => Some(&e.order),
            Event::ParcelReceived(e) => Some(&e.order),
            Event::ErrandRequested(e) => Some(&e.order),
            Event::ErrandAccepted(e) => Some(&e.order),
            Event::ErrandCollected(e) => Some(&e.order),
            _ => None,
        }
    }
}
