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

/// One order on a pick sheet: what to put in its bag.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SheetOrder {
    pub order: String,
    pub household: String,
    pub priority: lifeline_events::Priority,
    pub lines: Vec<lifeline_events::OrderLine>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SheetUnit {
    pub unit: String,
    pub orders: Vec<SheetOrder>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SheetBuilding {
    pub building: String,
    pub units: Vec<SheetUnit>,
    /// Every item of the building's orders, summed.
    pub totals: Vec<lifeline_events::OrderLine>,
}

/// A partner's waiting orders in one community, grouped the way a picker fills bags and a
/// vehicle is loaded: by building, then unit, then household, with per-item totals.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PickSheet {
    pub partner: String,
    pub community: String,
    /// The sheet's id, derived from the orders on it: picks posted with it as `batch` can
    /// be carried to the checkpoint as one arrival. The same orders give the same id.
    pub batch: String,
    pub orders: usize,
    pub buildings: Vec<SheetBuilding>,
    /// Every item of the sheet, summed: equal to the sum of the buildings' totals.
    pub totals: Vec<lifeline_events::OrderLine>,
}

/// 64-bit FNV-1a: a stable, dependency-free digest for sheet ids.
fn fnv1a(bytes: impl Iterator<Item = u8>) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in bytes {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

fn add(totals: &mut std::collections::BTreeMap<String, u64>, lines: &[lifeline_events::OrderLine]) {
    for line in lines {
        *totals.entry(line.item.clone()).or_default() += u64::from(line.quantity);
    }
}

fn lines_of(totals: std::collections::BTreeMap<String, u64>) -> Vec<lifeline_events::OrderLine> {
    totals
        .into_iter()
        .map(|(item, quantity)| lifeline_events::OrderLine {
            item,
            quantity: u32::try_from(quantity).unwrap_or(u32::MAX),
        })
        .collect()
}

/// The pick sheet of `records` (a partner's orders waiting for their pick in `community`).
/// Pure: the same orders give the same sheet, whatever order they come in.
pub fn pick_sheet(partner: &str, community: &str, records: &[OrderRecord]) -> PickSheet {
    use std::collections::BTreeMap;
    type Units<'a> = BTreeMap<&'a str, BTreeMap<(&'a str, &'a str), &'a OrderRecord>>;
    let mut by_building: BTreeMap<&str, Units<'_>> = BTreeMap::new();
    for record in records {
        by_building
            .entry(&record.building)
            .or_default()
            .entry(&record.unit)
            .or_default()
            .insert((&record.household, &record.order), record);
    }
    let mut ids: Vec<&str> = records.iter().map(|r| r.order.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    let digest = fnv1a(
        ids.iter()
            .flat_map(|id| id.bytes().chain(std::iter::once(b'\n'))),
    );
    let mut all = BTreeMap::new();
    let buildings = by_building
        .into_iter()
        .map(|(building, units)| {
            let mut totals = BTreeMap::new();
            let units = units
                .into_iter()
                .map(|(unit, orders)| SheetUnit {
                    unit: unit.to_owned(),
                    orders: orders
                        .into_values()
                        .map(|record| {
                            add(&mut totals, &record.items);
                            add(&mut all, &record.items);
                            SheetOrder {
                                order: record.order.clone(),
                                household: record.household.clone(),
                                priority: record.priority,
                                lines: record.items.clone(),
                            }
                        })
                        .collect(),
                })
                .collect();
            SheetBuilding {
                building: building.to_owned(),
                units,
                totals: lines_of(totals),
            }
        })
        .collect();
    PickSheet {
        partner: partner.to_owned(),
        community: community.to_owned(),
        batch: format!("sheet-{partner}-{community}-{digest:016x}"),
        orders: ids.len(),
        buildings,
        totals: lines_of(all),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::OrderKind;
    use crate::order::OrderStatus;
    use lifeline_events::{OrderLine, Priority};
    use proptest::prelude::*;

    fn record(order: usize, building: usize, unit: usize, lines: &[(usize, u32)]) -> OrderRecord {
        const ITEMS: [&str; 4] = ["veg-pack", "fruit-pack", "eggs", "med-insulin"];
        OrderRecord {
            order: format!("o{order:03}"),
            community: "tianlun".into(),
            building: format!("b{building}"),
            unit: format!("b{building}-u{unit}"),
            household: format!("b{building}-u{unit}-{:04}", order % 7),
            partner: "yonghui".into(),
            priority: Priority::Routine,
            placed_at_ms: 0,
            status: OrderStatus::placed(),
            is_final: false,
            run: None,
            items: lines
                .iter()
                .map(|(item, quantity)| OrderLine {
                    item: ITEMS[*item].into(),
                    quantity: *quantity,
                })
                .collect(),
            history: Vec::new(),
            campaign: None,
            escalation: None,
            kind: OrderKind::Goods,
            parcel: None,
            errand: None,
            vehicle: None,
        }
    }

    fn records() -> impl Strategy<Value = Vec<OrderRecord>> {
        prop::collection::vec(
            (
                0usize..4,
                0usize..3,
                prop::collection::vec((0usize..4, 1u32..5), 1..4),
            ),
            0..40,
        )
        .prop_map(|orders| {
            orders
                .into_iter()
                .enumerate()
                .map(|(n, (building, unit, lines))| record(n, building, unit, &lines))
                .collect()
        })
    }

    fn sum(lines: &[OrderLine], into: &mut std::collections::BTreeMap<String, u64>) {
        for line in lines {
            *into.entry(line.item.clone()).or_default() += u64::from(line.quantity);
        }
    }

    proptest! {
        /// Every order once, under its building and unit; each building's totals are the
        /// sum of its orders' lines and the sheet's the sum of all; the id depends only on
        /// which orders are on it.
        #[test]
        fn a_sheet_lists_every_order_once_and_its_totals_are_the_lines(records in records()) {
            let sheet = pick_sheet("yonghui", "tianlun", &records);
            let mut listed = Vec::new();
            let mut from_buildings = std::collections::BTreeMap::new();
            for building in &sheet.buildings {
                let mut own = std::collections::BTreeMap::new();
                for unit in &building.units {
                    for order in &unit.orders {
                        let record = records.iter().find(|r| r.order == order.order).expect("known");
                        prop_assert_eq!(&record.building, &building.building);
                        prop_assert_eq!(&record.unit, &unit.unit);
                        sum(&order.lines, &mut own);
                        listed.push(order.order.clone());
                    }
                }
                let mut totals = std::collections::BTreeMap::new();
                sum(&building.totals, &mut totals);
                prop_assert_eq!(&totals, &own);
                sum(&building.totals, &mut from_buildings);
            }
            listed.sort();
            let mut expected: Vec<String> = records.iter().map(|r| r.order.clone()).collect();
            expected.sort();
            prop_assert_eq!(&listed, &expected);
            prop_assert_eq!(sheet.orders, records.len());
            let mut all = std::collections::BTreeMap::new();
            for record in &records {
                sum(&record.items, &mut all);
            }
            let mut totals = std::collections::BTreeMap::new();
            sum(&sheet.totals, &mut totals);
            prop_assert_eq!(&totals, &all);
            prop_assert_eq!(&from_buildings, &all);
            let mut reversed = records.clone();
            reversed.reverse();
            prop_assert_eq!(pick_sheet("yonghui", "tianlun", &reversed), sheet.clone());
            prop_assert!(lifeline_events::is_token(&sheet.batch));
        }
    }
}
