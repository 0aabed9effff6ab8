//! The list of consumers, and what the process does with one: open its store, run its
//! projection, export its metrics.

use std::path::Path;
use std::sync::Arc;

use lifeline_bus::async_nats::jetstream;
use lifeline_domain::Handler;
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
}

impl std::fmt::Debug for Consumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Consumer")
            .field("name", &self.name())
            .finish_non_exhaustive()
    }
}

/// Every consumer, in start order: the registry first (the API validates against it).
/// Adding a consumer: write its handler in `lifeline-domain`, add it here.
pub fn consumers() -> Vec<Consumer> {
    vec![
        Consumer::new(lifeline_domain::registry::Registry),
        Consumer::new(lifeline_domain::inventory::Inventory)
            .with_metrics(crate::inventory::metrics::collector),
        Consumer::new(lifeline_domain::delivery::DeliveryStatus)
            .with_metrics(crate::delivery::metrics::collector),
        Consumer::new(lifeline_domain::dispatch::Dispatch::default()),
        Consumer::new(lifeline_domain::campaign::Campaigns::with_slice(
            campaign_slice(),
        )),
        Consumer::new(lifeline_domain::feed::PartnerFeed),
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
        }
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
    /// Blocking: call it off the async runtime.
    pub fn open_store(&self, directory: &Path) -> Result<Arc<ProjectionStore>, StoreError> {
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
