//! The dispatch process manager: plans tricycle runs from what waits at the checkpoint and
//! publishes `run.planned` with deterministic ids. Rules in `lifeline_domain::dispatch`.

use std::path::Path;
use std::sync::Arc;

use lifeline_bus::async_nats::jetstream;
use lifeline_domain::Handler;
use lifeline_domain::dispatch::Dispatch;
use lifeline_projection::{DriverConfig, Projection};
use lifeline_store::{ProjectionStore, StoreError};

pub use lifeline_domain::dispatch::NAME;

pub fn open_store(directory: &Path) -> Result<Arc<ProjectionStore>, StoreError> {
    ProjectionStore::open(directory, Dispatch.tables()).map(Arc::new)
}

pub fn projection(
    store: Arc<ProjectionStore>,
    jetstream: jetstream::Context,
    config: DriverConfig,
) -> Projection<Dispatch> {
    Projection::new(Dispatch, store, jetstream, config)
}
