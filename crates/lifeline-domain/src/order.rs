//! The order state machine: which stage an order is in and which events may move it.

use serde::{Deserialize, Serialize};

/// A failed drop is retried this many times in all before the order fails for good and is
/// escalated to staff.
pub const MAX_DROP_ATTEMPTS: u32 = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Stage {
    Placed,
    /// A medicine errand a volunteer has taken on (errands only; goods are picked instead).
    Accepted,
    Picked,
    AtCheckpoint,
    OnRun,
    Delivered,
    /// A drop failed; it rides again until the third failure, which is final.
    Failed,
    /// The partner could pick nothing at all: nothing to deliver, final at once.
    NothingPicked,
    Cancelled,
}

impl Stage {
    pub const ALL: [Stage; 9] = [
        Stage::Placed,
        Stage::Accepted,
        Stage::Picked,
        Stage::AtCheckpoint,
        Stage::OnRun,
        Stage::Delivered,
        Stage::Failed,
        Stage::NothingPicked,
        Stage::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        lifeline_events::wire_name(&self)
    }
}

/// What happens to an order, independent of the event's wire shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Cancel,
    /// `anything_picked` is false when every line was short and nothing substituted.
    Pick {
        anything_picked: bool,
    },
    ArriveAtCheckpoint,
    /// A volunteer takes on a medicine errand.
    Accept,
    /// The volunteer collected the medicine: to the checkpoint queue, or (`to_door`) on
    /// the way to the door in the volunteer's own hands.
    Collect {
        to_door: bool,
    },
    PlanOnRun,
    /// The run came back with the order still on it and no drop recorded.
    ReturnUndropped,
    Deliver,
    FailDrop,
}

/// Where an order is: its stage, how many drops failed, and whether it is finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OrderStatus {
    pub stage: Stage,
    pub failed_drops: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("an order in stage {from:?} cannot take step {step:?}")]
pub struct ImpossibleTransition {
    pub from: Stage,
    pub step: Step,
}

impl OrderStatus {
    pub fn placed() -> Self {
        OrderStatus {
            stage: Stage::Placed,
            failed_drops: 0,
        }
    }

    /// A parcel handed in at the checkpoint: it starts there, waiting for a run.
    pub fn received() -> Self {
        OrderStatus {
            stage: Stage::AtCheckpoint,
            failed_drops: 0,
        }
    }

    /// Delivered, cancelled, nothing to deliver, or out of drop attempts.
    pub fn is_final(&self) -> bool {
        match self.stage {
            Stage::Delivered | Stage::Cancelled | Stage::NothingPicked => true,
            Stage::Failed => self.failed_drops >= MAX_DROP_ATTEMPTS,
            _ => false,
        }
    }

    /// At the checkpoint waiting for a tricycle: arrived, or back after a failed drop that
    /// was not the last. The ready list and the planner agree through this.
    pub fn waits_for_run(&self) -> bool {
        self.next(Step::PlanOnRun).is_ok()
    }

