//! The inventory consumer: per partner and item, stock on hand, reserved and available.
//! The rules are in `lifeline_domain::inventory`; this crate wires them to the stream and a
//! RocksDB store, and reads the projection for the API and the demo.

pub mod metrics;

use lifeline_domain::inventory::{
    RESERVATIONS, Reservation, SHORTFALLS, STOCK, StockLevel, Waiting, line_prefix,
    parse_stock_key, stock_prefix,
};
use lifeline_store::{ProjectionStore, StoreError, decode_row};

pub use lifeline_domain::inventory::NAME;

/// One row of the stock table.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct StockRow {
    pub partner: String,
    pub item: String,
    pub on_hand: u64,
    pub reserved: u64,
    pub available: u64,
    /// What orders could not reserve and wait for, filled by the next stock in priority
    /// order.
    pub waiting: u64,
    /// How many orders wait for this item.
    pub waiting_orders: u64,
}

/// Stock of one partner (or every partner, with an empty prefix).
pub fn stock(store: &ProjectionStore, partner: Option<&str>) -> Result<Vec<StockRow>, StoreError> {
    let prefix = partner.map(stock_prefix).unwrap_or_default();
    let mut rows = Vec::new();
    for (key, value) in store.scan_prefix(STOCK, &prefix)? {
        let level: StockLevel = decode_row(STOCK, &key, &value)?;
        let (partner, item) = parse_stock_key(&key).unwrap_or((key.as_str(), ""));
        let queue = waiting(store, partner, item)?;
        rows.push(StockRow {
            partner: partner.to_owned(),
            item: item.to_owned(),
            on_hand: level.on_hand,
            reserved: level.reserved,
            available: level.available(),
            waiting: queue.iter().map(|waiting| u64::from(waiting.short)).sum(),
            waiting_orders: queue.len() as u64,
        });
    }
    Ok(rows)
}

/// What an order holds, or held, of its partner's stock.
pub fn reservation(
    store: &ProjectionStore,
    order: &str,
) -> Result<Option<Reservation>, StoreError> {
    store.get_json(RESERVATIONS, order)
}

/// The orders waiting for an item at a partner, in the order stock will fill them.
pub fn waiting(
    store: &ProjectionStore,
    partner: &str,
    item: &str,
) -> Result<Vec<Waiting>, StoreError> {
    store
        .scan_prefix(SHORTFALLS, &line_prefix(partner, item))?
        .iter()
        .map(|(key, row)| decode_row::<Waiting>(SHORTFALLS, key, row))
        .collect()
}
