//! The simulated people of one lockdown day: what each household orders, what a partner
//! picks from what was reserved, which drops fail. Pure and seeded: the same seed plays
//! the same day. No rule lives here: every choice becomes a command that the domain
//! decides, exactly as if a person had sent it.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use lifeline_domain::command::{DropOutcome, PlaceOrder, PostPick};
use lifeline_domain::inventory::Reservation;
use lifeline_events::{
    Actor, ActorKind, DropFailure, ItemKind, OrderLine, PickLine, PickOutcome, Proof, Substitute,
    Vulnerability,
};
use lifeline_seeds::{Household, Seeds};
use time::OffsetDateTime;
use time::macros::datetime;

pub const VEHICLE_LOAD: usize = 120;
const DROP_FAILURE_PERCENT: u64 = 8;
const CANCEL_PERCENT: u64 = 1;

/// Simulated seconds each piece of work adds to the one shared clock. The people work in
/// parallel (many pickers, twenty tricycles), the clock runs serially: these are the
/// per-item shares that end the day in the evening, as the story's day did.
pub const ORDER_SECS: u64 = 2;
pub const PICK_SECS: u64 = 1;
pub const VEHICLE_SECS: u64 = 5 * 60;
pub const RUN_SECS: u64 = 45;

/// SplitMix64: small, seeded, good enough for a simulation, no dependency.
#[derive(Debug, Clone)]
pub struct Random(pub u64);

impl Random {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    pub fn percent(&mut self, p: u64) -> bool {
        self.below(100) < p
    }
}

/// The simulated clock: starts at 06:00 on 14 June 2020, Beijing time, and moves only
/// when the simulation says work took time (an order typed in, a pick, a vehicle, a run).
#[derive(Debug, Default)]
pub struct Clock {
    elapsed_secs: AtomicU64,
}

impl Clock {
    pub const START: OffsetDateTime = datetime!(2020-06-14 06:00 +08:00);

    pub fn now(&self) -> OffsetDateTime {
        Clock::START + Duration::from_secs(self.elapsed_secs.load(Ordering::Relaxed))
    }

    pub fn advance(&self, seconds: u64) {
        self.elapsed_secs.fetch_add(seconds, Ordering::Relaxed);
    }
}

/// Who places a household's order: staff on the hotline for the elderly living alone and
/// the disabled, the household itself otherwise.
pub fn orderer(household: &Household) -> Actor {
    let on_behalf = household
        .vulnerabilities
        .iter()
        .any(|v| matches!(v, Vulnerability::ElderlyAlone | Vulnerability::Disabled));
    if on_behalf {
        Actor::new(
            ActorKind::Staff,
            format!("staff-{}-hotline", household.community),
        )
    } else {
        Actor::new(ActorKind::Resident, household.household.clone())
    }
}

/// What one household orders: packages mostly, medicine for those who need it. The
/// priority is left to the domain (it raises medicine and vulnerable households).
pub fn order_for(household: &Household, seeds: &Seeds, random: &mut Random) -> PlaceOrder {
    let mut lines: BTreeMap<&str, u32> = BTreeMap::new();
    lines.insert("veg-pack", 1 + u32::from(household.head_count > 3));
    if random.percent(55) {
        lines.insert("fruit-pack", 1);
    }
    if random.percent(25) {
        lines.insert("staples-pack", 1);
    }
    for extra in ["eggs", "milk", "bread"] {
        if random.percent(6) {
            lines.insert(extra, 1);
        }
    }
    let needs = &household.vulnerabilities;
    if needs.contains(&Vulnerability::Dialysis) {
        lines.insert("med-dialysis-kit", 1);
    }
    if needs.contains(&Vulnerability::ElderlyAlone) && random.percent(40) {
        lines.insert("med-blood-pressure", 1);
    }
    if random.percent(1) {
        lines.insert("med-insulin", 1);
    }
    let has_medicine = lines.keys().any(|item| {
        seeds
            .item(item)
            .is_some_and(|entry| entry.kind == ItemKind::Medicine)
    });
    // Yonghui has the pharmacy counter and the staples; Shuocheng sells produce.
    let needs_yonghui = has_medicine
        || lines
            .keys()
            .any(|item| !["veg-pack", "fruit-pack", "staples-pack", "eggs"].contains(item));
    let partner = if needs_yonghui || random.percent(50) {
        "yonghui"
    } else {
        "shuocheng"
    };
    let actor = orderer(household);
    PlaceOrder {
        order: lifeline_events::new_event_id().to_string(),
        household: household.household.clone(),
        partner: partner.to_owned(),
        lines: lines
            .into_iter()
            .map(|(item, quantity)| OrderLine {
                item: item.to_owned(),
                quantity,
            })
            .collect(),
        priority: None,
        on_behalf_by: (actor.kind == ActorKind::Staff).then(|| actor.id.clone()),
    }
}

