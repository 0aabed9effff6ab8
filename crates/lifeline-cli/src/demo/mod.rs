//! `lifeline demo`: one lockdown day in Tianlun Jincheng, Huangtugang Village or both, on a
//! simulated clock.
//!
//! Every household orders (staff order for those who cannot), partners pick from their
//! reserved stock (short where stock ran out, now and then a substitution), vehicles bring
//! the goods to the railway checkpoint, dispatch plans tricycle runs, couriers drop at each
//! door (some drops fail and are retried). The real consumers run in this process against a
//! real nats-server. The simulated people (`simulation`) choose; every choice is a command
//! the domain decides against the projections, as the API would, before it is published.

mod couriers;
mod report;
mod sheets;
mod simulation;

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use lifeline_bus::async_nats::jetstream;
use lifeline_bus::{Publisher, stream_head};
use lifeline_domain::campaign::CampaignRecord;
use lifeline_domain::command::{self, CommandError, Views};
use lifeline_events::{
    Actor, ActorKind, EVENT_STREAM, Envelope, Event, EventMeta, OrderPlaced, new_event_id,
};
use lifeline_projection::{ProjectionStatus, StoreState};
use lifeline_store::ProjectionStore;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::Common;
use crate::components::{Running, connect, running, start_consumers};
use couriers::Couriers;
use simulation::{Clock, ORDER_SECS, Random, orderer};

/// The in-process projections the simulated people's commands are decided against.
pub struct Projections {
    registry: Arc<ProjectionStore>,
    inventory: Arc<ProjectionStore>,
    delivery: Arc<ProjectionStore>,
    delivery_status: Arc<ProjectionStatus>,
    campaigns: Arc<ProjectionStore>,
    statuses: Vec<Arc<ProjectionStatus>>,
    /// Turns true on SIGINT/SIGTERM or when a courier gives up: waits stop at once.
    shutdown: watch::Receiver<bool>,
}

impl Projections {
    fn of(all: &[Running], shutdown: watch::Receiver<bool>) -> anyhow::Result<Projections> {
        let find = |name: &str| running(all, name).with_context(|| format!("the demo runs {name}"));
        let delivery = find(lifeline_domain::delivery::NAME)?;
        Ok(Projections {
            registry: Arc::clone(&find(lifeline_domain::registry::NAME)?.store),
            inventory: Arc::clone(&find(lifeline_domain::inventory::NAME)?.store),
            delivery: Arc::clone(&delivery.store),
            delivery_status: Arc::clone(&delivery.status),
            campaigns: Arc::clone(&find(lifeline_domain::campaign::NAME)?.store),
            statuses: all.iter().map(|r| Arc::clone(&r.status)).collect(),
            shutdown,
        })
    }

    /// Runs `decide` against the projections on the blocking pool (RocksDB reads).
    pub async fn decide<T, F>(&self, decide: F) -> anyhow::Result<T>
    where
        F: FnOnce(&Views<'_>) -> T + Send + 'static,
        T: Send + 'static,
    {
        let (registry, inventory, delivery) = (
            Arc::clone(&self.registry),
            Arc::clone(&self.inventory),
            Arc::clone(&self.delivery),
        );
        Ok(tokio::task::spawn_blocking(move || {
            let (registry, inventory, delivery) = (
                StoreState(&registry),
                StoreState(&inventory),
                StoreState(&delivery),
            );
            decide(&Views {
                registry: &registry,
                inventory: &inventory,
                delivery: &delivery,
            })
        })
        .await?)
    }

    /// Waits until every consumer has applied the stream up to `sequence`.
    async fn caught_up(&self, sequence: u64, deadline: Instant) -> anyhow::Result<()> {
        for status in &self.statuses {
            wait_for(status, sequence, deadline, &self.shutdown).await?;
        }
        Ok(())
    }

    /// Waits until the delivery projection has applied the stream up to `sequence`.
    pub async fn delivery_at(&self, sequence: u64, deadline: Instant) -> anyhow::Result<()> {
        wait_for(&self.delivery_status, sequence, deadline, &self.shutdown).await
    }
}

/// Waits (on the consumer's watched position, no disk) until it reaches `sequence`; gives
/// up at the deadline or on shutdown.
async fn wait_for(
    status: &ProjectionStatus,
    sequence: u64,
    deadline: Instant,
    shutdown: &watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let mut shutdown = shutdown.clone();
    let left = deadline.saturating_duration_since(Instant::now());
    tokio::select! {
        reached = status.reached(sequence, left) => {
            anyhow::ensure!(reached, "consumers did not catch up before the deadline");
            Ok(())
        }
        _ = shutdown.wait_for(|stop| *stop) => anyhow::bail!("stopped"),
    }
}

async fn head(jetstream: &jetstream::Context) -> anyhow::Result<u64> {
    Ok(stream_head(jetstream, EVENT_STREAM).await?)
}

fn meta(clock: &Clock, source: &str, actor: Actor) -> EventMeta {
    EventMeta {
        time: clock.now(),
        source: source.to_owned(),
        actor,
        correlation_id: new_event_id(),
        causation_id: None,
    }
}

/// Commands the domain refused, by rule: zero on a good day.
#[derive(Debug, Default)]
pub struct Refusals(BTreeMap<String, u64>);

impl Refusals {
    fn keep<T>(&mut self, decided: Result<T, CommandError>) -> Option<T> {
        match decided {
            Ok(value) => Some(value),
            Err(error) => {
                tracing::warn!(code = %error.code(), %error, "the domain refused a simulated command");
                *self.0.entry(error.code().to_string()).or_default() += 1;
                None
            }
        }
    }
}

struct Bars {
    progress: MultiProgress,
    style: ProgressStyle,
}

impl Bars {
    fn new() -> Self {
        Bars {
            progress: MultiProgress::new(),
            style: ProgressStyle::with_template("{prefix:>10} {bar:40} {pos:>5}/{len:5} {msg}")
                .expect("valid template"),
        }
    }

