//! The read side: every consumer listed once ([`consumers`]), and the read functions of
//! their RocksDB projections for the API, the demo and the operators' metrics
//! ([`registry`], [`inventory`], [`delivery`]; dispatch keeps only its own state).
//!
//! Architecture invariant: a consumer is data, a handler from `lifeline-domain` and,
//! optionally, a metrics collector over its store. Adding one is writing its handler and
//! adding one line to [`consumers`]; nothing else matches on consumers.

mod consumers;
pub mod delivery;
pub mod inventory;
pub mod registry;

pub use consumers::{Consumer, OpenError, campaign_slice, consumer, consumers};
