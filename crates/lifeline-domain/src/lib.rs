//! Pure domain rules of lifeline: the order state machine, the inventory rules, the
//! delivery-status projection and the dispatch planner. Nothing here does I/O: a handler
//! reads and writes its state through [`StateTx`] and returns follow-up events, and the
//! projection driver (in `lifeline-projection`) maps that onto RocksDB and JetStream.

pub mod campaign;
pub mod command;
pub mod delivery;
pub mod dispatch;
pub mod feed;
pub mod inventory;
pub mod ledger;
pub mod order;
pub mod registry;
mod state;
pub mod testing;

pub use state::{
    MemoryState, Reason, Rejection, Savepoint, StateTx, StateTxExt, apply_atomically,
    overlay_prefix, overlay_window, replay_atomically, window_fetch,
};

use lifeline_events::Envelope;

/// What applying one event did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// The event changed this projection's state.
    Changed,
    /// The event is not one this projection cares about.
    Ignored,
}

/// A pure event handler: given the state (through a transaction) and one event, change the
/// state and push any follow-up events. An `Err` means the event is impossible for this
/// projection; the driver then discards every write and emit of that event and parks it.
pub trait Handler: Send + Sync + 'static {
    /// Consumer name: also the store directory, the metric label and the dead-letter subject.
    fn name(&self) -> &'static str;

    /// Column families this handler writes.
    fn tables(&self) -> &'static [&'static str];

    fn apply(
        &self,
        state: &mut dyn StateTx,
        envelope: &Envelope,
        emit: &mut Vec<Envelope>,
    ) -> Result<Applied, Rejection>;

    /// Applies an event read back by a replay, which publishes nothing: the follow-ups of
    /// the past are already in the stream and will be read back in turn. A process manager
    /// overrides this to rebuild from those facts instead of deciding again.
    fn replay(&self, state: &mut dyn StateTx, envelope: &Envelope) -> Result<Applied, Rejection> {
        self.apply(state, envelope, &mut Vec::new())
    }

    /// Whether it keeps a clock of the stream (the latest event's time) that events of
    /// communities it does not serve must move too ([`Handler::stepped_over`]).
    fn keeps_clock(&self) -> bool {
        false
    }

    /// An event of a community this consumer does not serve (another partition's) went
    /// by at `time`: only its time is read, and only if [`Handler::keeps_clock`].
    fn stepped_over(&self, _state: &mut dyn StateTx, _time: time::OffsetDateTime) {}
}
