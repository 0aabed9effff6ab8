//! The demo's closing summary: orders by final stage, picks, runs, stock left, dead
//! letters, and any command the domain refused.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::Arc;

use lifeline_bus::async_nats::jetstream;
use lifeline_bus::read_dead_letters;
use lifeline_events::{OrderPicked, PickOutcome};
use lifeline_store::ProjectionStore;
use time::OffsetDateTime;

use super::Refusals;
use super::couriers::Rides;

/// What one pick did, for the summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PickTally {
    pub short: u64,
    pub substituted: u64,
    /// Whether the pick hands over any goods (nothing picked: the order ends there).
    pub anything: bool,
}

pub fn tally_pick(picked: &OrderPicked) -> PickTally {
    let mut tally = PickTally {
        short: 0,
        substituted: 0,
        anything: lifeline_domain::delivery::anything_picked(picked),
    };
    for line in &picked.lines {
        match line.outcome {
            PickOutcome::Short => tally.short += 1,
            PickOutcome::Substituted => tally.substituted += 1,
            PickOutcome::Picked => {}
        }
    }
    tally
}

/// How many of the day's orders are final, and every order's stage counted.
#[derive(Debug, Default)]
pub struct FinalStages {
    pub final_count: usize,
    pub by_stage: BTreeMap<&'static str, usize>,
}

/// Whether orders in this stage may be final (a failed drop is final only at its last
/// attempt): the cheap gate before [`still_open`] looks at each order.
pub fn may_be_final(stage: &str) -> bool {
    use lifeline_domain::order::Stage;
    [
        Stage::Delivered,
        Stage::Cancelled,
        Stage::NothingPicked,
        Stage::Failed,
    ]
    .iter()
    .any(|final_stage| final_stage.as_str() == stage)
}

/// The orders of `orders` not yet in a final stage, and the stages they are in (RocksDB:
/// call it on the blocking pool). Polling only what is still open keeps the wait for the
/// end of the day from growing with the day.
pub fn still_open(
    store: &ProjectionStore,
    orders: Vec<String>,
) -> anyhow::Result<(Vec<String>, BTreeMap<&'static str, usize>)> {
    let mut open = Vec::with_capacity(orders.len());
    let mut by_stage = BTreeMap::new();
    for order in orders {
        let record = lifeline_readmodel::delivery::order(store, &order)?;
        if let Some(record) = &record {
            if record.is_final {
                continue;
            }
            *by_stage.entry(record.status.stage.as_str()).or_default() += 1;
        }
        open.push(order);
    }
    Ok((open, by_stage))
}

/// Reads the delivery projection (RocksDB: call it on the blocking pool).
pub fn final_stages(store: &ProjectionStore, orders: &[String]) -> anyhow::Result<FinalStages> {
    let mut stages = FinalStages::default();
    for order in orders {
        if let Some(record) = lifeline_readmodel::delivery::order(store, order)? {
            if record.is_final {
                stages.final_count += 1;
            }
            *stages
                .by_stage
                .entry(record.status.stage.as_str())
                .or_default() += 1;
        }
    }
    Ok(stages)
}

/// The day as played.
pub struct Day {
    /// The communities that played (id, name).
    pub communities: Vec<(String, String)>,
    /// Each community's melon campaign, when it ran.
    pub melons: BTreeMap<String, String>,
    pub households: usize,
    pub start: OffsetDateTime,
    pub end: OffsetDateTime,
    pub orders: Vec<String>,
    pub short_lines: u64,
    pub substituted_lines: u64,
    /// Pick sheets picked and carried to a checkpoint.
    pub sheets: usize,
    /// The whole day's sheet of a partner per community, against the orders.
    pub sheet_checks: Vec<super::sheets::SheetCheck>,
    pub rides: Rides,
    pub refusals: Refusals,
    pub finished: bool,
}

