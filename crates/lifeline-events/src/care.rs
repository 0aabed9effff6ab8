//! The payloads of what staff run beyond the order chain itself: campaigns, escalations,
//! the vulnerable-household ledgers, parcels and medicine errands. Part of the one event
//! catalogue ([`crate::Event`]); split from `payload.rs` only to keep files short.

use serde::{Deserialize, Serialize};

use crate::payload::{Id, OrderLine, Priority, Vulnerability};

// ---- campaigns -----------------------------------------------------------------------

/// Which households of a community a campaign reaches. Empty lists mean "all": no
/// buildings named is every building; no vulnerabilities named is every household.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CampaignScope {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub buildings: Vec<Id>,
    /// Households with any of these vulnerabilities.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub vulnerabilities: Vec<Vulnerability>,
}

/// Staff start a broadcast: the same lines to every household of a scope (the free
/// melon); the campaigns process manager places one order per household. With
/// `signup_until` it is a group buy instead: households of the scope sign up before the
/// cutoff and only they get an order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CampaignStarted {
    pub campaign: Id,
    pub community: Id,
    /// For people: "a free melon for every household".
    pub name: String,
    pub partner: Id,
    pub lines: Vec<OrderLine>,
    #[serde(default)]
    pub scope: CampaignScope,
    /// At least this priority for every order (each household's own floor still applies).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<Priority>,
    /// Set for a group buy: nothing is sent to anyone; households of the scope sign up
    /// (each sign-up is an `order.placed.v1` of the campaign) until this time.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    pub signup_until: Option<time::OffsetDateTime>,
    /// A broadcast's households per step (see [`CampaignContinued`]), fixed when it starts
    /// so that every replica and every replay steps through the households alike. The
    /// replica that accepted the campaign sets it (`LIFELINE_CAMPAIGN_SLICE`); without it
    /// the campaigns consumer uses its own setting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slice: Option<u32>,
}

/// A large broadcast is placed a slice of households at a time: after each slice the
/// campaigns process manager publishes this on the campaign's subject, and reading it back
/// places the next slice. No batch then holds a whole community's orders at once, and a
/// crash mid-way resumes from the last slice (every id in the chain is deterministic).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CampaignContinued {
    pub campaign: Id,
    pub community: Id,
    /// The last household gone through so far (households are taken in id order); the
    /// next slice starts after it.
    pub after: Id,
    /// Orders placed so far.
    pub placed: u32,
}

// ---- escalations ---------------------------------------------------------------------

/// How staff settled an escalated order. A fixed list, so the outcome can be counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum EscalationOutcome {
    /// Staff placed a new order for the household (name it in `replacement`).
    Reordered,
    /// Staff or a volunteer took the goods to the door outside the pipeline.
    DeliveredByHand,
    /// The household is no longer at the address.
    HouseholdMoved,
    /// The household does not want the order any more.
    Refused,
}

impl EscalationOutcome {
    pub const ALL: [EscalationOutcome; 4] = [
        EscalationOutcome::Reordered,
        EscalationOutcome::DeliveredByHand,
        EscalationOutcome::HouseholdMoved,
        EscalationOutcome::Refused,
    ];

    pub fn as_str(self) -> &'static str {
        crate::wire_name(&self)
    }
}

/// Staff closed an escalated order with a recorded outcome: it leaves the escalation list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EscalationClosed {
    pub order: Id,
    pub community: Id,
    pub outcome: EscalationOutcome,
    /// The new order placed for the household, when the outcome is `reordered`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replacement: Option<Id>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

// ---- vulnerable-household ledgers -----------------------------------------------------

/// Who keeps a list of vulnerable households besides the registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum LedgerSource {
    ResidentsCommittee,
    PropertyOffice,
    VolunteerGroup,
}

impl LedgerSource {
    pub const ALL: [LedgerSource; 3] = [
        LedgerSource::ResidentsCommittee,
        LedgerSource::PropertyOffice,
        LedgerSource::VolunteerGroup,
    ];

    pub fn as_str(self) -> &'static str {
        crate::wire_name(&self)
    }
}

/// One household on a ledger, with the flags that ledger gives it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LedgerEntry {
    pub household: Id,
    #[serde(default)]
    pub vulnerabilities: Vec<Vulnerability>,
}

/// Staff uploaded one keeper's vulnerable-household list; it replaces that keeper's
/// previous list. The registry's flags stay the reconciled answer: a ledger changes no
/// flag by itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LedgerImported {
    pub community: Id,
    pub ledger: LedgerSource,
    pub entries: Vec<LedgerEntry>,
}

// ---- parcels and medicine errands ----------------------------------------------------

/// A courier company's parcel for a resident, handed in at the checkpoint and recorded by
/// staff there. It is an order that starts at the checkpoint: no partner, no pick; dispatch
/// puts it on that day's runs like any arrived order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParcelReceived {
    /// The parcel's order id.
    pub order: Id,
    pub community: Id,
    pub building: Id,
    pub unit: Id,
    pub household: Id,
    /// The courier company (SF Express, JD, ...).
    pub carrier: String,
    /// The carrier's tracking number, as printed on the parcel.
    pub tracking: String,
    pub weight_g: u32,
    #[serde(default)]
    pub priority: Priority,
}

/// A household asks for a prescription to be fetched from a hospital or pharmacy: an
/// errand a volunteer runs, not a supermarket pick. Always urgent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrandRequested {
    /// The errand's order id.
    pub order: Id,
    pub community: Id,
    pub building: Id,
    pub unit: Id,
    pub household: Id,
    /// Where to collect: the hospital or pharmacy, as staff and volunteers name it.
    pub place: String,
    /// What to collect, as the prescription says.
    pub medicine: String,
    #[serde(default)]
    pub priority: Priority,
    /// The staff member who asked for the household, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_behalf_by: Option<Id>,
}

/// A volunteer takes on an errand.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrandAccepted {
    pub order: Id,
    pub community: Id,
    pub volunteer: Id,
}

/// Where a collected errand goes next.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum ErrandRoute {
    /// Left at the checkpoint: it joins a tricycle run like an arrived order.
    Checkpoint,
    /// The volunteer takes it straight to the door and records the drop.
    Door,
}

/// The volunteer has the medicine in hand.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrandCollected {
    pub order: Id,
    pub community: Id,
    pub volunteer: Id,
    pub route: ErrandRoute,
    pub weight_g: u32,
}
