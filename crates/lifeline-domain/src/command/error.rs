//! Why a command is refused: one closed enum, with a stable wire code per rule and the
//! kind of refusal the caller acts on.

use serde::Serialize;

/// What the caller should do about a refusal. The gateway maps each to one HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The command itself is wrong (unknown item, bad quantity): fix it, do not retry.
    Invalid,
    /// The aggregate it names does not exist.
    NotFound,
    /// The aggregate is not in a state that allows it (already picked, not out): re-read.
    Conflict,
    /// The command acts on someone else's aggregate.
    Forbidden,
    /// The projections have not seen what the command needs yet: retry in a moment.
    NotYetVisible,
    /// The projections could not be read: retry later.
    Unreadable,
}

/// The stable, machine-readable code of each rule, as clients see it in
/// `{"error": {"code": ...}}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    EmptyOrder,
    TooManyLines,
    QuantityOutOfRange,
    DuplicateLine,
    UnknownHousehold,
    UnknownPartner,
    UnknownItem,
    UnknownOrder,
    UnknownRun,
    UnknownCourier,
    CourierRequired,
    NotCancellable,
    WrongPartner,
    NotWaitingForPick,
    InvalidPick,
    PickLinesMismatch,
    InsufficientStock,
    ArrivalSize,
    DuplicateOrder,
    NotPicked,
    OrderElsewhere,
    RunNotPlanned,
    RunNotOut,
    NotOnRun,
    FailureNeedsReason,
    NotEscalated,
    NoteTooLong,
    InvalidReplacement,
    CampaignName,
    UnknownBuilding,
    CourierNotCleared,
    ProofRequired,
    InvalidText,
    WeightOutOfRange,
    NotAnErrand,
    ErrandNotOpen,
    NotYourErrand,
    InvalidLedger,
    NoChange,
    UnknownCampaign,
    NotAGroupBuy,
    SignupClosed,
    NotInScope,
    UnknownVehicle,
    UnknownUnit,
    UnknownGroup,
    UnknownCommunity,
    InvalidPhone,
    OutOfRange,
    RegisteredElsewhere,
    NotARider,
    OpenOrders,
    NotYetVisible,
    Unreadable,
}

/// The wire name, as serde spells it.
impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match serde_json::to_value(self) {
            Ok(serde_json::Value::String(name)) => f.write_str(&name),
            _ => Err(std::fmt::Error),
        }
    }
}

