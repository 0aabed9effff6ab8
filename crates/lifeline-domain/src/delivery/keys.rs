//! The delivery projection's keys, built and parsed here and nowhere else: the read side
//! and the metrics parse what the handler wrote with the same functions.

use lifeline_events::{DropFailure, Priority};

use super::EscalationReason;
use crate::order::Stage;

/// The counter row holding the projection's idea of "now" (the last event's time).
pub const CLOCK: &str = "clock";

/// A counter kept in the `stats` table, in the same batch as the orders it counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Counter {
    /// Orders of a community in a stage: `stage/<community>/<stage>`.
    Stage { community: String, stage: Stage },
    /// Delivered drops: `drops/<community>/delivered`.
    Delivered { community: String },
    /// Failed drops by reason: `drops/<community>/failed/<reason>`.
    Failed {
        community: String,
        reason: DropFailure,
    },
    /// Runs planned or out: `runs_open/<community>`.
    RunsOpen { community: String },
    /// Orders of a campaign in a building by stage:
    /// `campaign/<community>/<campaign>/<building>/<stage>`.
    Campaign {
        community: String,
        campaign: String,
        building: String,
        stage: Stage,
    },
    /// Open escalations of final failures:
    /// `escalations/<community>/<priority>/<reason>`.
    Escalations {
        community: String,
        priority: Priority,
        reason: EscalationReason,
    },
}

impl Counter {
    pub fn key(&self) -> String {
        match self {
            Counter::Stage { community, stage } => format!("stage/{community}/{}", stage.as_str()),
            Counter::Delivered { community } => format!("drops/{community}/delivered"),
            Counter::Failed { community, reason } => {
                format!("drops/{community}/failed/{}", reason.as_str())
            }
            Counter::RunsOpen { community } => format!("runs_open/{community}"),
            Counter::Campaign {
                community,
                campaign,
                building,
                stage,
            } => format!(
                "campaign/{community}/{campaign}/{building}/{}",
                stage.as_str()
            ),
            Counter::Escalations {
                community,
                priority,
                reason,
            } => format!(
                "escalations/{community}/{}/{}",
                priority.as_str(),
                reason.as_str()
            ),
        }
    }

    /// The counter a key names; `None` for [`CLOCK`] and anything else.
    pub fn parse(key: &str) -> Option<Counter> {
        let parts: Vec<&str> = key.split('/').collect();
        match parts.as_slice() {
            ["stage", community, stage] => Some(Counter::Stage {
                community: (*community).to_owned(),
                stage: *Stage::ALL.iter().find(|s| s.as_str() == *stage)?,
            }),
            ["drops", community, "delivered"] => Some(Counter::Delivered {
                community: (*community).to_owned(),
            }),
            ["drops", community, "failed", reason] => Some(Counter::Failed {
                community: (*community).to_owned(),
                reason: *DropFailure::ALL.iter().find(|r| r.as_str() == *reason)?,
            }),
            ["runs_open", community] => Some(Counter::RunsOpen {
                community: (*community).to_owned(),
            }),
            ["campaign", community, campaign, building, stage] => Some(Counter::Campaign {
                community: (*community).to_owned(),
                campaign: (*campaign).to_owned(),
                building: (*building).to_owned(),
                stage: *Stage::ALL.iter().find(|s| s.as_str() == *stage)?,
            }),
            ["escalations", community, priority, reason] => Some(Counter::Escalations {
                community: (*community).to_owned(),
                priority: *Priority::ALL.iter().find(|p| p.as_str() == *priority)?,
                reason: *EscalationReason::ALL
                    .iter()
                    .find(|r| r.as_str() == *reason)?,
            }),
            _ => None,
        }
    }
}

/// An index row `<owner>/<order>` (by household, building or partner).
pub fn index_key(owner: &str, order: &str) -> String {
    format!("{owner}/{order}")
}

/// The prefix of every index row of `owner`.
pub fn index_prefix(owner: &str) -> String {
    format!("{owner}/")
}

/// The order an index row of `owner` points at (`None` for a row of another owner).
pub fn order_of_index_key<'a>(key: &'a str, owner: &str) -> Option<&'a str> {
    key.strip_prefix(owner)?.strip_prefix('/')
}

/// `0` for urgent, `1` for priority, `2` for routine: most urgent sorts first.
pub fn priority_rank(priority: Priority) -> u8 {
    match priority {
        Priority::Urgent => 0,
        Priority::Priority => 1,
        Priority::Routine => 2,
    }
}

/// A row of the open-orders index: `<priority rank>/<placed unix ms, 16 digits>/<order>`,
/// so the first key under a priority is its oldest undelivered order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenKey {
    pub priority: Priority,
    pub placed_at_ms: u64,
    pub order: String,
}

impl OpenKey {
    pub fn key(&self) -> String {
        format!(
            "{}/{:016}/{}",
            priority_rank(self.priority),
            self.placed_at_ms,
            self.order
        )
    }

    pub fn parse(key: &str) -> Option<OpenKey> {
        let mut parts = key.splitn(3, '/');
        let rank: u8 = parts.next()?.parse().ok()?;
        let placed_at_ms = parts.next()?.parse().ok()?;
        let order = parts.next()?.to_owned();
        let priority = *Priority::ALL.iter().find(|p| priority_rank(**p) == rank)?;
        Some(OpenKey {
            priority,
            placed_at_ms,
            order,
        })
    }

    /// The prefix under which a priority's open orders sort, oldest first.
    pub fn prefix(priority: Priority) -> String {
        format!("{}/", priority_rank(priority))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_parses_back_to_what_built_it() {
        let counters = [
            Counter::Stage {
                community: "tianlun".into(),
                stage: Stage::AtCheckpoint,
            },
            Counter::Delivered {
                community: "tianlun".into(),
            },
            Counter::Failed {
                community: "huangtugang".into(),
                reason: DropFailure::UnitSealed,
            },
            Counter::RunsOpen {
                community: "tianlun".into(),
            },
            Counter::Escalations {
                community: "tianlun".into(),
                priority: Priority::Urgent,
                reason: EscalationReason::DropsFailed,
            },
            Counter::Campaign {
                community: "tianlun".into(),
                campaign: "0192f0c4-7a1e-7c3b-9d2e-5b6a8c9d0e1f".into(),
                building: "tianlun-b07".into(),
                stage: Stage::OnRun,
            },
        ];
        for counter in counters {
            assert_eq!(Counter::parse(&counter.key()), Some(counter));
        }
        assert_eq!(Counter::parse(CLOCK), None);
        for priority in Priority::ALL {
            let open = OpenKey {
                priority,
                placed_at_ms: 1_592_100_000_000,
                order: "0192f0c4-7a1e".into(),
            };
            assert!(open.key().starts_with(&OpenKey::prefix(priority)));
            assert_eq!(OpenKey::parse(&open.key()), Some(open));
        }
        let household = "tianlun-b07-u8-0301";
        assert_eq!(
            order_of_index_key(&index_key(household, "o1"), household),
            Some("o1")
        );
        assert_eq!(
            order_of_index_key(&index_key(household, "a/b"), household),
            Some("a/b")
        );
        assert_eq!(
            order_of_index_key("tianlun-b07-u8-0302/o1", household),
            None
        );
    }
}
