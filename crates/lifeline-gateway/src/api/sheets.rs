//! Pick sheets: a partner's orders waiting for their pick in one community, grouped by
//! building, unit and household with per-item totals, as JSON, CSV or a printable page.
//! Grouping in `lifeline_domain::delivery::sheets::pick_sheet`; this file adds the names
//! (English and Chinese) and the formats. A pick posted with the sheet's `batch` lets a
//! vehicle carry the whole sheet in one arrival (`batches` of `POST .../arrivals`).

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use lifeline_domain::delivery::sheets::{PickSheet, pick_sheet};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{Api, Params, blocking, token_or_404};
use crate::access::{Caller, Role};
use crate::error::{ApiError, ErrorBody};

/// The most orders one sheet lists (a vehicle carries at most
/// `command::MAX_ARRIVAL_ORDERS` of them in one arrival).
pub const MAX_SHEET_ORDERS: usize = lifeline_domain::command::MAX_BATCH_ORDERS;
/// What a sheet lists unless asked: what one vehicle may carry.
pub const DEFAULT_SHEET_ORDERS: usize = lifeline_domain::command::MAX_ARRIVAL_ORDERS;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SheetFilter {
    /// The community (required).
    pub community: Option<String>,
    /// Only this building.
    pub building: Option<String>,
    /// At most this many orders, in walking order (default 1000, at most 10000).
    pub limit: Option<usize>,
    /// `json` (default), `csv`, or `html` (a printable page).
    pub format: Option<String>,
}

/// A name in English and Chinese.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Names {
    pub name: Option<String>,
    pub name_zh: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PickSheetView {
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub sheet: PickSheet,
    /// Names of the buildings, units and items on the sheet, by id.
    pub names: BTreeMap<String, Names>,
}

/// The partner's pick sheet for a community.
#[utoipa::path(get, path = "/v1/partners/{partner}/pick-sheet", tag = "partners",
    params(("partner" = String, Path), SheetFilter),
    responses((status = 200, description = "the sheet: JSON by default, CSV (one row per order line) or a printable page with `format`",
            content((PickSheetView = "application/json"), (String = "text/csv"), (String = "text/html"))),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub(super) async fn pick_sheet_of(
    State(api): State<Arc<Api>>,
    caller: Caller,
    Path(partner): Path<String>,
    Params(filter): Params<SheetFilter>,
) -> Result<Response, ApiError> {
    token_or_404(&partner, "partner")?;
    let community = filter.community.ok_or_else(|| {
        ApiError::BadRequest("the query parameter `community` is required".to_owned())
    })?;
    token_or_404(&community, "community")?;
    // The community is in the query, where the partition middleware does not look.
    api.serves(&community)?;
    if let Some(building) = &filter.building {
        token_or_404(building, "building")?;
    }
    let allowed = caller.is_partner(&partner)
        || caller.is(Role::Operator)
        || caller.reads_community(&community);
    if !allowed {
        return Err(caller.forbidden("see this partner's pick sheet"));
    }
    let limit = filter.limit.unwrap_or(DEFAULT_SHEET_ORDERS);
    if limit == 0 || limit > MAX_SHEET_ORDERS {
        return Err(ApiError::BadRequest(format!(
            "`limit` is 1 to {MAX_SHEET_ORDERS}"
        )));
    }
    let format = filter.format.unwrap_or_else(|| "json".to_owned());
    if !["json", "csv", "html"].contains(&format.as_str()) {
        return Err(ApiError::BadRequest(
            "`format` is json, csv or html".to_owned(),
        ));
    }
    let (delivery, registry) = (Arc::clone(&api.delivery), Arc::clone(&api.registry));
    let view = blocking(move || {
        let records = lifeline_readmodel::delivery::waiting_for_pick(
            &delivery,
            &partner,
            &community,
            filter.building.as_deref(),
            limit,
        )?;
        let sheet = pick_sheet(&partner, &community, &records);
        let mut names = BTreeMap::new();
        for building in &sheet.buildings {
            if let Some(known) =
                lifeline_readmodel::registry::building(&registry, &building.building)?
            {
                names.insert(
                    known.building,
                    Names {
                        name: Some(known.name),
                        name_zh: known.name_zh,
                    },
                );
            }
            for unit in &building.units {
                if let Some(known) = lifeline_readmodel::registry::unit(&registry, &unit.unit)? {
                    names.insert(
                        known.unit,
                        Names {
                            name: known.name,
                            name_zh: known.name_zh,
                        },
                    );
                }
            }
        }
        for line in &sheet.totals {
            if let Some(known) = lifeline_readmodel::registry::item(&registry, &line.item)? {
                names.insert(
                    known.item,
                    Names {
                        name: Some(known.name),
                        name_zh: known.name_zh,
                    },
                );
            }
        }
        Ok(PickSheetView { sheet, names })
    })
    .await?;
    Ok(match format.as_str() {
        "csv" => (
            [(header::CONTENT_TYPE, "text/csv; charset=utf-8")],
            csv(&view),
        )
            .into_response(),
        "html" => (
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            html(&view),
        )
            .into_response(),
        _ => Json(view).into_response(),
    })
}

fn name_of<'a>(view: &'a PickSheetView, id: &str) -> (&'a str, &'a str) {
    view.names.get(id).map_or(("", ""), |names| {
        (
            names.name.as_deref().unwrap_or_default(),
            names.name_zh.as_deref().unwrap_or_default(),
        )
    })
}

