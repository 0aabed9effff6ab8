//! Given/when/then for the domain's rules, so a rule test is one line:
//!
//! ```text
//! given(&[stock("yonghui", "veg-pack", 5), placed("o1", "yonghui", &[("veg-pack", 1)])])
//!     .when(|views| command::cancel_order(views, cancel("o1")))
//!     .then_refused(ErrorCode::NotCancellable);
//! ```
//!
//! `given` applies events through the registry, inventory and delivery handlers (as the
//! consumers would), each into its own [`MemoryState`]; `when` runs a command against those
//! projections, or `when_event` applies one more event to one handler.

use lifeline_events::{Actor, Envelope, Event, EventMeta};

use crate::command::{CommandError, ErrorCode, Views};
use crate::delivery::DeliveryStatus;
use crate::inventory::Inventory;
use crate::registry::Registry;
use crate::{Applied, Handler, MemoryState, Rejection, apply_atomically};

/// An envelope at a fixed time, as a test's event.
pub fn envelope(event: Event) -> Envelope {
    Envelope::new(
        event,
        EventMeta {
            time: time::macros::datetime!(2020-06-14 08:00 +08:00),
            source: "test".into(),
            actor: Actor::system("test"),
            correlation_id: lifeline_events::new_event_id(),
            causation_id: None,
        },
    )
}

/// The projections after some events.
#[derive(Debug, Default, Clone)]
pub struct Given {
    pub registry: MemoryState,
    pub inventory: MemoryState,
    pub delivery: MemoryState,
}

/// Applies `events` to the registry, inventory and delivery projections. An event any of
/// them rejects fails the test: a `given` describes a history that happened.
pub fn given(events: &[Event]) -> Given {
    let mut given = Given::default();
    for event in events {
        let envelope = envelope(event.clone());
        for (handler, state) in given.handlers() {
            if let Err(rejection) = apply_atomically(handler, state, &envelope, &mut Vec::new()) {
                panic!(
                    "given: {} rejected {}: {rejection}",
                    handler.name(),
                    envelope.event_type()
                );
            }
        }
    }
    given
}

/// Applies `events` to one projection only (`"registry"`, `"inventory"` or `"delivery"`),
/// for examples of that handler's rules. A rejected event fails the test.
pub fn given_to(projection: &str, events: &[Event]) -> Given {
    let mut given = Given::default();
    for event in events {
        if let Err(rejection) = given.when_event(projection, event.clone()) {
            panic!(
                "given: {projection} rejected {}: {rejection}",
                event.event_type()
            );
        }
    }
    given
}

impl Given {
    fn handlers(&mut self) -> [(&'static dyn Handler, &mut MemoryState); 3] {
        [
            (&Registry, &mut self.registry),
            (&Inventory, &mut self.inventory),
            (&DeliveryStatus, &mut self.delivery),
        ]
    }

    pub fn views(&self) -> Views<'_> {
        Views {
            registry: &self.registry,
            inventory: &self.inventory,
            delivery: &self.delivery,
        }
    }

    /// Runs a command against the projections.
    pub fn when<T>(&self, decide: impl FnOnce(&Views<'_>) -> Result<T, CommandError>) -> Then<T> {
        Then(decide(&self.views()))
    }

    /// Applies one more event to one of the projections (`"registry"`, `"inventory"` or
    /// `"delivery"`), returning what the handler said.
    pub fn when_event(&mut self, handler: &str, event: Event) -> Result<Applied, Rejection> {
        let envelope = envelope(event);
        let (handler, state) = self
            .handlers()
            .into_iter()
            .find(|(h, _)| h.name() == handler)
            .unwrap_or_else(|| panic!("no handler {handler}"));
        apply_atomically(handler, state, &envelope, &mut Vec::new())
    }
}

/// What a command decided.
#[derive(Debug)]
pub struct Then<T>(pub Result<T, CommandError>);

impl<T: std::fmt::Debug> Then<T> {
    /// The command was accepted; returns what it decided.
    pub fn then_ok(self) -> T {
        match self.0 {
            Ok(value) => value,
            Err(error) => panic!(
                "expected the command to pass, it was refused: {error} ({})",
                error.code()
            ),
        }
    }

    /// The command was refused for exactly this rule.
    pub fn then_refused(self, code: ErrorCode) -> CommandError {
        match self.0 {
            Ok(value) => panic!("expected {code}, the command passed: {value:?}"),
            Err(error) => {
                assert_eq!(error.code(), code, "refused for another rule: {error}");
                error
            }
        }
    }
}
