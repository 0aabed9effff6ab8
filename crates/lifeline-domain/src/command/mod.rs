//! The command side: what a resident, staff member, partner or courier may do, decided
//! here and nowhere else.
//!
//! Each command is a pure function from the projections' state (read through [`Views`])
//! and the command to the event it appends, or a [`CommandError`] saying which rule it
//! broke. The gateway, the demo and the consumers (for events published straight to NATS)
//! all end in these functions, so a rule cannot drift between them. Who may act for whom
//! (tokens, roles, scopes) is the gateway's concern; whether the act is allowed is this
//! module's.

mod campaign;
mod errand;
mod error;
mod escalation;
mod ledger;
mod order;
mod pick;
mod registry;
mod run;
mod seal;
#[cfg(test)]
mod tests;
mod views;

pub use campaign::{
    JoinCampaign, MAX_NAME_CHARS, StartCampaign, join_campaign, signup_order_id, start_campaign,
};
pub use errand::{
    AcceptErrand, CollectErrand, MAX_PARCEL_G, MAX_TEXT_CHARS, ReceiveParcel, RequestErrand,
    accept_errand, collect_errand, receive_parcel, request_errand,
};
pub use error::{CommandError, ErrorCode, Refusal};
pub use escalation::{CloseEscalation, MAX_NOTE_CHARS, close_escalation};
pub use ledger::{ImportLedger, SetVulnerabilities, import_ledger, set_vulnerabilities};
pub use order::{
    CancelOrder, MAX_LINES, MAX_QUANTITY, PlaceOrder, cancel_order, check_line_shapes,
    deadline_seconds, place_order, priority_floor, weigh_lines,
};
pub use pick::{MAX_RESTOCK, PostPick, Restock, check_pick_lines, pick_order, restock};
pub use registry::{
    MAX_HEAD_COUNT, RegisterBuilding, RegisterHousehold, RegisterPartner, RegisterTricycle,
    RegisterUnit, RegisterVehicle, RegisterVolunteer, SetContact, WORK_GROUPS, normalize_phone,
    register_building, register_household, register_partner, register_tricycle, register_unit,
    register_vehicle, register_volunteer, set_contact,
};
pub use run::{
    Arrival, DOOR_TO_DOOR_GROUP, DepartRun, DropOutcome, MAX_ARRIVAL_BATCHES, MAX_ARRIVAL_ORDERS,
    MAX_BATCH_ORDERS, MAX_DRIVER_CHARS, RIDING_GROUPS, RecordDrop, ReturnRun, arrive, depart_run,
    record_drop, return_run,
};
pub use seal::{ChangeSeal, change_seal};
pub use views::{ReadError, ReadState, Views};