/// A few residents change their minds before the partner picks.
pub fn cancels(random: &mut Random) -> bool {
    random.percent(CANCEL_PERCENT)
}

/// The partner's pick: what was reserved is picked, the rest is short; now and then a fruit
/// package is swapped for a watermelon (there are plenty).
pub fn pick_for(
    order: &str,
    partner: &str,
    reservation: &Reservation,
    random: &mut Random,
) -> PostPick {
    let lines = reservation
        .lines
        .iter()
        .map(|line| {
            if line.reserved == line.requested && line.item == "fruit-pack" && random.percent(3) {
                return PickLine {
                    item: line.item.clone(),
                    ordered: line.requested,
                    outcome: PickOutcome::Substituted,
                    picked: 0,
                    substitute: Some(Substitute {
                        item: "watermelon".to_owned(),
                        quantity: 1,
                    }),
                };
            }
            let outcome = if line.reserved == line.requested {
                PickOutcome::Picked
            } else {
                PickOutcome::Short
            };
            PickLine {
                item: line.item.clone(),
                ordered: line.requested,
                outcome,
                picked: line.reserved,
                substitute: None,
            }
        })
        .collect();
    PostPick {
        order: order.to_owned(),
        partner: partner.to_owned(),
        lines,
        batch: None,
    }
}

/// What happens at one door: mostly delivered with a code, sometimes nobody answers.
pub fn drop_outcome(random: &mut Random) -> DropOutcome {
    if random.percent(DROP_FAILURE_PERCENT) {
        DropOutcome::Failed {
            reason: Some(DropFailure::ALL[random.below(3) as usize]),
            note: None,
        }
    } else {
        DropOutcome::Delivered {
            proof: Proof {
                photo_sha256: None,
                code: Some(format!("{:04}", random.below(10_000))),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_orders_the_same_day() {
        let seeds = Seeds::embedded().expect("seeds");
        let day = |seed| {
            let mut random = Random(seed);
            seeds
                .households
                .iter()
                .take(200)
                .map(|household| {
                    let order = order_for(household, &seeds, &mut random);
                    (order.partner, order.lines)
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(day(7), day(7));
        assert_ne!(day(7), day(8));
    }

    #[test]
    fn dialysis_households_always_order_their_kit() {
        let seeds = Seeds::embedded().expect("seeds");
        let mut random = Random(1);
        let dialysis: Vec<&Household> = seeds
            .households
            .iter()
            .filter(|h| h.vulnerabilities.contains(&Vulnerability::Dialysis))
            .collect();
        assert!(!dialysis.is_empty());
        for household in dialysis {
            let order = order_for(household, &seeds, &mut random);
            assert!(order.lines.iter().any(|l| l.item == "med-dialysis-kit"));
            assert_eq!(
                order.partner, "yonghui",
                "the pharmacy counter is Yonghui's"
            );
        }
    }
}
