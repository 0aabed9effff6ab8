//! The supermarkets' side of the day: each partner prints pick sheets (one per building, a
//! vehicle's load at most), picks every order on a sheet naming the sheet's batch, and a
//! vehicle (a lent car or the partner's van) carries each sheet to the checkpoint in one
//! arrival. Before any pick, the whole day's sheet of yonghui is checked against the orders:
//! its totals must equal their lines.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Instant;

use lifeline_bus::Publisher;
use lifeline_bus::async_nats::jetstream;
use lifeline_domain::command::{self, CommandError};
use lifeline_domain::delivery::sheets::{PickSheet, pick_sheet};
use lifeline_events::{Actor, ActorKind, Envelope, Event, OrderPlaced, new_event_id};
use lifeline_seeds::Seeds;

use super::simulation::{self, Clock, PICK_SECS, Random, VEHICLE_LOAD, VEHICLE_SECS};
use super::{Bars, Projections, Refusals, head, meta, report};

/// The pick sheet of one partner for a whole community, checked against the orders.
#[derive(Debug, Clone)]
pub struct SheetCheck {
    pub partner: String,
    pub community: String,
    pub orders: usize,
    pub buildings: usize,
    /// The sheet's totals equal the lines of the partner's orders waiting in the community.
    pub totals_match: bool,
}

/// What the picking did.
#[derive(Debug, Default)]
pub struct Picking {
    pub short_lines: u64,
    pub substituted_lines: u64,
    /// One per sheet, with what was picked from it (orders that handed over goods).
    sheets: Vec<(PickSheet, Vec<String>)>,
    pub checks: Vec<SheetCheck>,
}

impl Picking {
    pub fn sheets(&self) -> usize {
        self.sheets.len()
    }
}

/// Where the day's goods are handled.
pub struct Floor<'a> {
    pub projections: &'a Arc<Projections>,
    pub publisher: &'a Publisher,
    pub jetstream: &'a jetstream::Context,
    pub clock: &'a Clock,
    pub deadline: Instant,
}

/// The partner's orders waiting for their pick in a community (one building, or all).
async fn waiting(
    projections: &Projections,
    partner: &str,
    community: &str,
    building: Option<&str>,
) -> anyhow::Result<PickSheet> {
    let store = Arc::clone(&projections.delivery);
    let (partner, community, building) = (
        partner.to_owned(),
        community.to_owned(),
        building.map(str::to_owned),
    );
    Ok(tokio::task::spawn_blocking(move || {
        lifeline_readmodel::delivery::waiting_for_pick(
            &store,
            &partner,
            &community,
            building.as_deref(),
            usize::MAX,
        )
        .map(|records| pick_sheet(&partner, &community, &records))
    })
    .await??)
}

/// The whole day's sheet of `partner` in each community, against the orders placed.
async fn check_sheets(
    projections: &Projections,
    seeds: &Seeds,
    partner: &str,
    orders: &[OrderPlaced],
    cancelled: &BTreeSet<String>,
) -> anyhow::Result<Vec<SheetCheck>> {
    let mut checks = Vec::new();
    for community in &seeds.communities {
        let sheet = waiting(projections, partner, &community.community, None).await?;
        let mut expected: BTreeMap<String, u64> = BTreeMap::new();
        let mut count = 0;
        for order in orders.iter().filter(|order| {
            order.partner == partner
                && order.community == community.community
                && !cancelled.contains(&order.order)
        }) {
            count += 1;
            for line in &order.lines {
                *expected.entry(line.item.clone()).or_default() += u64::from(line.quantity);
            }
        }
        let totals: BTreeMap<String, u64> = sheet
            .totals
            .iter()
            .map(|line| (line.item.clone(), u64::from(line.quantity)))
            .collect();
        checks.push(SheetCheck {
            partner: partner.to_owned(),
            community: community.community.clone(),
            orders: sheet.orders,
            buildings: sheet.buildings.len(),
            totals_match: totals == expected && sheet.orders == count,
        });
    }
    Ok(checks)
}

