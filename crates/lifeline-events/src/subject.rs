//! The subject scheme: `lifeline.<family>.<community>[.<partner>].<aggregate>`.
//!
//! One family per stage, the community always in the subject (the partner too, for picks
//! and stock) so NATS permissions and partitioning can select on it. The last token is the
//! aggregate the event belongs to, so JetStream's expected-last-subject-sequence gives
//! per-aggregate optimistic concurrency.

use crate::payload::Event;

/// The one stream holding every event. Each consumer reads it whole (an unfiltered
/// consumer reads about ten times faster than a filtered one on a stream with many
/// subjects) and keeps one position in it.
pub const EVENT_STREAM: &str = "LIFELINE_EVENTS";

pub const EVENT_STREAM_SUBJECTS: &[&str] = &[
    "lifeline.registry.>",
    "lifeline.catalogue.>",
    "lifeline.orders.>",
    "lifeline.picks.>",
    "lifeline.stock.>",
    "lifeline.runs.>",
    "lifeline.drops.>",
    "lifeline.campaigns.>",
];

/// Dead letters live in their own stream so that parking a message never feeds it back to
/// the consumers of the event stream.
pub const DEAD_LETTER_STREAM: &str = "LIFELINE_DEAD_LETTERS";
pub const DEAD_LETTER_SUBJECT_PREFIX: &str = "lifeline.deadletter";

/// Each partner's own copy of the orders it is to pick (`order.placed.v1`) and their
/// cancellations, republished by the `feed` consumer so a partner can subscribe to its own
/// subjects only (its NATS permissions allow nothing wider).
pub const PARTNER_FEED_STREAM: &str = "LIFELINE_PARTNER_FEED";
pub const PARTNER_FEED_SUBJECT_PREFIX: &str = "lifeline.feed";

/// `lifeline.feed.<partner>.orders.<community>.<order>`.
pub fn partner_feed_subject(partner: &str, community: &str, order: &str) -> String {
    format!("{PARTNER_FEED_SUBJECT_PREFIX}.{partner}.orders.{community}.{order}")
}

pub fn dead_letter_subject(consumer: &str) -> String {
    format!("{DEAD_LETTER_SUBJECT_PREFIX}.{consumer}")
}

/// The subject an event is published on.
pub fn subject_for(event: &Event) -> String {
    match event {
        Event::CommunityRegistered(e) => {
            format!("lifeline.registry.{}.{}", e.community, e.community)
        }
        Event::BuildingRegistered(e) => format!("lifeline.registry.{}.{}", e.community, e.building),
        Event::UnitRegistered(e) => format!("lifeline.registry.{}.{}", e.community, e.unit),
        Event::HouseholdRegistered(e) => {
            format!("lifeline.registry.{}.{}", e.community, e.household)
        }
        Event::ContactChanged(e) => {
            format!("lifeline.registry.{}.{}", e.community, e.household)
        }
        Event::VehicleRegistered(e) => format!("lifeline.registry.{}.{}", e.community, e.vehicle),
        Event::SealChanged(e) => format!("lifeline.registry.{}.seal", e.community),
        Event::TricycleRegistered(e) => format!("lifeline.registry.{}.{}", e.community, e.tricycle),
        Event::VolunteerRegistered(e) => {
            format!("lifeline.registry.{}.{}", e.community, e.volunteer)
        }
        Event::ItemRegistered(e) => format!("lifeline.catalogue.{}", e.item),
        Event::PartnerRegistered(e) => format!("lifeline.catalogue.partner.{}", e.partner),
        Event::OrderPlaced(e) => order_subject(&e.community, &e.order),
        Event::OrderCancelled(e) => order_subject(&e.community, &e.order),
        Event::OrderReprioritized(e) => order_subject(&e.community, &e.order),
        Event::OrderPicked(e) => pick_subject(&e.community, &e.partner, &e.order),
        Event::StockReceived(e) => format!("lifeline.stock.{}.{}", e.partner, e.item),
        Event::StockAdjusted(e) => format!("lifeline.stock.{}.{}", e.partner, e.item),
        Event::ArrivedAtCheckpoint(e) => {
            format!("lifeline.runs.{}.checkpoint.{}", e.community, e.partner)
        }
        Event::RunPlanned(e) => run_subject(&e.community, &e.run),
        Event::RunDeparted(e) => run_subject(&e.community, &e.run),
        Event::RunReturned(e) => run_subject(&e.community, &e.run),
        Event::DropDelivered(e) => drop_subject(&e.community, &e.order),
        Event::DropFailed(e) => drop_subject(&e.community, &e.order),
        // On the order's own subject: it contends with a cancel of the same order.
        Event::EscalationClosed(e) => order_subject(&e.community, &e.order),
        Event::CampaignStarted(e) => campaign_subject(&e.community, &e.campaign),
        Event::CampaignContinued(e) => campaign_subject(&e.community, &e.campaign),
        // Parcels and errands are orders: every step on the order's own subject, so two
        // volunteers accepting one errand, or a cancel racing a collection, contend.
        Event::ParcelReceived(e) => order_subject(&e.community, &e.order),
        Event::ErrandRequested(e) => order_subject(&e.community, &e.order),
        Event::ErrandAccepted(e) => order_subject(&e.community, &e.order),
        Event::ErrandCollected(e) => order_subject(&e.community, &e.order),
        Event::LedgerImported(e) => {
            format!(
                "lifeline.registry.{}.ledger-{}",
                e.community,
                e.ledger.as_str()
            )
        }
    }
}

/// A campaign's subject.
pub fn campaign_subject(community: &str, campaign: &str) -> String {
    format!("lifeline.campaigns.{community}.{campaign}")
}

/// An order's own subject: placed, cancelled, escalation closed.
pub fn order_subject(community: &str, order: &str) -> String {
    format!("lifeline.orders.{community}.{order}")
}

/// The subject of an order's pick by its partner.
pub fn pick_subject(community: &str, partner: &str, order: &str) -> String {
    format!("lifeline.picks.{community}.{partner}.{order}")
}

/// A tricycle run's subject: planned, departed, returned.
pub fn run_subject(community: &str, run: &str) -> String {
    format!("lifeline.runs.{community}.run.{run}")
}

/// The subject of an order's drops (each attempt).
pub fn drop_subject(community: &str, order: &str) -> String {
    format!("lifeline.drops.{community}.{order}")
}