fn csv_field(value: &str) -> String {
    // A name typed by staff that starts like a formula is kept as text in a spreadsheet.
    let value = if value.starts_with(['=', '+', '-', '@']) {
        format!("'{value}")
    } else {
        value.to_owned()
    };
    if value.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value
    }
}

/// One row per order line, in walking order; the totals are the sum of `quantity`.
fn csv(view: &PickSheetView) -> String {
    let sheet = &view.sheet;
    let mut out = String::from(
        "batch,community,building,building_name,building_name_zh,unit,unit_name_zh,household,order,priority,item,item_name,item_name_zh,quantity\n",
    );
    for building in &sheet.buildings {
        let (building_name, building_zh) = name_of(view, &building.building);
        for unit in &building.units {
            let (_, unit_zh) = name_of(view, &unit.unit);
            for order in &unit.orders {
                for line in &order.lines {
                    let (item_name, item_zh) = name_of(view, &line.item);
                    let fields = [
                        sheet.batch.as_str(),
                        &sheet.community,
                        &building.building,
                        building_name,
                        building_zh,
                        &unit.unit,
                        unit_zh,
                        &order.household,
                        &order.order,
                        order.priority.as_str(),
                        &line.item,
                        item_name,
                        item_zh,
                        &line.quantity.to_string(),
                    ];
                    let row: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
                    out.push_str(&row.join(","));
                    out.push('\n');
                }
            }
        }
    }
    out
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn totals_table(out: &mut String, view: &PickSheetView, lines: &[lifeline_events::OrderLine]) {
    out.push_str("<table class=totals><tr><th>item</th><th>物品</th><th>quantity</th></tr>");
    for line in lines {
        let (name, zh) = name_of(view, &line.item);
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td class=n>{}</td></tr>",
            escape(if name.is_empty() { &line.item } else { name }),
            escape(zh),
            line.quantity
        );
    }
    out.push_str("</table>");
}

/// A page to print: one section per building (a page break between), its orders by unit
/// and household, and its totals; the sheet's totals at the end.
fn html(view: &PickSheetView) -> String {
    let sheet = &view.sheet;
    let mut out = String::from(
        "<!doctype html><html lang=zh-CN><meta charset=utf-8><title>Pick sheet 拣货单</title>\
         <style>body{font:13px sans-serif;margin:1.5em}h2{break-before:page;margin-top:1.5em}\
         table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #999;padding:2px 6px;text-align:left}\
         .n{text-align:right}@media print{h2:first-of-type{break-before:auto}}</style>",
    );
    let _ = write!(
        out,
        "<h1>Pick sheet 拣货单: {} · {}</h1><p>batch 批次 <b>{}</b> · {} orders 单</p>",
        escape(&sheet.partner),
        escape(&sheet.community),
        escape(&sheet.batch),
        sheet.orders
    );
    for building in &sheet.buildings {
        let (name, zh) = name_of(view, &building.building);
        let _ = write!(
            out,
            "<h2>{} {} <small>({})</small></h2><table><tr><th>unit 单元</th><th>household 住户</th><th>order 订单</th><th>priority</th><th>items 物品</th></tr>",
            escape(name),
            escape(zh),
            escape(&building.building)
        );
        for unit in &building.units {
            let (unit_name, unit_zh) = name_of(view, &unit.unit);
            let unit_name = if unit_name.is_empty() && unit_zh.is_empty() {
                unit.unit.as_str()
            } else {
                unit_name
            };
            for order in &unit.orders {
                let items: Vec<String> = order
                    .lines
                    .iter()
                    .map(|line| {
                        let (item, item_zh) = name_of(view, &line.item);
                        let item = if item.is_empty() {
                            line.item.as_str()
                        } else {
                            item
                        };
                        format!("{} {} × {}", escape(item), escape(item_zh), line.quantity)
                    })
                    .collect();
                let _ = write!(
                    out,
                    "<tr><td>{} {}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                    escape(unit_name),
                    escape(unit_zh),
                    escape(&order.household),
                    escape(&order.order),
                    order.priority.as_str(),
                    items.join("<br>")
                );
            }
        }
        out.push_str("</table>");
        totals_table(&mut out, view, &building.totals);
    }
    out.push_str("<h2>Totals 合计</h2>");
    totals_table(&mut out, view, &sheet.totals);
    out.push_str("</html>");
    out
}