/// Every partner prints its sheets and picks every order on them.
pub async fn pick(
    floor: &Floor<'_>,
    seeds: &Seeds,
    orders: &[OrderPlaced],
    cancelled: &BTreeSet<String>,
    random: &mut Random,
    refusals: &mut Refusals,
    bars: &Bars,
) -> anyhow::Result<Picking> {
    let projections = floor.projections;
    projections
        .caught_up(head(floor.jetstream).await?, floor.deadline)
        .await?;
    let mut picking = Picking {
        checks: check_sheets(projections, seeds, "yonghui", orders, cancelled).await?,
        ..Picking::default()
    };
    let mut sheets = Vec::new();
    for community in &seeds.communities {
        for partner in seeds
            .partners
            .iter()
            .filter(|p| p.communities.contains(&community.community))
        {
            for building in seeds
                .buildings
                .iter()
                .filter(|b| b.community == community.community)
            {
                let all = waiting(
                    projections,
                    &partner.partner,
                    &community.community,
                    Some(&building.building),
                )
                .await?;
                let ids: Vec<String> = all
                    .buildings
                    .iter()
                    .flat_map(|b| &b.units)
                    .flat_map(|u| &u.orders)
                    .map(|o| o.order.clone())
                    .collect();
                // One sheet a vehicle's load: what `?building=..&limit=120` prints, sheet
                // after sheet.
                for load in ids.chunks(VEHICLE_LOAD) {
                    let store = Arc::clone(&projections.delivery);
                    let load = load.to_vec();
                    let (partner, community) =
                        (partner.partner.clone(), community.community.clone());
                    let sheet = tokio::task::spawn_blocking(move || {
                        let mut records = Vec::with_capacity(load.len());
                        for order in &load {
                            if let Some(record) =
                                lifeline_readmodel::delivery::order(&store, order)?
                            {
                                records.push(record);
                            }
                        }
                        anyhow::Ok(pick_sheet(&partner, &community, &records))
                    })
                    .await??;
                    sheets.push(sheet);
                }
            }
        }
    }
    let total: usize = sheets.iter().map(|sheet| sheet.orders).sum();
    let bar = bars.bar("picking", total);
    for sheet in sheets {
        let to_pick: Vec<String> = sheet
            .buildings
            .iter()
            .flat_map(|b| &b.units)
            .flat_map(|u| &u.orders)
            .map(|o| o.order.clone())
            .collect();
        let (partner, batch) = (sheet.partner.clone(), sheet.batch.clone());
        let mut sheet_random = Random(random.next());
        let decided = projections
            .decide(move |views| {
                to_pick
                    .into_iter()
                    .map(|order| {
                        let reservation = views.reservation(&order)?.ok_or_else(|| {
                            CommandError::NotYetVisible {
                                what: format!("the reservation of order {order}"),
                            }
                        })?;
                        let mut pick =
                            simulation::pick_for(&order, &partner, &reservation, &mut sheet_random);
                        pick.batch = Some(batch.clone());
                        command::pick_order(views, pick)
                    })
                    .collect::<Vec<_>>()
            })
            .await?;
        let mut events = Vec::with_capacity(decided.len());
        let mut handed_over = Vec::new();
        for picked in decided {
            let Some(picked) = refusals.keep(picked) else {
                continue;
            };
            floor.clock.advance(PICK_SECS);
            let tally = report::tally_pick(&picked);
            picking.short_lines += tally.short;
            picking.substituted_lines += tally.substituted;
            if tally.anything {
                handed_over.push(picked.order.clone());
            }
            let actor = Actor::new(ActorKind::Partner, picked.partner.clone());
            let source = format!("partner-{}", picked.partner);
            events.push(Envelope::new(
                Event::OrderPicked(picked),
                meta(floor.clock, &source, actor),
            ));
        }
        floor.publisher.publish_all(&events).await?;
        bar.inc(events.len() as u64);
        picking.sheets.push((sheet, handed_over));
    }
    bar.finish_with_message("picked");
    Ok(picking)
}

/// Each sheet with goods on it rides to its community's checkpoint in one arrival: a car
/// lent to the community or the partner's van, in turn.
pub async fn bring(
    floor: &Floor<'_>,
    seeds: &Seeds,
    picking: &Picking,
    refusals: &mut Refusals,
    bars: &Bars,
) -> anyhow::Result<()> {
    let projections = floor.projections;
    projections
        .caught_up(head(floor.jetstream).await?, floor.deadline)
        .await?;
    let total: usize = picking.sheets.iter().map(|(_, picked)| picked.len()).sum();
    let bar = bars.bar("arriving", total);
    for (index, (sheet, picked)) in picking.sheets.iter().enumerate() {
        if picked.is_empty() {
            continue;
        }
        let vehicles: Vec<&str> = seeds
            .vehicles
            .iter()
            .filter(|v| {
                v.community == sheet.community
                    && v.partner
                        .as_ref()
                        .is_none_or(|owner| *owner == sheet.partner)
            })
            .map(|v| v.vehicle.as_str())
            .collect();
        let vehicle = (!vehicles.is_empty()).then(|| vehicles[index % vehicles.len()].to_owned());
        let command = command::Arrival {
            arrival: new_event_id().to_string(),
            community: sheet.community.clone(),
            partner: sheet.partner.clone(),
            orders: Vec::new(),
            driver: vehicle.as_ref().map(|v| format!("driver of {v}")),
            vehicle,
            batches: vec![sheet.batch.clone()],
        };
        let decided = projections
            .decide(move |views| command::arrive(views, command))
            .await?;
        let Some(arrival) = refusals.keep(decided) else {
            continue;
        };
        let actor = Actor::new(
            ActorKind::Staff,
            format!("staff-{}-checkpoint", sheet.community),
        );
        let envelope = Envelope::new(
            Event::ArrivedAtCheckpoint(arrival),
            meta(floor.clock, "lifeline-demo", actor),
        );
        floor.clock.advance(VEHICLE_SECS);
        floor.publisher.publish(&envelope, None).await?;
        bar.inc(picked.len() as u64);
    }
    bar.finish_with_message("at the checkpoint");
    Ok(())
}
