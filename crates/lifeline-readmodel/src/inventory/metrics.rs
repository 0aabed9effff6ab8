//! Stock metrics of the inventory projection, read from its state at scrape time. Items are
//! a small fixed catalogue, so partner and item are safe labels.

use std::sync::Arc;

use lifeline_store::ProjectionStore;
use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{IntGaugeVec, Opts};

fn gauge(name: &str, help: &str) -> IntGaugeVec {
    IntGaugeVec::new(Opts::new(name, help), &["partner", "item"]).expect("valid metric")
}

fn available() -> IntGaugeVec {
    gauge(
        "lifeline_inventory_stock_available_items",
        "Stock on hand and not reserved by an order.",
    )
}

fn on_hand() -> IntGaugeVec {
    gauge(
        "lifeline_inventory_stock_on_hand_items",
        "Stock on the partner's shelves.",
    )
}

fn reserved() -> IntGaugeVec {
    gauge(
        "lifeline_inventory_stock_reserved_items",
        "Stock reserved by orders not yet picked.",
    )
}

fn waiting() -> IntGaugeVec {
    gauge(
        "lifeline_inventory_shortfall_waiting_items",
        "Items orders could not reserve and wait for, filled by the next stock (urgent first).",
    )
}

/// Registered once per process that runs the inventory consumer.
pub struct InventoryCollector {
    store: Arc<ProjectionStore>,
    descs: Vec<Desc>,
}

impl InventoryCollector {
    pub fn new(store: Arc<ProjectionStore>) -> Self {
        let mut descs = Vec::new();
        for metric in [available(), on_hand(), reserved(), waiting()] {
            descs.extend(metric.desc().into_iter().cloned());
        }
        InventoryCollector { store, descs }
    }
}

impl Collector for InventoryCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let rows = match super::stock(&self.store, None) {
            Ok(rows) => rows,
            Err(error) => {
                tracing::error!(%error, "cannot read stock metrics");
                return Vec::new();
            }
        };
        let (available, on_hand, reserved, waiting) =
            (available(), on_hand(), reserved(), waiting());
        let clamp = |value: u64| i64::try_from(value).unwrap_or(i64::MAX);
        for row in &rows {
            let labels = [row.partner.as_str(), row.item.as_str()];
            available
                .with_label_values(&labels)
                .set(clamp(row.available));
            on_hand.with_label_values(&labels).set(clamp(row.on_hand));
            reserved.with_label_values(&labels).set(clamp(row.reserved));
            waiting.with_label_values(&labels).set(clamp(row.waiting));
        }
        let mut families = available.collect();
        families.extend(on_hand.collect());
        families.extend(reserved.collect());
        families.extend(waiting.collect());
        families
    }
}

/// The collector as the consumer list takes it.
pub fn collector(store: Arc<ProjectionStore>) -> Box<dyn Collector> {
    Box::new(InventoryCollector::new(store))
}