    fn bar(&self, prefix: &str, length: usize) -> ProgressBar {
        let bar = self.progress.add(ProgressBar::new(length as u64));
        bar.set_style(self.style.clone());
        bar.set_prefix(prefix.to_owned());
        bar
    }
}

/// The communities the seeds know, in the order `--community all` plays them.
const COMMUNITIES: [&str; 2] = ["tianlun", "huangtugang"];

/// The communities `--community` names: one of them, or `all`.
pub fn communities(named: &str) -> anyhow::Result<Vec<String>> {
    match named {
        "all" => Ok(COMMUNITIES.iter().map(|c| (*c).to_owned()).collect()),
        one if COMMUNITIES.contains(&one) => Ok(vec![one.to_owned()]),
        other => anyhow::bail!(
            "unknown community {other:?}: choose {} or all",
            COMMUNITIES.join(", ")
        ),
    }
}

/// What day to play.
#[derive(Debug, Clone)]
pub struct Day {
    pub communities: Vec<String>,
    /// At most this many households of each community (all when `None`).
    pub households: Option<usize>,
    /// Dispatch routes runs over the map (off only to compare distances).
    pub routes: bool,
    pub scale: u32,
    pub seed: u64,
    pub timeout_secs: u64,
}

pub async fn run(
    mut common: Common,
    day: Day,
    source: crate::SeedSource,
) -> anyhow::Result<ExitCode> {
    let Day {
        communities,
        households,
        routes,
        scale,
        seed,
        timeout_secs,
    } = day;
    let mut seeds = source.load().context("cannot load seed data")?;
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
    seeds.restrict(&communities, households);
    seeds.scale(scale);
    let connection = connect(&common, "lifeline-demo").await?;
    let jetstream = connection.jetstream.clone();
    let (trigger, shutdown) = watch::channel(false);
    crate::components::stop_on_signal(trigger.clone());
    let mut tasks = JoinSet::new();
    let mut consumers = lifeline_readmodel::consumers();
    if !routes {
        for consumer in &mut consumers {
            if consumer.name() == lifeline_domain::dispatch::NAME {
                *consumer = lifeline_readmodel::Consumer::new(
                    lifeline_domain::dispatch::Dispatch::without_routes(),
                );
            }
        }
    }
    let running = start_consumers(
        &jetstream,
        &common.data_dir,
        consumers,
        &shutdown,
        &mut tasks,
    )
    .await?;
    let projections = Arc::new(Projections::of(&running, shutdown.clone())?);
    let clock = Arc::new(Clock::default());
    let mut random = Random(seed);
    let mut refusals = Refusals::default();
    let bars = Bars::new();
    let publisher = Publisher::new(jetstream.clone(), "demo");

    // 1. The registry, catalogue and opening stock.
    let seed_events = seeds.events(clock.now());
    let seeding = bars.bar("seeding", seed_events.len());
    for chunk in seed_events.chunks(1000) {
        publisher.publish_all(chunk).await?;
        seeding.inc(chunk.len() as u64);
    }
    seeding.finish_with_message("registry loaded");
    let began = Instant::now();
    let phase = |name: &'static str| {
        tracing::info!(
            phase = name,
            seconds = began.elapsed().as_secs_f64(),
            "demo phase done"
        );
    };
    projections
        .caught_up(head(&jetstream).await?, deadline)
        .await?;

