//! The delivery-status consumer: each order's stage and history, with lookups by order,
//! household, building and run. Rules in `lifeline_domain::delivery`.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use lifeline_bus::async_nats::jetstream;
use lifeline_domain::Handler;
use lifeline_domain::delivery::{
    BY_BUILDING, BY_HOUSEHOLD, DeliveryStatus, ORDERS, OrderRecord, RUNS, RunRecord,
};
use lifeline_domain::order::Stage;
use lifeline_projection::{DriverConfig, Projection};
use lifeline_store::{ProjectionStore, StoreError};

pub use lifeline_domain::delivery::NAME;

pub fn open_store(directory: &Path) -> Result<Arc<ProjectionStore>, StoreError> {
    ProjectionStore::open(directory, DeliveryStatus.tables()).map(Arc::new)
}

pub fn projection(
    store: Arc<ProjectionStore>,
    jetstream: jetstream::Context,
    config: DriverConfig,
) -> Projection<DeliveryStatus> {
    Projection::new(DeliveryStatus, store, jetstream, config)
}

fn decode<T: serde::de::DeserializeOwned>(key: &str, bytes: &[u8]) -> Option<T> {
    match serde_json::from_slice(bytes) {
        Ok(value) => Some(value),
        Err(error) => {
            tracing::error!(key, %error, "undecodable delivery row");
            None
        }
    }
}

pub fn order(store: &ProjectionStore, order: &str) -> Result<Option<OrderRecord>, StoreError> {
    Ok(store
        .get(ORDERS, order)?
        .and_then(|bytes| decode(order, &bytes)))
}

fn orders_by_index(
    store: &ProjectionStore,
    index: &str,
    owner: &str,
) -> Result<Vec<OrderRecord>, StoreError> {
    let mut orders = Vec::new();
    for (key, _) in store.scan_prefix(index, &format!("{owner}/"))? {
        let order_id = key.rsplit('/').next().unwrap_or_default();
        if let Some(record) = order(store, order_id)? {
            orders.push(record);
        }
    }
    Ok(orders)
}

pub fn orders_of_household(
    store: &ProjectionStore,
    household: &str,
) -> Result<Vec<OrderRecord>, StoreError> {
    orders_by_index(store, BY_HOUSEHOLD, household)
}

pub fn orders_in_building(
    store: &ProjectionStore,
    building: &str,
) -> Result<Vec<OrderRecord>, StoreError> {
    orders_by_index(store, BY_BUILDING, building)
}

pub fn run(store: &ProjectionStore, run: &str) -> Result<Option<RunRecord>, StoreError> {
    Ok(store.get(RUNS, run)?.and_then(|bytes| decode(run, &bytes)))
}

pub fn all_runs(store: &ProjectionStore) -> Result<Vec<RunRecord>, StoreError> {
    Ok(store
        .scan_prefix(RUNS, "")?
        .into_iter()
        .filter_map(|(key, bytes)| decode(&key, &bytes))
        .collect())
}

pub fn all_orders(store: &ProjectionStore) -> Result<Vec<OrderRecord>, StoreError> {
    Ok(store
        .scan_prefix(ORDERS, "")?
        .into_iter()
        .filter_map(|(key, bytes)| decode(&key, &bytes))
        .collect())
}

/// Orders counted by stage, and how many of them are final.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct StageCounts {
    pub by_stage: BTreeMap<&'static str, u64>,
    pub total: u64,
    pub finished: u64,
}

pub fn stage_counts(store: &ProjectionStore) -> Result<StageCounts, StoreError> {
    let mut counts = StageCounts::default();
    for stage in Stage::ALL {
        counts.by_stage.insert(stage.as_str(), 0);
    }
    for record in all_orders(store)? {
        *counts
            .by_stage
            .entry(record.status.stage.as_str())
            .or_default() += 1;
        counts.total += 1;
        if record.is_final {
            counts.finished += 1;
        }
    }
    Ok(counts)
}
