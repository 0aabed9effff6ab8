//! The couriers: take each planned run, depart, drop at every door (some drops fail), come
//! back. Each step is a command decided by the domain against the delivery projection,
//! after the projection has seen the step before it, as a courier's phone would.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use lifeline_bus::async_nats::jetstream;
use lifeline_bus::{EventReader, Publisher};
use lifeline_domain::command::{self, DepartRun, RecordDrop, ReturnRun};
use lifeline_domain::dispatch::route::{Point, leg_m, tour_m};
use lifeline_events::{Actor, ActorKind, EVENT_STREAM, Envelope, Event, RunPlanned};
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::Projections;
use super::simulation::{self, Clock, RUN_SECS, Random};

/// What the couriers did.
#[derive(Debug, Default)]
pub struct Rides {
    pub runs: u64,
    pub delivered: u64,
    pub failed: u64,
    /// Metres ridden: every run from its checkpoint along its stops, as planned, and back.
    pub distance_m: u64,
    /// The part of `distance_m` ridden between buildings (what a route can shorten; the
    /// legs to and from the checkpoint are the same whichever way round a run goes).
    pub between_m: u64,
    /// Runs whose stops were not on the map (no distance counted for them).
    pub unmapped_runs: u64,
    /// Why the couriers stopped before the day ended (a refused step is a bug in the
    /// simulation), if they did.
    pub gave_up: Option<String>,
}

pub struct Couriers {
    pub jetstream: jetstream::Context,
    pub projections: Arc<Projections>,
    pub clock: Arc<Clock>,
    /// The riding volunteers of each community.
    pub volunteers: BTreeMap<String, Vec<String>>,
    pub map: Map,
    pub seed: u64,
    pub deadline: Instant,
    /// Stops the whole demo when a courier cannot go on, instead of waiting for the deadline.
    pub stop: watch::Sender<bool>,
}

/// Where each community's checkpoint and buildings are (from the seeds), to measure the
/// distance each run rides in the order its stops were planned.
#[derive(Debug, Default)]
pub struct Map {
    gates: BTreeMap<String, Point>,
    buildings: BTreeMap<String, Point>,
}

impl Map {
    pub fn of(seeds: &lifeline_seeds::Seeds) -> Map {
        let point = |x_m, y_m| Point { x_m, y_m };
        Map {
            gates: seeds
                .communities
                .iter()
                .map(|c| {
                    (
                        c.community.clone(),
                        point(c.checkpoint.x_m, c.checkpoint.y_m),
                    )
                })
                .collect(),
            buildings: seeds
                .buildings
                .iter()
                .map(|b| (b.building.clone(), point(b.x_m, b.y_m)))
                .collect(),
        }
    }

    /// The run's length (checkpoint, each building in the order its stops come,
    /// checkpoint) and the part of it between buildings.
    fn ride_m(&self, planned: &RunPlanned) -> Option<(u64, u64)> {
        let gate = *self.gates.get(&planned.community)?;
        let mut visits: Vec<Point> = Vec::new();
        let mut last: Option<&str> = None;
        for stop in &planned.stops {
            if last != Some(stop.building.as_str()) {
                visits.push(*self.buildings.get(&stop.building)?);
                last = Some(&stop.building);
            }
        }
        let between = visits.windows(2).map(|pair| leg_m(pair[0], pair[1])).sum();
        Some((tour_m(gate, visits), between))
    }
}

/// Up to this many runs are on the road at once, as the estate's tricycles ride in
/// parallel; the day's length then follows the pipeline's throughput, not one run's
/// round trips end to end.
const RIDING_AT_ONCE: usize = 64;

/// What one ride will do, drawn in stream order so the day's choices do not depend on
/// which ride finishes first.
struct Plan {
    courier: String,
    outcomes: Vec<lifeline_domain::command::DropOutcome>,
}