impl Day {
    /// Prints the summary; exits 0 only when every order reached a final stage and the
    /// domain refused none of the simulated people's commands.
    pub async fn print(
        self,
        delivery: &Arc<ProjectionStore>,
        inventory: &Arc<ProjectionStore>,
        jetstream: &jetstream::Context,
    ) -> anyhow::Result<ExitCode> {
        let (delivery, inventory) = (Arc::clone(delivery), Arc::clone(inventory));
        let orders = self.orders.clone();
        let melons = self.melons.clone();
        let communities: Vec<String> = self.communities.iter().map(|(id, _)| id.clone()).collect();
        let end_ms = u64::try_from(self.end.unix_timestamp_nanos() / 1_000_000).unwrap_or(0);
        let ledger_store = Arc::clone(&delivery);
        let ledger_communities = communities.clone();
        let ledger =
            tokio::task::spawn_blocking(move || ledger(&ledger_store, &ledger_communities, end_ms))
                .await??;
        let (stages, stock, melon_progress) = tokio::task::spawn_blocking(move || {
            let mut progress = BTreeMap::new();
            for (community, campaign) in &melons {
                progress.extend(lifeline_readmodel::delivery::campaign_progress(
                    &delivery, community, campaign,
                )?);
            }
            anyhow::Ok((
                final_stages(&delivery, &orders)?,
                lifeline_readmodel::inventory::stock(&inventory, None)?,
                progress,
            ))
        })
        .await??;
        let dead_letters = read_dead_letters(jetstream, 10_000)
            .await
            .unwrap_or_default();
        println!();
        let names: Vec<&str> = self
            .communities
            .iter()
            .map(|(_, name)| name.as_str())
            .collect();
        println!(
            "lockdown day in {}: {} households, simulated from {} to {}",
            names.join(" and "),
            self.households,
            self.start.time(),
            self.end.time()
        );
        println!();
        println!("{:<24} {:>8}", "orders by final stage", "count");
        for (stage, count) in &stages.by_stage {
            println!("  {stage:<22} {count:>8}");
        }
        println!("  {:<22} {:>8}", "total", self.orders.len());
        println!();
        for check in &self.sheet_checks {
            println!(
                "pick sheet {}/{}: {} orders in {} buildings, totals equal the orders' lines: {}",
                check.partner,
                check.community,
                check.orders,
                check.buildings,
                if check.totals_match { "yes" } else { "NO" }
            );
        }
        println!(
            "{:<24} {:>8} (each picked and carried in one arrival)",
            "pick sheets", self.sheets
        );
        println!("{:<24} {:>8}", "pick lines short", self.short_lines);
        println!(
            "{:<24} {:>8}",
            "pick lines substituted", self.substituted_lines
        );
        if !melon_progress.is_empty() {
            print_melon(&melon_progress);
        }
        ledger.print();
        println!("{:<24} {:>8}", "tricycle runs", self.rides.runs);
        let km = |metres: u64| metres as f64 / 1000.0;
        println!(
            "{:<24} {:>8.1} km (checkpoint, the stops in planned order, checkpoint)",
            "distance ridden",
            km(self.rides.distance_m)
        );
        println!(
            "  {:<22} {:>8.1} km ({} runs off the map, not counted)",
            "between buildings",
            km(self.rides.between_m),
            self.rides.unmapped_runs
        );
        println!("{:<24} {:>8}", "drops delivered", self.rides.delivered);
        println!("{:<24} {:>8}", "drops failed", self.rides.failed);
        println!();
        println!(
            "{:<12} {:<20} {:>9} {:>9} {:>9}",
            "partner", "stock left", "on hand", "reserved", "available"
        );
        for row in stock {
            println!(
                "{:<12} {:<20} {:>9} {:>9} {:>9}",
                row.partner, row.item, row.on_hand, row.reserved, row.available
            );
        }
        println!();
        let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
        for letter in &dead_letters {
            *reasons
                .entry(format!("{}/{}", letter.consumer, letter.reason))
                .or_default() += 1;
        }
        println!("{:<24} {:>8}", "dead letters", dead_letters.len());
        for (reason, count) in reasons {
            println!("  {reason:<22} {count:>8}");
        }
        if let Some(reason) = &self.rides.gave_up {
            println!("{:<24} {reason}", "couriers stopped");
        }
        let refused: u64 = self.refusals.0.values().sum();
        println!("{:<24} {:>8}", "commands refused", refused);
        for (code, count) in &self.refusals.0 {
            println!("  {code:<22} {count:>8}");
        }
        let sheets_match = self.sheet_checks.iter().all(|check| check.totals_match);
        if !sheets_match {
            println!("\na pick sheet's totals differ from the orders' lines");
            return Ok(ExitCode::FAILURE);
        }
        if self.finished && refused == 0 && self.rides.gave_up.is_none() {
            println!("\nevery order reached a final stage");
            Ok(ExitCode::SUCCESS)
        } else if self.rides.gave_up.is_some() {
            println!("\na courier could not ride a run; the day did not finish");
            Ok(ExitCode::FAILURE)
        } else if !self.finished {
            println!("\nnot every order reached a final stage before the deadline");
            Ok(ExitCode::FAILURE)
        } else {
            println!("\nthe domain refused commands the simulated people sent");
            Ok(ExitCode::FAILURE)
        }
    }
}