    // Couriers listen for planned runs from here on.
    let courier_start = head(&jetstream).await?;
    let couriers = Couriers {
        jetstream: jetstream.clone(),
        projections: Arc::clone(&projections),
        clock: Arc::clone(&clock),
        volunteers: seeds
            .volunteers
            .iter()
            .filter(|v| v.group == "rapid_delivery")
            .fold(BTreeMap::new(), |mut by_community, v| {
                by_community
                    .entry(v.community.clone())
                    .or_insert_with(Vec::new)
                    .push(v.volunteer.clone());
                by_community
            }),
        map: couriers::Map::of(&seeds),
        seed: seed ^ 0x5eed,
        deadline,
        stop: trigger.clone(),
    };
    let courier = tokio::spawn(couriers.ride(courier_start, shutdown.clone()));

    // 2. Every household orders; staff order for the elderly living alone and the disabled.
    let ordering = bars.bar("ordering", seeds.households.len());
    let mut orders: Vec<OrderPlaced> = Vec::with_capacity(seeds.households.len());
    for chunk in seeds.households.chunks(500) {
        let commands: Vec<_> = chunk
            .iter()
            .map(|household| {
                (
                    simulation::order_for(household, &seeds, &mut random),
                    orderer(household),
                )
            })
            .collect();
        let decided = projections
            .decide(move |views| {
                commands
                    .into_iter()
                    .map(|(command, actor)| (command::place_order(views, command), actor))
                    .collect::<Vec<_>>()
            })
            .await?;
        let mut batch = Vec::with_capacity(decided.len());
        for (placed, actor) in decided {
            let Some(placed) = refusals.keep(placed) else {
                continue;
            };
            clock.advance(ORDER_SECS);
            batch.push(Envelope::new(
                Event::OrderPlaced(placed.clone()),
                meta(&clock, "lifeline-demo", actor),
            ));
            orders.push(placed);
        }
        publisher.publish_all(&batch).await?;
        ordering.inc(chunk.len() as u64);
    }
    ordering.finish_with_message("orders placed");
    phase("ordering");

    // A few residents change their minds before the partner picks.
    projections
        .caught_up(head(&jetstream).await?, deadline)
        .await?;
    let cancelling: Vec<(String, String)> = orders
        .iter()
        .filter(|_| simulation::cancels(&mut random))
        .map(|order| (order.order.clone(), order.household.clone()))
        .collect();
    let decided = projections
        .decide(move |views| {
            cancelling
                .into_iter()
                .map(|(order, household)| {
                    let command = command::CancelOrder {
                        order,
                        reason: Some("resident cancelled".to_owned()),
                    };
                    (command::cancel_order(views, command), household)
                })
                .collect::<Vec<_>>()
        })
        .await?;
    let mut cancelled = std::collections::BTreeSet::new();
    let mut cancels = Vec::new();
    for (decided, household) in decided {
        let Some(cancel) = refusals.keep(decided) else {
            continue;
        };
        cancelled.insert(cancel.order.clone());
        let actor = Actor::new(ActorKind::Resident, household);
        cancels.push(Envelope::new(
            Event::OrderCancelled(cancel),
            meta(&clock, "lifeline-demo", actor),
        ));
    }
    publisher.publish_all(&cancels).await?;

    // 2b. Staff give every household a free melon: one campaign per community, and the
    // campaigns process manager places one order per household.
    let mut melons = BTreeMap::new();
    for community in &communities {
        let melon = start_melon(
            &projections,
            &publisher,
            &jetstream,
            &clock,
            deadline,
            &mut refusals,
            community,
        )
        .await?;
        if let Some((campaign, placed)) = melon {
            tracing::info!(
                community,
                campaign,
                orders = placed.len(),
                "the melon campaign placed its orders"
            );
            orders.extend(placed);
            melons.insert(community.clone(), campaign);
        }
    }

    // 3. Partners print pick sheets and pick what the inventory reserved for each order;
    // 4. vehicles carry each sheet to its community's checkpoint in one arrival.
    let floor = sheets::Floor {
        projections: &projections,
        publisher: &publisher,
        jetstream: &jetstream,
        clock: &clock,
        deadline,
    };
    let picking = sheets::pick(
        &floor,
        &seeds,
        &orders,
        &cancelled,
        &mut random,
        &mut refusals,
        &bars,
    )
    .await?;
    phase("picking");
    sheets::bring(&floor, &seeds, &picking, &mut refusals, &bars).await?;
    phase("arriving");

