//! The list of consumers, and what the process does with one: open its store, run its
//! projection, export its metrics.

use std::path::Path;
use std::sync::Arc;

use lifeline_bus::async_nats::jetstream;
use lifeline_domain::Handler;
use lifeline_events::Partitioning;
use lifeline_projection::{DriverConfig, Projection};
use lifeline_store::{ProjectionStore, StoreError};
use prometheus::core::Collector;

/// A Prometheus collector that reads a projection's store at scrape time.
pub type CollectorFn = fn(Arc<ProjectionStore>) -> Box<dyn Collector>;

/// One consumer: its rules and, if it has any, its operations metrics.
#[derive(Clone)]
pub struct Consumer {
    handler: Arc<dyn Handler>,
    collector: Option<CollectorFn>,
    /// Keeps per-community state only, so it can serve a subset of the communities
    /// (`lifeline up --partitions`); the others read every community.
    per_community: bool,
    /// The communities it applies: every one unless [`Consumer::serving`] says otherwise.
    partitioning: Partitioning,
}

/// The `meta` key under which a per-community store records which partitions it holds.
const PARTITIONS_KEY: &str = "partitions";

/// A store could not be opened for this process.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(
        "the {consumer} store at {path} holds partitions {built}, and this process serves \
         {wanted}: rebuild it with `lifeline replay {consumer}` under the new setting, or \
         start with the partitions it holds"
    )]
    Partitions {
        consumer: &'static str,
        path: String,
        built: String,
        wanted: String,
    },
}

impl std::fmt::Debug for Consumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Consumer")
            .field("name", &self.name())
            .finish_non_exhaustive()
    }
}

/// Every consumer, in start order: the registry first (the API validates against it).
/// Adding a consumer: write its handler in `lifeline-domain`, add it here, and say whether
/// its state is per community (it then may serve a partition: it must never need another
/// community's events). The registry and inventory read every community: the API checks
/// every household against the registry, and a partner's stock serves every community.
pub fn consumers() -> Vec<Consumer> {
    vec![
        Consumer::new(lifeline_domain::registry::Registry),
        Consumer::new(lifeline_domain::inventory::Inventory)
            .with_metrics(crate::inventory::metrics::collector),
        Consumer::new(lifeline_domain::delivery::DeliveryStatus)
            .with_metrics(crate::delivery::metrics::collector)
            .per_community(),
        Consumer::new(lifeline_domain::dispatch::Dispatch::default()).per_community(),
        Consumer::new(lifeline_domain::campaign::Campaigns::with_slice(
            campaign_slice(),
        ))
        .per_community(),
        Consumer::new(lifeline_domain::feed::PartnerFeed).per_community(),
    ]
}

/// Households a campaign goes through per event (`LIFELINE_CAMPAIGN_SLICE`, default
/// 1,000): more means fewer `campaign.continued` events and a larger batch in memory. The
/// consumer's fallback, and what a replica writes into the campaigns it accepts.
pub fn campaign_slice() -> usize {
    static SLICE: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *SLICE.get_or_init(|| {
        let default = lifeline_domain::campaign::DEFAULT_SLICE;
        match std::env::var("LIFELINE_CAMPAIGN_SLICE") {
            Err(_) => default,
            Ok(value) => match value.parse::<usize>() {
                Ok(slice) if slice > 0 => slice,
                _ => {
                    tracing::warn!(
                        value,
                        default,
                        "LIFELINE_CAMPAIGN_SLICE is not a positive number; using the default"
                    );
                    default
                }
            },
        }
    })
}

/// The consumer called `name`, if there is one.
pub fn consumer(name: &str) -> Option<Consumer> {
    consumers()
        .into_iter()
        .find(|consumer| consumer.name() == name)
}

impl Consumer {
    pub fn new(handler: impl Handler) -> Self {
        Consumer {
            handler: Arc::new(handler),
            collector: None,
            per_community: false,
            partitioning: Partitioning::whole(),
        }
    }

    fn per_community(self) -> Self {
        Consumer {
            per_community: true,
            ..self
        }
    }

    /// Serves the communities of `partitioning` only, if its state is per community (the
    /// others keep serving every community).
    pub fn serving(self, partitioning: &Partitioning) -> Self {
        if !self.per_community {
            return self;
        }
        Consumer {
            partitioning: partitioning.clone(),
            ..self
        }
    }

    /// The communities it applies.
    pub fn partitioning(&self) -> &Partitioning {
        &self.partitioning
    }

    pub fn with_metrics(self, collector: CollectorFn) -> Self {
        Consumer {
            collector: Some(collector),
            ..self
        }
    }

    /// Also its store directory's name, its metric label and its dead-letter subject.
    pub fn name(&self) -> &'static str {
        self.handler.name()
    }

    pub fn handler(&self) -> Arc<dyn Handler> {
        Arc::clone(&self.handler)
    }

    /// Opens (or creates) its store: one column family per table the handler writes.
    /// A per-community store records the partitions it is built with, and is refused to a
    /// process serving others (it would answer for communities it never saw, or keep
    /// communities it no longer serves). Blocking: call it off the async runtime.
    pub fn open_store(&self, directory: &Path) -> Result<Arc<ProjectionStore>, OpenError> {
        let store = self.open_store_as_built(directory)?;
        if !self.per_community {
            return Ok(store);
        }
        let wanted = self.partitioning.scope();
        // A store from before partitions existed holds every community.
        let built = match store.meta(PARTITIONS_KEY)? {
            Some(built) => String::from_utf8_lossy(&built).into_owned(),
            None if store.position()? > 0 => Partitioning::whole().scope(),
            None => wanted.clone(),
        };
        if built != wanted {
            return Err(OpenError::Partitions {
                consumer: self.name(),
                path: directory.display().to_string(),
                built,
                wanted,
            });
        }
        store.set_meta(PARTITIONS_KEY, wanted.as_bytes())?;
        Ok(store)
    }

    /// Opens its store whatever partitions it holds (a replay reading the position of the
    /// store it replaces).
    pub fn open_store_as_built(
        &self,
        directory: &Path,
    ) -> Result<Arc<ProjectionStore>, StoreError> {
        ProjectionStore::open(directory, self.handler.tables()).map(Arc::new)
    }

    /// The driver running this consumer's handler against `store`.
    pub fn projection(
        &self,
        store: Arc<ProjectionStore>,
        jetstream: jetstream::Context,
        config: DriverConfig,
    ) -> Projection {
        Projection::new(self.handler(), store, jetstream, config)
            .with_partitioning(self.partitioning.clone())
    }

    /// Exports its operations metrics from this process, if it has any.
    pub fn register_metrics(&self, store: &Arc<ProjectionStore>) {
        let Some(collector) = self.collector else {
            return;
        };
        if let Err(error) = prometheus::register(collector(Arc::clone(store))) {
            tracing::warn!(consumer = self.name(), %error, "operations metrics not registered");
        }
    }
}