/// A refused command: which rule, with the detail a person needs to fix it.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error("an order needs at least one line")]
    EmptyOrder,
    #[error("an order has at most {max} lines")]
    TooManyLines { max: usize },
    #[error("quantity of {item} must be {min} to {max}")]
    QuantityOutOfRange { item: String, min: u32, max: u32 },
    #[error("item {item} appears twice")]
    DuplicateLine { item: String },
    #[error("unknown household {household:?}")]
    UnknownHousehold { household: String },
    #[error("unknown partner {partner:?}")]
    UnknownPartner { partner: String },
    #[error("unknown item {item:?}")]
    UnknownItem { item: String },
    #[error("unknown order {order:?}")]
    UnknownOrder { order: String },
    #[error("no run {run}")]
    UnknownRun { run: String },
    #[error("unknown courier {courier:?} in {community}")]
    UnknownCourier { courier: String, community: String },
    #[error("name the courier riding the run")]
    CourierRequired,
    #[error("order {order} is {stage} and can no longer be cancelled")]
    NotCancellable { order: String, stage: &'static str },
    #[error("order {order} belongs to partner {partner}")]
    WrongPartner { order: String, partner: String },
    #[error("order {order} is {stage}, not waiting to be picked")]
    NotWaitingForPick { order: String, stage: &'static str },
    #[error("{detail}")]
    InvalidPick { detail: String },
    #[error("the pick must answer each ordered line once, with its ordered quantity")]
    PickLinesMismatch,
    #[error("only {available} of {item} can be picked, not {wanted}")]
    InsufficientStock {
        item: String,
        available: u64,
        wanted: u64,
    },
    #[error("an arrival carries 1 to {max} orders")]
    ArrivalSize { max: usize },
    #[error("order {order} appears twice")]
    DuplicateOrder { order: String },
    #[error("order {order} is {stage}, not picked")]
    NotPicked { order: String, stage: &'static str },
    #[error("order {order} is not {partner}'s order for {community}")]
    OrderElsewhere {
        order: String,
        partner: String,
        community: String,
    },
    #[error("run {run} is {state}, not planned")]
    RunNotPlanned { run: String, state: &'static str },
    #[error("run {run} is {state}, not out")]
    RunNotOut { run: String, state: &'static str },
    #[error("order {order} is {stage}, not out on run {run}")]
    NotOnRun {
        order: String,
        run: String,
        stage: &'static str,
    },
    #[error("a failed drop needs a reason")]
    FailureNeedsReason,
    #[error("order {order} is {disposition}, not escalated")]
    NotEscalated {
        order: String,
        disposition: &'static str,
    },
    #[error("a note has at most {max} characters")]
    NoteTooLong { max: usize },
    #[error("{detail}")]
    InvalidReplacement { detail: String },
    #[error("a campaign needs a name of 1 to {max} characters")]
    CampaignName { max: usize },
    #[error("no building {building:?} in {community}")]
    UnknownBuilding { building: String, community: String },
    #[error("courier {courier} is not in the door-to-door group, and {building} is sealed")]
    CourierNotCleared { courier: String, building: String },
    #[error(
        "order {order} is behind a seal ({unit}): a contactless drop needs a proof code or photo"
    )]
    ProofRequired { order: String, unit: String },
    #[error("{field} must be 1 to {max} characters")]
    InvalidText { field: &'static str, max: usize },
    #[error("weight must be {min} to {max} grams")]
    WeightOutOfRange { min: u32, max: u32 },
    #[error("order {order} is not a medicine errand")]
    NotAnErrand { order: String },
    #[error("errand {order} is {stage}")]
    ErrandNotOpen { order: String, stage: &'static str },
    #[error("errand {order} was accepted by volunteer {volunteer:?}")]
    NotYourErrand { order: String, volunteer: String },
    #[error("{detail}")]
    InvalidLedger { detail: String },
    #[error("household {household} already has these flags")]
    NoChange { household: String },
    #[error("no campaign {campaign}")]
    UnknownCampaign { campaign: String },
    #[error("campaign {campaign} is a broadcast: every household of its scope gets it")]
    NotAGroupBuy { campaign: String },
    #[error("the sign-up to campaign {campaign} has closed")]
    SignupClosed { campaign: String },
    #[error("household {household} is outside campaign {campaign}'s scope")]
    NotInScope { household: String, campaign: String },
    #[error("no vehicle {vehicle:?} registered in {community} for {partner}")]
    UnknownVehicle {
        vehicle: String,
        community: String,
        partner: String,
    },
    #[error("no unit {unit:?} in building {building}")]
    UnknownUnit { unit: String, building: String },
    #[error("unknown work group {group:?}: one of {known}")]
    UnknownGroup { group: String, known: String },
    #[error("no community {community:?}")]
    UnknownCommunity { community: String },
    #[error("a phone number is 5 to 20 digits, with an optional leading +")]
    InvalidPhone,
    #[error("{field} must be {min} to {max}")]
    OutOfRange {
        field: &'static str,
        min: i64,
        max: i64,
    },
    #[error("{what} {id} is registered in community {community}")]
    RegisteredElsewhere {
        what: &'static str,
        id: String,
        community: String,
    },
    #[error("volunteer {courier} is in the {group} group, which does not ride tricycle runs")]
    NotARider { courier: String, group: String },
    #[error(
        "household {household} has orders on their way: its unit cannot change until they are delivered or cancelled"
    )]
    OpenOrders { household: String },
    /// The projections trail the stream: what the command needs is not visible yet.
    #[error("{what} is not visible yet, retry in a moment")]
    NotYetVisible { what: String },
    #[error("cannot read the projections")]
    Unreadable(#[from] super::ReadError),
}

impl CommandError {
    pub fn code(&self) -> ErrorCode {
        match self {
            CommandError::EmptyOrder => ErrorCode::EmptyOrder,
            CommandError::TooManyLines { .. } => ErrorCode::TooManyLines,
            CommandError::QuantityOutOfRange { .. } => ErrorCode::QuantityOutOfRange,
            CommandError::DuplicateLine { .. } => ErrorCode::DuplicateLine,
            CommandError::UnknownHousehold { .. } => ErrorCode::UnknownHousehold,
            CommandError::UnknownPartner { .. } => ErrorCode::UnknownPartner,
            CommandError::UnknownItem { .. } => ErrorCode::UnknownItem,
            CommandError::UnknownOrder { .. } => ErrorCode::UnknownOrder,
            CommandError::UnknownRun { .. } => ErrorCode::UnknownRun,
            CommandError::UnknownCourier { .. } => ErrorCode::UnknownCourier,
            CommandError::CourierRequired => ErrorCode::CourierRequired,
            CommandError::NotCancellable { .. } => ErrorCode::NotCancellable,
            CommandError::WrongPartner { .. } => ErrorCode::WrongPartner,
            CommandError::NotWaitingForPick { .. } => ErrorCode::NotWaitingForPick,
            CommandError::InvalidPick { .. } => ErrorCode::InvalidPick,
            CommandError::PickLinesMismatch => ErrorCode::PickLinesMismatch,
            CommandError::InsufficientStock { .. } => ErrorCode::InsufficientStock,
            CommandError::ArrivalSize { .. } => ErrorCode::ArrivalSize,
            CommandError::DuplicateOrder { .. } => ErrorCode::DuplicateOrder,
            CommandError::NotPicked { .. } => ErrorCode::NotPicked,
            CommandError::OrderElsewhere { .. } => ErrorCode::OrderElsewhere,
            CommandError::RunNotPlanned { .. } => ErrorCode::RunNotPlanned,
            CommandError::RunNotOut { .. } => ErrorCode::RunNotOut,
            CommandError::NotOnRun { .. } => ErrorCode::NotOnRun,
            CommandError::FailureNeedsReason => ErrorCode::FailureNeedsReason,
            CommandError::NotEscalated { .. } => ErrorCode::NotEscalated,
            CommandError::NoteTooLong { .. } => ErrorCode::NoteTooLong,
            CommandError::InvalidReplacement { .. } => ErrorCode::InvalidReplacement,
            CommandError::CampaignName { .. } => ErrorCode::CampaignName,
            CommandError::UnknownBuilding { .. } => ErrorCode::UnknownBuilding,
            CommandError::CourierNotCleared { .. } => ErrorCode::CourierNotCleared,
            CommandError::ProofRequired { .. } => ErrorCode::ProofRequired,
            CommandError::InvalidText { .. } => ErrorCode::InvalidText,
            CommandError::WeightOutOfRange { .. } => ErrorCode::WeightOutOfRange,
            CommandError::NotAnErrand { .. } => ErrorCode::NotAnErrand,
            CommandError::ErrandNotOpen { .. } => ErrorCode::ErrandNotOpen,
            CommandError::NotYourErrand { .. } => ErrorCode::NotYourErrand,
            CommandError::InvalidLedger { .. } => ErrorCode::InvalidLedger,
            CommandError::NoChange { .. } => ErrorCode::NoChange,
            CommandError::UnknownCampaign { .. } => ErrorCode::UnknownCampaign,
            CommandError::NotAGroupBuy { .. } => ErrorCode::NotAGroupBuy,
            CommandError::SignupClosed { .. } => ErrorCode::SignupClosed,
            CommandError::NotInScope { .. } => ErrorCode::NotInScope,
            CommandError::UnknownVehicle { .. } => ErrorCode::UnknownVehicle,
            CommandError::UnknownUnit { .. } => ErrorCode::UnknownUnit,
            CommandError::UnknownGroup { .. } => ErrorCode::UnknownGroup,
            CommandError::UnknownCommunity { .. } => ErrorCode::UnknownCommunity,
            CommandError::InvalidPhone => ErrorCode::InvalidPhone,
            CommandError::OutOfRange { .. } => ErrorCode::OutOfRange,
            CommandError::RegisteredElsewhere { .. } => ErrorCode::RegisteredElsewhere,
            CommandError::NotARider { .. } => ErrorCode::NotARider,
            CommandError::OpenOrders { .. } => ErrorCode::OpenOrders,
            CommandError::NotYetVisible { .. } => ErrorCode::NotYetVisible,
            CommandError::Unreadable(_) => ErrorCode::Unreadable,
        }
    }

    pub fn refusal(&self) -> Refusal {
        match self.code() {
            ErrorCode::EmptyOrder
            | ErrorCode::TooManyLines
            | ErrorCode::QuantityOutOfRange
            | ErrorCode::DuplicateLine
            | ErrorCode::UnknownHousehold
            | ErrorCode::UnknownPartner
            | ErrorCode::UnknownItem
            | ErrorCode::UnknownOrder
            | ErrorCode::UnknownCourier
            | ErrorCode::CourierRequired
            | ErrorCode::InvalidPick
            | ErrorCode::PickLinesMismatch
            | ErrorCode::ArrivalSize
            | ErrorCode::DuplicateOrder
            | ErrorCode::OrderElsewhere
            | ErrorCode::FailureNeedsReason
            | ErrorCode::NoteTooLong
            | ErrorCode::InvalidReplacement
            | ErrorCode::CampaignName
            | ErrorCode::UnknownBuilding
            | ErrorCode::CourierNotCleared
            | ErrorCode::ProofRequired
            | ErrorCode::InvalidText
            | ErrorCode::WeightOutOfRange
            | ErrorCode::NotAnErrand
            | ErrorCode::InvalidLedger
            | ErrorCode::NotInScope
            | ErrorCode::UnknownVehicle
            | ErrorCode::UnknownUnit
            | ErrorCode::UnknownGroup
            | ErrorCode::UnknownCommunity
            | ErrorCode::InvalidPhone
            | ErrorCode::OutOfRange
            | ErrorCode::NotARider => Refusal::Invalid,
            ErrorCode::UnknownRun | ErrorCode::UnknownCampaign => Refusal::NotFound,
            ErrorCode::NotCancellable
            | ErrorCode::NotWaitingForPick
            | ErrorCode::InsufficientStock
            | ErrorCode::NotPicked
            | ErrorCode::RunNotPlanned
            | ErrorCode::RunNotOut
            | ErrorCode::NotOnRun
            | ErrorCode::NotEscalated
            | ErrorCode::ErrandNotOpen
            | ErrorCode::NoChange
            | ErrorCode::RegisteredElsewhere
            | ErrorCode::OpenOrders
            | ErrorCode::NotAGroupBuy
            | ErrorCode::SignupClosed => Refusal::Conflict,
            ErrorCode::WrongPartner | ErrorCode::NotYourErrand => Refusal::Forbidden,
            ErrorCode::NotYetVisible => Refusal::NotYetVisible,
            ErrorCode::Unreadable => Refusal::Unreadable,
        }
    }
}