impl Couriers {
    /// Rides every run planned from stream position `start` on, until `shutdown`.
    pub async fn ride(self, start: u64, mut shutdown: watch::Receiver<bool>) -> Rides {
        let mut random = Random(self.seed);
        let couriers = Arc::new(self);
        let publisher = Publisher::new(couriers.jetstream.clone(), "demo-couriers");
        let mut reader =
            match EventReader::open(&couriers.jetstream, EVENT_STREAM, start, 256).await {
                Ok(reader) => reader,
                Err(error) => {
                    tracing::error!(%error, "couriers cannot read the stream");
                    return Rides::default();
                }
            };
        let mut rides = Rides::default();
        let mut riding: JoinSet<(String, anyhow::Result<(u64, u64)>)> = JoinSet::new();
        loop {
            let batch = tokio::select! {
                _ = shutdown.changed() => break,
                Some(done) = riding.join_next(), if !riding.is_empty() => {
                    if !couriers.count(&mut rides, done) {
                        break;
                    }
                    continue;
                }
                batch = reader.next_batch() => batch,
            };
            let Some(Ok(batch)) = batch else {
                break;
            };
            for message in batch {
                let Ok(envelope) = Envelope::decode(&message.payload) else {
                    continue;
                };
                let Event::RunPlanned(planned) = &envelope.event else {
                    continue;
                };
                match couriers.map.ride_m(planned) {
                    Some((metres, between)) => {
                        rides.distance_m += metres;
                        rides.between_m += between;
                    }
                    None => rides.unmapped_runs += 1,
                }
                let riders = couriers
                    .volunteers
                    .get(&planned.community)
                    .map_or(&[][..], Vec::as_slice);
                let plan = Plan {
                    courier: match riders.len() as u64 {
                        0 => "vol-unknown".to_owned(),
                        n => riders[random.below(n) as usize].clone(),
                    },
                    outcomes: planned
                        .orders()
                        .map(|_| simulation::drop_outcome(&mut random))
                        .collect(),
                };
                while riding.len() >= RIDING_AT_ONCE {
                    let Some(done) = riding.join_next().await else {
                        break;
                    };
                    if !couriers.count(&mut rides, done) {
                        return rides;
                    }
                }
                let (couriers, publisher, planned) =
                    (Arc::clone(&couriers), publisher.clone(), planned.clone());
                let sequence = message.sequence;
                riding.spawn(async move {
                    let ridden = couriers
                        .ride_one(&publisher, &envelope, &planned, sequence, plan)
                        .await;
                    (planned.run, ridden)
                });
            }
        }
        riding.abort_all();
        rides
    }

    /// Adds a finished ride to the tally; false when a courier could not ride (a refused
    /// step is a bug in the simulation: the day stops and the demo says so).
    fn count(
        &self,
        rides: &mut Rides,
        done: Result<(String, anyhow::Result<(u64, u64)>), tokio::task::JoinError>,
    ) -> bool {
        let (run, ridden) = match done {
            Ok(done) => done,
            Err(error) => (String::new(), Err(anyhow::anyhow!("ride task: {error}"))),
        };
        match ridden {
            Ok((delivered, failed)) => {
                rides.runs += 1;
                rides.delivered += delivered;
                rides.failed += failed;
                true
            }
            Err(error) => {
                tracing::error!(
                    error = format!("{error:#}"),
                    run,
                    "courier could not ride the run"
                );
                rides.gave_up = Some(format!("run {run}: {error:#}"));
                let _ = self.stop.send(true);
                false
            }
        }
    }

    async fn ride_one(
        &self,
        publisher: &Publisher,
        cause: &Envelope,
        planned: &RunPlanned,
        sequence: u64,
        plan: Plan,
    ) -> anyhow::Result<(u64, u64)> {
        let courier = plan.courier;
        self.clock.advance(RUN_SECS);
        let actor = Actor::new(ActorKind::Courier, courier.clone());
        let follow = |event: Event| {
            Envelope::new(
                event,
                lifeline_events::EventMeta {
                    time: self.clock.now(),
                    source: "lifeline-courier-page".to_owned(),
                    actor: actor.clone(),
                    correlation_id: cause.correlation_id,
                    causation_id: Some(cause.id),
                },
            )
        };
        // Depart once the run is visible.
        self.projections
            .delivery_at(sequence, self.deadline)
            .await?;
        let run = planned.run.clone();
        let departed = self
            .projections
            .decide(move |views| {
                let courier = Some(courier);
                command::depart_run(views, DepartRun { run, courier })
            })
            .await??;
        let published = publisher
            .publish(&follow(Event::RunDeparted(departed)), None)
            .await?;
        // Drop at every door once the departure is visible, then come back.
        self.projections
            .delivery_at(published.sequence, self.deadline)
            .await?;
        let drops: Vec<RecordDrop> = planned
            .orders()
            .zip(plan.outcomes)
            .map(|(order, outcome)| RecordDrop {
                run: planned.run.clone(),
                order: order.clone(),
                outcome,
            })
            .collect();
        let run = planned.run.clone();
        let events = self
            .projections
            .decide(move |views| {
                let mut events = Vec::with_capacity(drops.len() + 1);
                for drop in drops {
                    events.push(command::record_drop(views, drop)?);
                }
                events.push(Event::RunReturned(command::return_run(
                    views,
                    ReturnRun { run },
                )?));
                Ok::<_, command::CommandError>(events)
            })
            .await??;
        let delivered = events
            .iter()
            .filter(|event| matches!(event, Event::DropDelivered(_)))
            .count() as u64;
        let failed = events
            .iter()
            .filter(|event| matches!(event, Event::DropFailed(_)))
            .count() as u64;
        let envelopes: Vec<Envelope> = events.into_iter().map(follow).collect();
        publisher.publish_all(&envelopes).await?;
        Ok((delivered, failed))
    }
}
