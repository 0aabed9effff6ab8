//! `lifeline demo`: one lockdown day in Tianlun Jincheng, on a simulated clock.
//!
//! Every household orders (staff order for those who cannot), partners pick from their
//! reserved stock (short where stock ran out, now and then a substitution), vehicles bring
//! the goods to the railway checkpoint, dispatch plans tricycle runs, couriers drop at each
//! door (some drops fail and are retried). The real consumers run in this process against
//! a real nats-server; the simulated people publish events like any client would.

use std::collections::{BTreeMap, BTreeSet};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use lifeline_bus::async_nats::jetstream;
use lifeline_bus::{EventReader, Publisher, read_dead_letters, stream_head};
use lifeline_domain::inventory::Reservation;
use lifeline_events::{
    Actor, ActorKind, ArrivedAtCheckpoint, DropDelivered, DropFailed, DropFailure, EVENT_STREAM,
    Envelope, Event, EventMeta, ItemKind, OrderCancelled, OrderLine, OrderPicked, OrderPlaced,
    PickLine, PickOutcome, Priority, Proof, RunDeparted, RunPlanned, RunReturned, Substitute,
    Vulnerability, new_event_id,
};
use lifeline_seeds::{Household, Seeds};
use lifeline_store::ProjectionStore;
use time::OffsetDateTime;
use time::macros::datetime;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::Common;
use crate::components::{Component, Running, connect, start_consumers};

const COMMUNITY: &str = "tianlun";
const VEHICLE_LOAD: usize = 120;
const DROP_FAILURE_PERCENT: u64 = 8;
const CANCEL_PERCENT: u64 = 1;

/// SplitMix64: small, seeded, good enough for a simulation, no dependency.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn percent(&mut self, p: u64) -> bool {
        self.below(100) < p
    }
}

/// The simulated clock: starts at 06:00 on 14 June 2020, Beijing time, and moves only
/// when the simulation says work took time (an order typed in, a pick, a vehicle, a run).
#[derive(Default)]
struct Clock {
    elapsed_secs: AtomicU64,
}

impl Clock {
    const START: OffsetDateTime = datetime!(2020-06-14 06:00 +08:00);

    fn now(&self) -> OffsetDateTime {
        Clock::START + Duration::from_secs(self.elapsed_secs.load(Ordering::Relaxed))
    }

    fn advance(&self, seconds: u64) {
        self.elapsed_secs.fetch_add(seconds, Ordering::Relaxed);
    }
}

/// Simulated seconds each piece of work takes.
const ORDER_SECS: u64 = 2;
const PICK_SECS: u64 = 3;
const VEHICLE_SECS: u64 = 5 * 60;
const RUN_SECS: u64 = 90;

fn meta(
    clock: &Clock,
    source: &str,
    actor: Actor,
    correlation: uuid::Uuid,
    causation: Option<uuid::Uuid>,
) -> EventMeta {
    EventMeta {
        time: clock.now(),
        source: source.to_owned(),
        actor,
        correlation_id: correlation,
        causation_id: causation,
    }
}

/// What one household orders: packages mostly, medicine for those who need it.
fn order_for(
    household: &Household,
    seeds: &Seeds,
    random: &mut Random,
) -> (String, Vec<OrderLine>, Priority) {
    let mut lines: BTreeMap<&str, u32> = BTreeMap::new();
    lines.insert("veg-pack", 1 + u32::from(household.head_count > 3));
    if random.percent(55) {
        lines.insert("fruit-pack", 1);
    }
    if random.percent(25) {
        lines.insert("staples-pack", 1);
    }
    for extra in ["eggs", "milk", "bread"] {
        if random.percent(6) {
            lines.insert(extra, 1);
        }
    }
    let needs = &household.vulnerabilities;
    if needs.contains(&Vulnerability::Dialysis) {
        lines.insert("med-dialysis-kit", 1);
    }
    if needs.contains(&Vulnerability::ElderlyAlone) && random.percent(40) {
        lines.insert("med-blood-pressure", 1);
    }
    if random.percent(1) {
        lines.insert("med-insulin", 1);
    }
    let has_medicine = lines.keys().any(|item| {
        seeds
            .item(item)
            .is_some_and(|entry| entry.kind == ItemKind::Medicine)
    });
    // Yonghui has the pharmacy counter and the staples; Shuocheng sells produce.
    let needs_yonghui = has_medicine
        || lines
            .keys()
            .any(|item| !["veg-pack", "fruit-pack", "staples-pack", "eggs"].contains(item));
    let partner = if needs_yonghui || random.percent(50) {
        "yonghui"
    } else {
        "shuocheng"
    };
    let priority = if has_medicine {
        Priority::Urgent
    } else if needs.is_empty() {
        Priority::Routine
    } else {
        Priority::Priority
    };
    let lines = lines
        .into_iter()
        .map(|(item, quantity)| OrderLine {
            item: item.to_owned(),
            quantity,
        })
        .collect();
    (partner.to_owned(), lines, priority)
}

