//! What a partner's pick sheets and the checkpoint's vehicles read from the delivery
//! projection: the orders waiting for their pick, in the order a picker walks the estate
//! (community, building, unit, household), and the orders picked from each sheet.
//!
//! An order waits in [`PICKING`] from its placing until it leaves stage `placed` (picked,
//! cancelled); a pick that names a sheet (`batch`) puts it in [`BY_BATCH`], where an arrival
//! finds the sheet's orders. A sheet reads only the rows it lists, however long the day.

use lifeline_events::OrderPicked;

use super::OrderRecord;
use crate::StateTx;

/// `<partner>/<community>/<building>/<unit>/<household>/<order>`: orders waiting for their
/// pick, in walking order.
pub const PICKING: &str = "picking";
/// `<partner>/<batch>/<order>`: orders picked from a pick sheet.
pub const BY_BATCH: &str = "by_batch";

/// The prefix of a partner's waiting orders in a community (and one building of it).
pub fn picking_prefix(partner: &str, community: &str, building: Option<&str>) -> String {
    match building {
        Some(building) => format!("{partner}/{community}/{building}/"),
        None => format!("{partner}/{community}/"),
    }
}

fn picking_key(record: &OrderRecord) -> String {
    format!(
        "{}/{}/{}/{}/{}/{}",
        record.partner,
        record.community,
        record.building,
        record.unit,
        record.household,
        record.order
    )
}

/// The order in a `picking` row's key.
pub fn order_of_picking_key(key: &str) -> &str {
    key.rsplit('/').next().unwrap_or_default()
}

/// The prefix of the orders picked from `batch`.
pub fn batch_prefix(partner: &str, batch: &str) -> String {
    format!("{partner}/{batch}/")
}

/// A partner's order starts waiting for its pick.
pub(super) fn wait(state: &mut dyn StateTx, record: &OrderRecord) {
    if !record.partner.is_empty() {
        state.put(PICKING, &picking_key(record), Vec::new());
    }
}

/// The order left stage `placed`: it is on no pick sheet any more.
pub(super) fn leave(state: &mut dyn StateTx, record: &OrderRecord) {
    if !record.partner.is_empty() {
        state.delete(PICKING, &picking_key(record));
    }
}

/// A pick from a sheet: the sheet's vehicle can now carry it.
pub(super) fn picked_from(state: &mut dyn StateTx, picked: &OrderPicked) {
    if let Some(batch) = &picked.batch {
        let key = format!("{}{}", batch_prefix(&picked.partner, batch), picked.order);
        state.put(BY_BATCH, &key, Vec::new());
    }
}