    // 5. Watch the delivery-status projection until every order is final.
    let delivering = bars.bar("final", orders.len());
    let order_ids: Vec<String> = orders.iter().map(|o| o.order.clone()).collect();
    let mut open = order_ids.clone();
    let finished = loop {
        // The projection's stage counters first (a few rows); each order only once the
        // counters say every order may be final, and then only those still open.
        // Orders in the projection the demo did not place itself (a campaign's) count too:
        // the day is over when none is open.
        let store = Arc::clone(&projections.delivery);
        let (maybe_final, not_final) = tokio::task::spawn_blocking(move || {
            lifeline_readmodel::delivery::stage_counters(&store).map(|counters| {
                counters
                    .iter()
                    .fold((0u64, 0u64), |(done, open), ((_, stage), count)| {
                        if report::may_be_final(stage) {
                            (done + count, open)
                        } else {
                            (done, open + count)
                        }
                    })
            })
        })
        .await??;
        delivering.set_position(maybe_final);
        if maybe_final >= order_ids.len() as u64 {
            let store = Arc::clone(&projections.delivery);
            let (still, by_stage) =
                tokio::task::spawn_blocking(move || report::still_open(&store, open)).await??;
            open = still;
            delivering.set_message(format!("{by_stage:?}"));
            if open.is_empty() && not_final == 0 {
                break true;
            }
        }
        if Instant::now() > deadline || *shutdown.borrow() {
            break false;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    delivering.finish();
    phase("delivering");

    // Stop everything, committing what is in flight.
    let _ = trigger.send(true);
    while let Some(joined) = tasks.join_next().await {
        if let Ok((name, Err(error))) = joined {
            tracing::error!(component = name, %error, "consumer failed");
        }
    }
    let rides = courier.await.unwrap_or_default();

    let day = report::Day {
        communities: seeds
            .communities
            .iter()
            .map(|c| (c.community.clone(), c.name.clone()))
            .collect(),
        melons,
        households: seeds.households.len(),
        start: Clock::START,
        end: clock.now(),
        orders: order_ids,
        short_lines: picking.short_lines,
        substituted_lines: picking.substituted_lines,
        sheets: picking.sheets(),
        sheet_checks: picking.checks.clone(),
        rides,
        refusals,
        finished,
    };
    day.print(&projections.delivery, &projections.inventory, &jetstream)
        .await
}

/// Staff start a community's melon campaign (shuocheng's watermelons, one per household); waits
/// until its orders are placed and every consumer has seen them. Returns the campaign and
/// its orders, or `None` when the domain refused the campaign (counted in `refusals`).
async fn start_melon(
    projections: &Projections,
    publisher: &Publisher,
    jetstream: &jetstream::Context,
    clock: &Clock,
    deadline: Instant,
    refusals: &mut Refusals,
    community: &str,
) -> anyhow::Result<Option<(String, Vec<OrderPlaced>)>> {
    let command = command::StartCampaign {
        campaign: new_event_id().to_string(),
        community: community.to_owned(),
        name: "A free melon for every household".to_owned(),
        partner: "shuocheng".to_owned(),
        lines: vec![lifeline_events::OrderLine {
            item: "watermelon".to_owned(),
            quantity: 1,
        }],
        scope: lifeline_events::CampaignScope::default(),
        priority: None,
        signup_until: None,
        slice: Some(u32::try_from(lifeline_readmodel::campaign_slice()).unwrap_or(u32::MAX)),
    };
    let decided = projections
        .decide(move |views| command::start_campaign(views, command))
        .await?;
    let Some(started) = refusals.keep(decided) else {
        return Ok(None);
    };
    let campaign = started.campaign.clone();
    let actor = Actor::new(ActorKind::Staff, format!("staff-{community}-hotline"));
    let envelope = Envelope::new(
        Event::CampaignStarted(started),
        meta(clock, "lifeline-demo", actor),
    );
    let published = publisher.publish(&envelope, None).await?;
    // The process manager places a slice of households per event and publishes each
    // slice's orders before it commits: once it has committed the last slice, they are
    // all in the stream.
    projections.caught_up(published.sequence, deadline).await?;
    loop {
        projections
            .caught_up(head(jetstream).await?, deadline)
            .await?;
        let store = Arc::clone(&projections.campaigns);
        let wanted = campaign.clone();
        let record = tokio::task::spawn_blocking(move || {
            store.get_json::<CampaignRecord>(lifeline_domain::campaign::CAMPAIGNS, &wanted)
        })
        .await??;
        // No record once caught up: the campaign was parked, and placed nothing.
        if record.is_none_or(|record| record.fan_out.is_none()) {
            break;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the melon campaign of {community} was not placed before the deadline"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let store = Arc::clone(&projections.delivery);
    let wanted = campaign.clone();
    let records = tokio::task::spawn_blocking(move || {
        lifeline_readmodel::delivery::campaign_orders(&store, &wanted)
    })
    .await??;
    let orders = records
        .into_iter()
        .map(|record| OrderPlaced {
            order: record.order,
            community: record.community,
            building: record.building,
            unit: record.unit,
            household: record.household,
            partner: record.partner,
            lines: record.items,
            priority: record.priority,
            weight_g: 0,
            on_behalf_by: None,
            campaign: record.campaign,
        })
        .collect();
    Ok(Some((campaign, orders)))
}