fn weight(seeds: &Seeds, lines: &[OrderLine]) -> u32 {
    lines
        .iter()
        .map(|line| seeds.item(&line.item).map_or(0, |item| item.weight_g) * line.quantity)
        .sum()
}

/// Polls a store until its position reaches `sequence`.
async fn caught_up(running: &[Running], sequence: u64, deadline: Instant) -> anyhow::Result<()> {
    loop {
        let behind = running
            .iter()
            .any(|r| r.status.position.load(std::sync::atomic::Ordering::Relaxed) < sequence);
        if !behind {
            return Ok(());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "consumers did not catch up before the deadline"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn head(jetstream: &jetstream::Context) -> anyhow::Result<u64> {
    Ok(stream_head(jetstream, EVENT_STREAM).await?)
}

fn store_of(running: &[Running], component: Component) -> Arc<ProjectionStore> {
    running
        .iter()
        .find(|r| r.component == component)
        .map(|r| Arc::clone(&r.store))
        .expect("every component runs in the demo")
}

pub async fn run(
    mut common: Common,
    households: usize,
    seed: u64,
    timeout_secs: u64,
) -> anyhow::Result<ExitCode> {
    // A fresh data directory unless one was given, so each demo plays a clean day.
    let _temporary;
    if std::env::var_os("LIFELINE_DATA_DIR").is_none()
        && common.data_dir.as_os_str() == "lifeline-data"
    {
        let directory = tempfile::tempdir().context("cannot create a temporary data dir")?;
        common.data_dir = directory.path().to_owned();
        _temporary = Some(directory);
    }
    let deadline = Instant::now() + Duration::from_secs(timeout_secs);
    let mut seeds =
        Seeds::load(&lifeline_seeds::default_directory()).context("cannot load seed data")?;
    seeds.restrict(COMMUNITY, Some(households));
    let connection = connect(&common, "lifeline-demo").await?;
    let jetstream = connection.jetstream.clone();
    let (trigger, shutdown) = watch::channel(false);
    crate::components::stop_on_signal(trigger.clone());
    let mut tasks = JoinSet::new();
    let running = start_consumers(
        &jetstream,
        &common.data_dir,
        &Component::ALL,
        &shutdown,
        &mut tasks,
    )?;
    let clock = Arc::new(Clock::default());
    let mut random = Random(seed);

    let progress = MultiProgress::new();
    let style = ProgressStyle::with_template("{prefix:>10} {bar:40} {pos:>5}/{len:5} {msg}")
        .expect("valid template");
    let bar = |prefix: &str, length: usize| {
        let bar = progress.add(ProgressBar::new(length as u64));
        bar.set_style(style.clone());
        bar.set_prefix(prefix.to_owned());
        bar
    };

    // 1. The registry, catalogue and opening stock.
    let publisher = Publisher::new(jetstream.clone(), "demo");
    let seed_events = seeds.events(clock.now());
    let seeding = bar("seeding", seed_events.len());
    for chunk in seed_events.chunks(1000) {
        publisher.publish_all(chunk).await?;
        seeding.inc(chunk.len() as u64);
    }
    seeding.finish_with_message("registry loaded");

    // Couriers listen for planned runs from here on.
    let courier_start = head(&jetstream).await?;
    let courier = tokio::spawn(couriers(
        jetstream.clone(),
        courier_start,
        Arc::clone(&clock),
        seeds
            .volunteers
            .iter()
            .filter(|v| v.group == "rapid_delivery")
            .map(|v| v.volunteer.clone())
            .collect(),
        seed ^ 0x5eed,
        shutdown.clone(),
    ));

    // 2. Every household orders; staff order for the elderly living alone and the disabled.
    let ordering = bar("ordering", seeds.households.len());
    let mut orders: Vec<OrderPlaced> = Vec::with_capacity(seeds.households.len());
    let mut batch = Vec::new();
    for household in &seeds.households {
        let (partner, lines, priority) = order_for(household, &seeds, &mut random);
        let on_behalf = household
            .vulnerabilities
            .iter()
            .any(|v| matches!(v, Vulnerability::ElderlyAlone | Vulnerability::Disabled));
        let placed = OrderPlaced {
            order: new_event_id().to_string(),
            community: COMMUNITY.to_owned(),
            building: household.building.clone(),
            unit: household.unit.clone(),
            household: household.household.clone(),
            partner,
            weight_g: weight(&seeds, &lines),
            lines,
            priority,
            on_behalf_by: on_behalf.then(|| "staff-tianlun-hotline".to_owned()),
        };
        let actor = if on_behalf {
            Actor::new(ActorKind::Staff, "staff-tianlun-hotline")
        } else {
            Actor::new(ActorKind::Resident, household.household.clone())
        };
        let correlation = new_event_id();
        clock.advance(ORDER_SECS);
        batch.push(Envelope::new(
            Event::OrderPlaced(placed.clone()),
            meta(&clock, "lifeline-demo", actor, correlation, None),
        ));
        orders.push(placed);
        if batch.len() == 500 {
            publisher.publish_all(&batch).await?;
            ordering.inc(batch.len() as u64);
            batch.clear();
        }
    }
    publisher.publish_all(&batch).await?;
    ordering.inc(batch.len() as u64);
    ordering.finish_with_message("orders placed");

    // A few residents change their minds before the partner picks.
    let mut cancelled = BTreeSet::new();
    let mut cancels = Vec::new();
    for order in &orders {
        if random.percent(CANCEL_PERCENT) {
            cancelled.insert(order.order.clone());
            cancels.push(Envelope::new(
                Event::OrderCancelled(OrderCancelled {
                    order: order.order.clone(),
                    community: COMMUNITY.to_owned(),
                    reason: "resident cancelled".to_owned(),
                }),
                meta(
                    &clock,
                    "lifeline-demo",
                    Actor::new(ActorKind::Resident, order.household.clone()),
                    new_event_id(),
                    None,
                ),
            ));
        }
    }
    publisher.publish_all(&cancels).await?;

    // 3. Partners pick what the inventory reserved for each order.
    caught_up(&running, head(&jetstream).await?, deadline).await?;
    let inventory = store_of(&running, Component::Inventory);
    let picking = bar("picking", orders.len() - cancelled.len());
    let mut picked_orders: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let (mut short_lines, mut substituted_lines) = (0u64, 0u64);
    let mut batch = Vec::new();
    for order in orders.iter().filter(|o| !cancelled.contains(&o.order)) {
        let reservation = lifeline_inventory::reservation(&inventory, &order.order)?
            .with_context(|| format!("order {} has no reservation", order.order))?;
        let lines = pick_lines(&reservation, &mut random);
        clock.advance(PICK_SECS);
        for line in &lines {
            match line.outcome {
                PickOutcome::Short => short_lines += 1,
                PickOutcome::Substituted => substituted_lines += 1,
                PickOutcome::Picked => {}
            }
        }
        let anything = lines
            .iter()
            .any(|line| line.picked > 0 || line.substitute.is_some());
        if anything {
            picked_orders
                .entry(order.partner.clone())
                .or_default()
                .push(order.order.clone());
        }
        batch.push(Envelope::new(
            Event::OrderPicked(OrderPicked {
                order: order.order.clone(),
                community: COMMUNITY.to_owned(),
                partner: order.partner.clone(),
                lines,
            }),
            meta(
                &clock,
                &format!("partner-{}", order.partner),
                Actor::new(ActorKind::Partner, order.partner.clone()),
                new_event_id(),
                None,
            ),
        ));
        if batch.len() == 500 {
            publisher.publish_all(&batch).await?;
            picking.inc(batch.len() as u64);
            batch.clear();
        }
    }
    publisher.publish_all(&batch).await?;
    picking.inc(batch.len() as u64);
    picking.finish_with_message("picked");

    // 4. Vehicles bring picked orders to the railway checkpoint, a load at a time.
    let arriving_total: usize = picked_orders.values().map(Vec::len).sum();
    let arriving = bar("arriving", arriving_total);
    for (partner, order_ids) in &picked_orders {
        for load in order_ids.chunks(VEHICLE_LOAD) {
            let arrival = Envelope::new(
                Event::ArrivedAtCheckpoint(ArrivedAtCheckpoint {
                    arrival: new_event_id().to_string(),
                    community: COMMUNITY.to_owned(),
                    partner: partner.clone(),
                    orders: load.to_vec(),
                }),
                meta(
                    &clock,
                    "lifeline-demo",
                    Actor::new(ActorKind::Staff, "staff-tianlun-checkpoint"),
                    new_event_id(),
                    None,
                ),
            );
            clock.advance(VEHICLE_SECS);
            publisher.publish(&arrival, None).await?;
            arriving.inc(load.len() as u64);
        }
    }
    arriving.finish_with_message("at the checkpoint");

    // 5. Watch the delivery-status projection until every order is final.
    let delivery = store_of(&running, Component::Delivery);
    let delivering = bar("final", orders.len());
    let order_ids: Vec<String> = orders.iter().map(|o| o.order.clone()).collect();
    let finished = loop {
        let store = Arc::clone(&delivery);
        let ids = order_ids.clone();
        let (final_count, by_stage) =
            tokio::task::spawn_blocking(move || final_stages(&store, &ids)).await??;
        delivering.set_position(final_count as u64);
        delivering.set_message(format!("{by_stage:?}"));
        if final_count == orders.len() {
            break true;
        }
        if Instant::now() > deadline || *shutdown.borrow() {
            break false;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    delivering.finish();

    // Stop everything, committing what is in flight.
    let _ = trigger.send(true);
    while let Some(joined) = tasks.join_next().await {
        if let Ok((component, Err(error))) = joined {
            tracing::error!(component = component.name(), %error, "consumer failed");
        }
    }
    let rides = courier.await.unwrap_or_default();

    // 6. The summary.
    let store = Arc::clone(&delivery);
    let ids = order_ids.clone();
    let (_, by_stage) = tokio::task::spawn_blocking(move || final_stages(&store, &ids)).await??;
    let dead_letters = read_dead_letters(&jetstream, 10_000)
        .await
        .unwrap_or_default();
    println!();
    println!(
        "lockdown day in Tianlun Jincheng: {} households, simulated from {} to {}",
        seeds.households.len(),
        Clock::START.time(),
        clock.now().time()
    );
    println!();
    println!("{:<24} {:>8}", "orders by final stage", "count");
    for (stage, count) in &by_stage {
        println!("  {stage:<22} {count:>8}");
    }
    println!("  {:<22} {:>8}", "total", orders.len());
    println!();
    println!("{:<24} {:>8}", "pick lines short", short_lines);
    println!("{:<24} {:>8}", "pick lines substituted", substituted_lines);
    println!("{:<24} {:>8}", "tricycle runs", rides.runs);
    println!("{:<24} {:>8}", "drops delivered", rides.delivered);
    println!("{:<24} {:>8}", "drops failed", rides.failed);
    println!();
    println!(
        "{:<12} {:<20} {:>9} {:>9} {:>9}",
        "partner", "stock left", "on hand", "reserved", "available"
    );
    for row in lifeline_inventory::stock(&inventory, None)? {
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
    if finished {
        println!("\nevery order reached a final stage");
        Ok(ExitCode::SUCCESS)
    } else {
        println!("\nnot every order reached a final stage before the deadline");
        Ok(ExitCode::FAILURE)
    }
}

/// The partner's pick: what was reserved is picked, the rest is short; now and then a fruit
/// package is swapped for a watermelon (there are plenty).
fn pick_lines(reservation: &Reservation, random: &mut Random) -> Vec<PickLine> {
    reservation
        .lines
        .iter()
        .map(|line| {
            if line.reserved == line.requested && line.item == "fruit-pack" && random.percent(3) {
                return PickLine {
                    item: line.item.clone(),
                    ordered: line.requested,
                    outcome: PickOutcome::Substituted,
                    picked: 0,
                    substitute: Some(Substitute {
                        item: "watermelon".to_owned(),
                        quantity: 1,
                    }),
                };
            }
            let outcome = if line.reserved == line.requested {
                PickOutcome::Picked
            } else {
                PickOutcome::Short
            };
            PickLine {
                item: line.item.clone(),
                ordered: line.requested,
                outcome,
                picked: line.reserved,
                substitute: None,
            }
        })
        .collect()
}

/// How many of `orders` are final, and every order's stage counted.
fn final_stages(
    store: &ProjectionStore,
    orders: &[String],
) -> anyhow::Result<(usize, BTreeMap<&'static str, usize>)> {
    let mut final_count = 0;
    let mut by_stage = BTreeMap::new();
    for order in orders {
        if let Some(record) = lifeline_delivery::order(store, order)? {
            if record.is_final {
                final_count += 1;
            }
            *by_stage.entry(record.status.stage.as_str()).or_default() += 1;
        }
    }
    Ok((final_count, by_stage))
}

/// What the couriers did.
#[derive(Debug, Default)]
struct Rides {
    runs: u64,
    delivered: u64,
    failed: u64,
}

/// The couriers: take each planned run, ride it, drop at every door (some drops fail),
/// come back.
async fn couriers(
    jetstream: jetstream::Context,
    start: u64,
    clock: Arc<Clock>,
    volunteers: Vec<String>,
    seed: u64,
    mut shutdown: watch::Receiver<bool>,
) -> Rides {
    let mut random = Random(seed);
    let publisher = Publisher::new(jetstream.clone(), "demo-couriers");
    let mut reader = match EventReader::open(&jetstream, EVENT_STREAM, start, 256).await {
        Ok(reader) => reader,
        Err(error) => {
            tracing::error!(%error, "couriers cannot read the stream");
            return Rides::default();
        }
    };
    let mut ridden = Rides::default();
    loop {
        let batch = tokio::select! {
            _ = shutdown.changed() => return ridden,
            batch = reader.next_batch() => batch,
        };
        let Some(Ok(batch)) = batch else {
            return ridden;
        };
        for message in batch {
            let Ok(envelope) = Envelope::decode(&message.payload) else {
                continue;
            };
            let Event::RunPlanned(planned) = &envelope.event else {
                continue;
            };
            let courier = volunteers
                .get(random.below(volunteers.len() as u64) as usize)
                .cloned()
                .unwrap_or_else(|| "vol-unknown".to_owned());
            clock.advance(RUN_SECS);
            let events = ride(&envelope, planned, &courier, &clock, &mut random);
            for event in &events {
                match event.event {
                    Event::DropDelivered(_) => ridden.delivered += 1,
                    Event::DropFailed(_) => ridden.failed += 1,
                    _ => {}
                }
            }
            if let Err(error) = publisher.publish_all(&events).await {
                tracing::error!(%error, run = %planned.run, "courier could not report the run");
                return ridden;
            }
            ridden.runs += 1;
        }
    }
}

fn ride(
    cause: &Envelope,
    planned: &RunPlanned,
    courier: &str,
    clock: &Clock,
    random: &mut Random,
) -> Vec<Envelope> {
    let actor = Actor::new(ActorKind::Courier, courier);
    let follow = |event: Event| {
        Envelope::new(
            event,
            meta(
                clock,
                "lifeline-courier-page",
                actor.clone(),
                cause.correlation_id,
                Some(cause.id),
            ),
        )
    };
    let mut events = vec![follow(Event::RunDeparted(RunDeparted {
        run: planned.run.clone(),
        community: planned.community.clone(),
        tricycle: planned.tricycle.clone(),
        courier: courier.to_owned(),
    }))];
    for stop in &planned.stops {
        for order in &stop.orders {
            let event = if random.percent(DROP_FAILURE_PERCENT) {
                let reason = DropFailure::ALL[random.below(3) as usize];
                Event::DropFailed(DropFailed {
                    order: order.clone(),
                    run: planned.run.clone(),
                    community: planned.community.clone(),
                    household: stop.household.clone(),
                    reason,
                    note: None,
                })
            } else {
                Event::DropDelivered(DropDelivered {
                    order: order.clone(),
                    run: planned.run.clone(),
                    community: planned.community.clone(),
                    household: stop.household.clone(),
                    proof: Proof {
                        photo_sha256: None,
                        code: Some(format!("{:04}", random.below(10_000))),
                    },
                })
            };
            events.push(follow(event));
        }
    }
    events.push(follow(Event::RunReturned(RunReturned {
        run: planned.run.clone(),
        community: planned.community.clone(),
        tricycle: planned.tricycle.clone(),
    })));
    events
}
