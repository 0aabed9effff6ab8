//! Operations metrics of the delivery projection, read from its state at scrape time, so
//! they are exactly what the projection holds (and what a replay would hold).

use std::sync::Arc;

use lifeline_store::ProjectionStore;
use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{GaugeVec, IntCounterVec, IntGaugeVec, Opts};

fn orders() -> IntGaugeVec {
    IntGaugeVec::new(
        Opts::new(
            "lifeline_delivery_orders",
            "Orders in each stage now, per community.",
        ),
        &["community", "stage"],
    )
    .expect("valid metric")
}

fn drops() -> IntCounterVec {
    IntCounterVec::new(
        Opts::new(
            "lifeline_delivery_drops_total",
            "Drops acknowledged by couriers, by outcome and failure reason.",
        ),
        &["community", "outcome", "reason"],
    )
    .expect("valid metric")
}

fn runs() -> IntGaugeVec {
    IntGaugeVec::new(
        Opts::new(
            "lifeline_delivery_runs_in_progress",
            "Tricycle runs planned or out, not yet returned.",
        ),
        &["community"],
    )
    .expect("valid metric")
}

fn oldest() -> GaugeVec {
    GaugeVec::new(
        Opts::new(
            "lifeline_delivery_oldest_undelivered_age_seconds",
            "Age of the oldest order not yet final, by priority class (0 when none), at scrape time.",
        ),
        &["priority"],
    )
    .expect("valid metric")
}

fn vulnerable() -> IntGaugeVec {
    IntGaugeVec::new(
        Opts::new(
            "lifeline_delivery_vulnerable_households_unserved",
            "Vulnerable households (elderly alone, dialysis, pregnant, exam student, disabled) with no delivery today.",
        ),
        &["community"],
    )
    .expect("valid metric")
}

fn vulnerable_long() -> IntGaugeVec {
    IntGaugeVec::new(
        Opts::new(
            "lifeline_delivery_vulnerable_households_unserved_24h",
            "Vulnerable households with no delivery for 24 h (counted from registration when never served), at scrape time.",
        ),
        &["community"],
    )
    .expect("valid metric")
}

fn campaign_orders() -> IntGaugeVec {
    IntGaugeVec::new(
        Opts::new(
            "lifeline_campaign_orders",
            "A campaign's orders in each stage now, per building.",
        ),
        &["community", "campaign", "building", "stage"],
    )
    .expect("valid metric")
}

fn escalations() -> IntGaugeVec {
    IntGaugeVec::new(
        Opts::new(
            "lifeline_delivery_escalations_open",
            "Orders escalated to staff and not yet closed (failed for good, nothing picked, or overdue), by community, priority and reason.",
        ),
        &["community", "priority", "reason"],
    )
    .expect("valid metric")
}

/// Registered once per process that runs the delivery consumer.
pub struct DeliveryCollector {
    store: Arc<ProjectionStore>,
    descs: Vec<Desc>,
}

impl DeliveryCollector {
    pub fn new(store: Arc<ProjectionStore>) -> Self {
        let mut descs = Vec::new();
        descs.extend(orders().desc().into_iter().cloned());
        descs.extend(drops().desc().into_iter().cloned());
        descs.extend(runs().desc().into_iter().cloned());
        descs.extend(oldest().desc().into_iter().cloned());
        descs.extend(vulnerable().desc().into_iter().cloned());
        descs.extend(vulnerable_long().desc().into_iter().cloned());
        descs.extend(escalations().desc().into_iter().cloned());
        descs.extend(campaign_orders().desc().into_iter().cloned());
        DeliveryCollector { store, descs }
    }
}

impl Collector for DeliveryCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let snapshot = match super::ops_snapshot(&self.store) {
            Ok(snapshot) => snapshot,
            Err(error) => {
                tracing::error!(%error, "cannot read delivery metrics");
                return Vec::new();
            }
        };
        let (orders, drops, runs, oldest, vulnerable) =
            (orders(), drops(), runs(), oldest(), vulnerable());
        for ((community, stage), count) in &snapshot.orders_by_stage {
            orders
                .with_label_values(&[community, stage])
                .set(i64::try_from(*count).unwrap_or(i64::MAX));
        }
        for ((community, outcome, reason), count) in &snapshot.drops {
            drops
                .with_label_values(&[community, outcome, reason])
                .inc_by(*count);
        }
        for (community, count) in &snapshot.runs_in_progress {
            runs.with_label_values(&[community])
                .set(i64::try_from(*count).unwrap_or(i64::MAX));
        }
        for (priority, seconds) in &snapshot.oldest_undelivered_seconds {
            oldest.with_label_values(&[priority]).set(*seconds);
        }
        for (community, count) in &snapshot.vulnerable_unserved {
            vulnerable
                .with_label_values(&[community])
                .set(i64::try_from(*count).unwrap_or(i64::MAX));
        }
        let long = vulnerable_long();
        for (community, count) in &snapshot.vulnerable_unserved_24h {
            long.with_label_values(&[community])
                .set(i64::try_from(*count).unwrap_or(i64::MAX));
        }
        let escalations = escalations();
        for ((community, priority, reason), count) in &snapshot.escalations_open {
            escalations
                .with_label_values(&[community.as_str(), priority, reason])
                .set(i64::try_from(*count).unwrap_or(i64::MAX));
        }
        let campaigns = campaign_orders();
        for ((community, campaign, building, stage), count) in &snapshot.campaign_orders {
            campaigns
                .with_label_values(&[community.as_str(), campaign, building, stage])
                .set(i64::try_from(*count).unwrap_or(i64::MAX));
        }
        let mut families = orders.collect();
        families.extend(drops.collect());
        families.extend(runs.collect());
        families.extend(oldest.collect());
        families.extend(vulnerable.collect());
        families.extend(long.collect());
        families.extend(escalations.collect());
        families.extend(campaigns.collect());
        families
    }
}

/// The collector as the consumer list takes it.
pub fn collector(store: Arc<ProjectionStore>) -> Box<dyn Collector> {
    Box::new(DeliveryCollector::new(store))
}