    /// The status after `step`, or why the step is impossible.
    pub fn next(self, step: Step) -> Result<OrderStatus, ImpossibleTransition> {
        let impossible = Err(ImpossibleTransition {
            from: self.stage,
            step,
        });
        let stage = match (self.stage, step) {
            (Stage::Placed | Stage::Accepted, Step::Cancel) => Stage::Cancelled,
            (Stage::Placed, Step::Accept) => Stage::Accepted,
            (Stage::Accepted, Step::Collect { to_door: false }) => Stage::AtCheckpoint,
            (Stage::Accepted, Step::Collect { to_door: true }) => Stage::OnRun,
            (
                Stage::Placed,
                Step::Pick {
                    anything_picked: true,
                },
            ) => Stage::Picked,
            // Nothing to deliver: its own final stage, no drop attempted.
            (
                Stage::Placed,
                Step::Pick {
                    anything_picked: false,
                },
            ) => Stage::NothingPicked,
            (Stage::Picked, Step::ArriveAtCheckpoint) => Stage::AtCheckpoint,
            (Stage::AtCheckpoint, Step::PlanOnRun) => Stage::OnRun,
            (Stage::Failed, Step::PlanOnRun) if !self.is_final() => Stage::OnRun,
            (Stage::OnRun, Step::ReturnUndropped) => Stage::AtCheckpoint,
            (Stage::OnRun, Step::Deliver) => Stage::Delivered,
            (Stage::OnRun, Step::FailDrop) => {
                return Ok(OrderStatus {
                    stage: Stage::Failed,
                    failed_drops: self.failed_drops + 1,
                });
            }
            _ => return impossible,
        };
        Ok(OrderStatus {
            stage,
            failed_drops: self.failed_drops,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn run(steps: &[Step]) -> Result<OrderStatus, ImpossibleTransition> {
        steps
            .iter()
            .try_fold(OrderStatus::placed(), |status, step| status.next(*step))
    }

    const PICK: Step = Step::Pick {
        anything_picked: true,
    };

    #[test]
    fn table_of_paths() {
        use Step::*;
        let cases: &[(&[Step], Option<Stage>)] = &[
            (
                &[PICK, ArriveAtCheckpoint, PlanOnRun, Deliver],
                Some(Stage::Delivered),
            ),
            (&[Cancel], Some(Stage::Cancelled)),
            (&[PICK, Cancel], None),
            (&[Deliver], None),
            (&[PICK, Deliver], None),
            (&[PICK, ArriveAtCheckpoint, Deliver], None),
            (
                &[Pick {
                    anything_picked: false,
                }],
                Some(Stage::NothingPicked),
            ),
            (
                &[
                    Pick {
                        anything_picked: false,
                    },
                    PlanOnRun,
                ],
                None,
            ),
            (
                &[
                    PICK,
                    ArriveAtCheckpoint,
                    PlanOnRun,
                    FailDrop,
                    PlanOnRun,
                    Deliver,
                ],
                Some(Stage::Delivered),
            ),
            (
                &[
                    PICK,
                    ArriveAtCheckpoint,
                    PlanOnRun,
                    ReturnUndropped,
                    PlanOnRun,
                    Deliver,
                ],
                Some(Stage::Delivered),
            ),
            (
                &[PICK, ArriveAtCheckpoint, PlanOnRun, Deliver, Cancel],
                None,
            ),
            // Medicine errands: accepted, then collected to the checkpoint or the door.
            (
                &[Accept, Collect { to_door: false }, PlanOnRun, Deliver],
                Some(Stage::Delivered),
            ),
            (
                &[Accept, Collect { to_door: true }, Deliver],
                Some(Stage::Delivered),
            ),
            (
                &[Accept, Collect { to_door: true }, FailDrop, PlanOnRun],
                Some(Stage::OnRun),
            ),
            (&[Accept, Cancel], Some(Stage::Cancelled)),
            (&[Accept, Accept], None),
            (&[Accept, Collect { to_door: true }, Cancel], None),
            (&[Collect { to_door: false }], None),
            (&[PICK, Accept], None),
            (&[Accept, PICK], None),
            (
                &[PICK, ArriveAtCheckpoint, PlanOnRun, Deliver, Deliver],
                None,
            ),
            (
                &[
                    PICK,
                    ArriveAtCheckpoint,
                    PlanOnRun,
                    FailDrop,
                    PlanOnRun,
                    FailDrop,
                    PlanOnRun,
                    FailDrop,
                    PlanOnRun,
                ],
                None,
            ),
        ];
        for (steps, expected) in cases {
            assert_eq!(run(steps).ok().map(|s| s.stage), *expected, "{steps:?}");
        }
    }

    #[test]
    fn third_failed_drop_is_final() {
        use Step::*;
        let status = run(&[
            PICK,
            ArriveAtCheckpoint,
            PlanOnRun,
            FailDrop,
            PlanOnRun,
            FailDrop,
            PlanOnRun,
            FailDrop,
        ])
        .expect("valid path");
        assert_eq!(status.failed_drops, MAX_DROP_ATTEMPTS);
        assert!(status.is_final());
    }

    fn any_step() -> impl Strategy<Value = Step> {
        prop_oneof![
            Just(Step::Cancel),
            any::<bool>().prop_map(|anything_picked| Step::Pick { anything_picked }),
            Just(Step::ArriveAtCheckpoint),
            Just(Step::Accept),
            any::<bool>().prop_map(|to_door| Step::Collect { to_door }),
            Just(Step::PlanOnRun),
            Just(Step::ReturnUndropped),
            Just(Step::Deliver),
            Just(Step::FailDrop),
        ]
    }

    proptest! {
        /// Whatever steps arrive, impossible ones are refused and the reachable states obey
        /// the invariants: a final order never moves again, delivered happens at most once,
        /// failed drops never exceed the limit.
        #[test]
        fn state_machine_never_reaches_an_impossible_state(steps in prop::collection::vec(any_step(), 0..40)) {
            let mut status = OrderStatus::placed();
            let mut deliveries = 0;
            for step in steps {
                let was_final = status.is_final();
                match status.next(step) {
                    Ok(next) => {
                        prop_assert!(!was_final, "final order moved: {status:?} -> {next:?}");
                        if next.stage == Stage::Delivered { deliveries += 1; }
                        status = next;
                    }
                    Err(error) => prop_assert_eq!(error.from, status.stage),
                }
                prop_assert!(status.failed_drops <= MAX_DROP_ATTEMPTS);
                prop_assert!(deliveries <= 1);
                if status.stage == Stage::Cancelled { prop_assert_eq!(status.failed_drops, 0); }
            }
        }
    }
}