/// The melon campaign per building: ordered, delivered, failed (for good, or nothing to
/// pick), and still on the way.
fn print_melon(progress: &BTreeMap<String, BTreeMap<&'static str, u64>>) {
    println!();
    println!(
        "{:<24} {:>8} {:>9} {:>7} {:>8}",
        "melon campaign", "ordered", "delivered", "failed", "on way"
    );
    let mut totals = [0u64; 4];
    for (building, stages) in progress {
        let count = |names: &[&str]| -> u64 {
            names
                .iter()
                .map(|name| stages.get(name).copied().unwrap_or(0))
                .sum()
        };
        let row = [
            stages.values().sum(),
            count(&["delivered"]),
            count(&["failed", "nothing_picked"]),
            count(&["placed", "picked", "at_checkpoint", "on_run"]),
        ];
        for (total, value) in totals.iter_mut().zip(row) {
            *total += value;
        }
        println!(
            "  {building:<22} {:>8} {:>9} {:>7} {:>8}",
            row[0], row[1], row[2], row[3]
        );
    }
    println!(
        "  {:<22} {:>8} {:>9} {:>7} {:>8}",
        "total", totals[0], totals[1], totals[2], totals[3]
    );
    println!();
}

/// "Not one missed" at the end of the day: what waits for staff, and the vulnerable
/// households with no delivery today, each with why.
struct Ledger {
    escalations: BTreeMap<&'static str, u64>,
    unserved: Vec<(String, String)>,
}

fn ledger(
    delivery: &ProjectionStore,
    communities: &[String],
    end_ms: u64,
) -> anyhow::Result<Ledger> {
    let mut escalations = BTreeMap::new();
    let mut unserved = Vec::new();
    for community in communities {
        for escalated in lifeline_readmodel::delivery::escalations(delivery, community, end_ms)? {
            *escalations.entry(escalated.reason.as_str()).or_default() += 1;
        }
        unserved.extend(unserved_in(delivery, community)?);
    }
    Ok(Ledger {
        escalations,
        unserved,
    })
}

/// A community's vulnerable households with no delivery today, each with why.
fn unserved_in(
    delivery: &ProjectionStore,
    community: &str,
) -> anyhow::Result<Vec<(String, String)>> {
    let mut unserved = Vec::new();
    for row in lifeline_readmodel::delivery::vulnerable_unserved(delivery, community)? {
        let household = row["household"].as_str().unwrap_or_default().to_owned();
        let orders = lifeline_readmodel::delivery::orders_of_household(delivery, &household)?;
        let why = match orders.iter().max_by_key(|order| order.placed_at_ms) {
            None => "no order today".to_owned(),
            Some(order) => match &order.escalation {
                Some(escalation) => format!(
                    "{} ({}), escalated to staff",
                    order.status.stage.as_str(),
                    escalation.reason.as_str()
                ),
                None => format!("last order {}", order.status.stage.as_str()),
            },
        };
        unserved.push((household, why));
    }
    Ok(unserved)
}

impl Ledger {
    fn print(&self) {
        let escalated: u64 = self.escalations.values().sum();
        println!("{:<24} {:>8}", "escalated to staff", escalated);
        for (reason, count) in &self.escalations {
            println!("  {reason:<22} {count:>8}");
        }
        println!("{:<24} {:>8}", "vulnerable unserved", self.unserved.len());
        for (household, why) in self.unserved.iter().take(20) {
            println!("  {household:<22} {why}");
        }
        if self.unserved.len() > 20 {
            println!("  ... and {} more", self.unserved.len() - 20);
        }
        println!();
    }
}
