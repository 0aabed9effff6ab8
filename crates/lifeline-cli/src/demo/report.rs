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
    pub households: usize,
    pub start: OffsetDateTime,
    pub end: OffsetDateTime,
    pub orders: Vec<String>,
    pub short_lines: u64,
    pub substituted_lines: u64,
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
        let (stages, stock) = tokio::task::spawn_blocking(move || {
            anyhow::Ok((
                final_stages(&delivery, &orders)?,
                lifeline_readmodel::inventory::stock(&inventory, None)?,
            ))
        })
        .await??;
        let dead_letters = read_dead_letters(jetstream, 10_000)
            .await
            .unwrap_or_default();
        println!();
        println!(
            "lockdown day in Tianlun Jincheng: {} households, simulated from {} to {}",
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
        println!("{:<24} {:>8}", "pick lines short", self.short_lines);
        println!(
            "{:<24} {:>8}",
            "pick lines substituted", self.substituted_lines
        );
        println!("{:<24} {:>8}", "tricycle runs", self.rides.runs);
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
