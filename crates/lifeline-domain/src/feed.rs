//! The partner feed: every `order.placed.v1` for a supermarket partner, and the cancellation
//! or raised priority (`order.reprioritized.v1`) of such an order, copied to that partner's
//! own subject
//! (`lifeline.feed.<partner>.orders.<community>.<order>`, stream `LIFELINE_PARTNER_FEED`),
//! so a partner's NATS permissions can allow its own orders and nothing else.
//!
//! A copy is a follow-up: the same event, a deterministic id derived from the original's
//! (a re-publish after a crash is a duplicate JetStream drops), the original's correlation
//! id, and the original's id as causation (a partner's pick names it as its cause).

use lifeline_events::{
    Actor, Envelope, Event, OrderPlaced, deterministic_event_id, partner_feed_subject,
};
use serde::{Deserialize, Serialize};

use crate::{Applied, Handler, Rejection, StateTx, StateTxExt};

const NAME: &str = "feed";

/// Order id -> the partner and community it was placed with (to route its cancellation).
pub const FEED_ORDERS: &str = "feed_orders";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Routed {
    partner: String,
    community: String,
}

/// The consumer that keeps each partner's feed.
#[derive(Debug, Clone, Copy, Default)]
pub struct PartnerFeed;

/// The partner's copy of `envelope`, on `subject`.
fn copy(envelope: &Envelope, subject: String) -> Envelope {
    let id = deterministic_event_id(
        envelope.unix_millis(),
        NAME,
        &[&envelope.id.to_string(), &subject],
    );
    let meta = envelope.follow_up("lifeline-feed", Actor::system(NAME), envelope.time);
    let mut copy = Envelope::with_id(id, envelope.event.clone(), meta);
    copy.subject = subject;
    copy
}

fn placed(
    state: &mut dyn StateTx,
    envelope: &Envelope,
    placed: &OrderPlaced,
    emit: &mut Vec<Envelope>,
) -> Result<Applied, Rejection> {
    // Parcels and errands have no partner: nobody picks them.
    if placed.partner.is_empty() {
        return Ok(Applied::Ignored);
    }
    let routed = Routed {
        partner: placed.partner.to_string(),
        community: placed.community.to_string(),
    };
    state.put_json(FEED_ORDERS, &placed.order, &routed);
    emit.push(copy(
        envelope,
        partner_feed_subject(&routed.partner, &routed.community, &placed.order),
    ));
    Ok(Applied::Changed)
}

impl Handler for PartnerFeed {
    fn name(&self) -> &'static str {
        NAME
    }

    fn tables(&self) -> &'static [&'static str] {
        &[FEED_ORDERS]
    }

    fn apply(
        &self,
        state: &mut dyn StateTx,
        envelope: &Envelope,
        emit: &mut Vec<Envelope>,
    ) -> Result<Applied, Rejection> {
        match &envelope.event {
            Event::OrderPlaced(order) => placed(state, envelope, order, emit),
            // A cancellation withdraws the order; a raise tells the partner to pick it
            // sooner. An order this feed never carried (a parcel, an errand) has neither.
            Event::OrderCancelled(lifeline_events::OrderCancelled { order, .. })
            | Event::OrderReprioritized(lifeline_events::OrderReprioritized { order, .. }) => {
                let Some(routed) = state.get_json::<Routed>(FEED_ORDERS, order)? else {
                    return Ok(Applied::Ignored);
                };
                emit.push(copy(
                    envelope,
                    partner_feed_subject(&routed.partner, &routed.community, order),
                ));
                Ok(Applied::Changed)
            }
            _ => Ok(Applied::Ignored),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemoryState;
    use lifeline_events::{ActorKind, EventMeta, OrderCancelled, OrderLine, Priority};

    fn envelope(event: Event) -> Envelope {
        Envelope::new(
            event,
            EventMeta {
                time: time::OffsetDateTime::UNIX_EPOCH,
                source: "test".into(),
                actor: Actor::new(ActorKind::Staff, "staff-1"),
                correlation_id: lifeline_events::new_event_id(),
                causation_id: None,
            },
        )
    }

    fn order(id: &str, partner: &str) -> Envelope {
        envelope(Event::OrderPlaced(OrderPlaced {
            order: id.into(),
            community: "tianlun".into(),
            building: "tianlun-b07".into(),
            unit: "tianlun-b07-u8".into(),
            household: "tianlun-b07-u8-0301".into(),
            partner: partner.into(),
            lines: vec![OrderLine {
                item: "veg-pack".into(),
                quantity: 1,
            }],
            weight_g: 5_000,
            priority: Priority::Routine,
            on_behalf_by: None,
            campaign: None,
        }))
    }

    fn cancel(id: &str) -> Envelope {
        envelope(Event::OrderCancelled(OrderCancelled {
            order: id.into(),
            community: "tianlun".into(),
            reason: "changed mind".into(),
        }))
    }

    fn raise(id: &str) -> Envelope {
        envelope(Event::OrderReprioritized(
            lifeline_events::OrderReprioritized {
                order: id.into(),
                community: "tianlun".into(),
                household: "tianlun-b07-u8-0301".into(),
                priority: Priority::Priority,
                reason: "household registered as dialysis".into(),
            },
        ))
    }

    fn run(events: &[Envelope]) -> Vec<Envelope> {
        let mut state = MemoryState::default();
        let mut emitted = Vec::new();
        for event in events {
            PartnerFeed
                .apply(&mut state, event, &mut emitted)
                .expect("applies");
        }
        emitted
    }

    #[test]
    fn each_partner_gets_its_own_orders_and_their_cancellations() {
        // (events, the subjects the copies land on)
        let cases: Vec<(Vec<Envelope>, Vec<&str>)> = vec![
            (
                vec![order("o1", "yonghui")],
                vec!["lifeline.feed.yonghui.orders.tianlun.o1"],
            ),
            (
                vec![
                    order("o1", "yonghui"),
                    order("o2", "shuocheng"),
                    cancel("o2"),
                ],
                vec![
                    "lifeline.feed.yonghui.orders.tianlun.o1",
                    "lifeline.feed.shuocheng.orders.tianlun.o2",
                    "lifeline.feed.shuocheng.orders.tianlun.o2",
                ],
            ),
            // A raise follows its order to the partner.
            (
                vec![order("o1", "yonghui"), raise("o1")],
                vec![
                    "lifeline.feed.yonghui.orders.tianlun.o1",
                    "lifeline.feed.yonghui.orders.tianlun.o1",
                ],
            ),
            // A parcel (no partner) and a cancel of an order never carried: nothing.
            (vec![order("p1", ""), cancel("p1"), cancel("ghost")], vec![]),
        ];
        for (events, subjects) in cases {
            let emitted = run(&events);
            let got: Vec<&str> = emitted.iter().map(|e| e.subject.as_str()).collect();
            assert_eq!(got, subjects);
        }
    }

    #[test]
    fn a_copy_is_a_deterministic_follow_up_of_the_original() {
        let original = order("o1", "yonghui");
        let first = run(std::slice::from_ref(&original));
        let again = run(std::slice::from_ref(&original));
        assert_eq!(first[0].id, again[0].id, "same id when re-processed");
        assert_ne!(first[0].id, original.id);
        assert_eq!(first[0].causation_id, Some(original.id));
        assert_eq!(first[0].correlation_id, original.correlation_id);
        assert_eq!(first[0].event, original.event);
    }
}
