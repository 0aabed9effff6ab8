//! Starting consumers and the HTTP endpoint, stopping them on a signal, and replaying.

use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use lifeline_bus::async_nats::{self, jetstream};
use lifeline_bus::{StreamSettings, provision};
use lifeline_projection::{DriverConfig, ProjectionError, ProjectionStatus};
use lifeline_readmodel::Consumer;
use lifeline_store::ProjectionStore;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::Common;
use crate::local_nats::{self, LocalNats};

/// How long a process keeps trying to provision the streams at start (a cluster electing
/// its JetStream leader answers nothing for a few seconds).
const PROVISION_PATIENCE: std::time::Duration = std::time::Duration::from_secs(30);

/// How long requests in flight may take to finish once shutdown begins.
const HTTP_DRAIN: std::time::Duration = std::time::Duration::from_secs(5);

/// A connected process: NATS client, JetStream context, the local server if we started one.
pub struct Connection {
    pub client: async_nats::Client,
    pub jetstream: jetstream::Context,
    _local: Option<LocalNats>,
}

pub async fn connect(common: &Common, client_name: &str) -> anyhow::Result<Connection> {
    std::fs::create_dir_all(&common.data_dir)
        .with_context(|| format!("cannot create data dir {}", common.data_dir.display()))?;
    let (url, local) = local_nats::resolve(common.nats_url.as_deref(), &common.data_dir)?;
    let client = lifeline_bus::connect(&url, client_name, &common.nats_auth.options())
        .await
        .with_context(|| format!("cannot connect to {}", lifeline_bus::redact(&url)))?;
    let jetstream = lifeline_bus::jetstream_context(client.clone());
    let settings = StreamSettings {
        replicas: common.replicas,
        allow_fewer_replicas: common.allow_fewer_replicas,
        ..StreamSettings::default()
    };
    // A cluster electing a JetStream leader (a node just lost or restarted) times the
    // request out for a few seconds: keep asking for a while before giving up.
    let patience = std::time::Instant::now() + PROVISION_PATIENCE;
    loop {
        match provision(&jetstream, &settings).await {
            Ok(()) => break,
            Err(error @ lifeline_bus::ProvisionError::Nats(_))
                if std::time::Instant::now() < patience =>
            {
                tracing::warn!(%error, "cannot provision streams yet, retrying");
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
            Err(error) => anyhow::bail!("cannot provision streams: {error}"),
        }
    }
    Ok(Connection {
        client,
        jetstream,
        _local: local,
    })
}

/// A running consumer, as the rest of the process sees it.
pub struct Running {
    pub consumer: Consumer,
    pub status: Arc<ProjectionStatus>,
    pub store: Arc<ProjectionStore>,
}

/// What a consumer task returns: its name and how it ended.
pub type Ended = (&'static str, Result<(), ProjectionError>);

/// The running consumer called `name`, if this process runs it.
pub fn running<'a>(running: &'a [Running], name: &str) -> Option<&'a Running> {
    running.iter().find(|r| r.consumer.name() == name)
}

/// Opens each consumer's store under `data_dir` (off the async workers) and spawns it.
pub async fn start_consumers(
    jetstream: &jetstream::Context,
    data_dir: &Path,
    consumers: Vec<Consumer>,
    shutdown: &watch::Receiver<bool>,
    tasks: &mut JoinSet<Ended>,
) -> anyhow::Result<Vec<Running>> {
    let mut running = Vec::new();
    for consumer in consumers {
        let directory = data_dir.join(consumer.name());
        let opening = consumer.clone();
        let store =
            match tokio::task::spawn_blocking(move || opening.open_store(&directory)).await? {
                Ok(store) => store,
                // Says itself what is wrong and what to do.
                Err(error @ lifeline_readmodel::OpenError::Partitions { .. }) => {
                    return Err(error.into());
                }
                Err(error) => {
                    return Err(anyhow::Error::new(error).context(format!(
                        "cannot open the {} store (is another process using it?)",
                        consumer.name()
                    )));
                }
            };
        consumer.register_metrics(&store);
        let projection = consumer.projection(
            Arc::clone(&store),
            jetstream.clone(),
            DriverConfig::default(),
        );
        let status = projection.status();
        let shutdown = shutdown.clone();
        let name = consumer.name();
        tasks.spawn(async move { (name, projection.run(shutdown).await) });
        running.push(Running {
            consumer,
            status,
            store,
        });
    }
    Ok(running)
}

/// `lifeline_build_info{version}`: always 1, for dashboards and "which version runs".
pub fn register_build_info() {
    let gauge = prometheus::IntGaugeVec::new(
        prometheus::Opts::new(
            "lifeline_build_info",
            "Version of the running lifeline binary.",
        ),
        &["version"],
    )
    .expect("valid metric");
    gauge.with_label_values(&[env!("CARGO_PKG_VERSION")]).set(1);
    let _ = prometheus::register(Box::new(gauge));
}

/// `lifeline_partitions` (the count this replica was given) and
/// `lifeline_partition_served{partition}` (1 for each it serves): with every replica's,
/// Prometheus sees a partition nobody serves (alert PartitionUnserved).
pub fn register_partitions(partitioning: &lifeline_events::Partitioning) {
    let count = prometheus::IntGauge::new(
        "lifeline_partitions",
        "Partitions the communities are spread over (--partitions).",
    )
    .expect("valid metric");
    count.set(i64::from(partitioning.count()));
    let served = prometheus::IntGaugeVec::new(
        prometheus::Opts::new(
            "lifeline_partition_served",
            "1 for each partition this replica serves (--partition).",
        ),
        &["partition"],
    )
    .expect("valid metric");
    for partition in partitioning.served() {
        served
            .with_label_values(&[partition.to_string().as_str()])
            .set(1);
    }
    let _ = prometheus::register(Box::new(count));
    let _ = prometheus::register(Box::new(served));
}

/// Turns the watch to `true` on SIGINT or SIGTERM.
pub fn stop_on_signal(trigger: watch::Sender<bool>) {
    tokio::spawn(async move {
        let interrupt = tokio::signal::ctrl_c();
        #[cfg(unix)]
        let terminate = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut signal) => {
                    signal.recv().await;
                }
                Err(error) => {
                    tracing::error!(%error, "cannot listen for SIGTERM");
                    std::future::pending::<()>().await;
                }
            }
        };
        #[cfg(not(unix))]
        let terminate = std::future::pending::<()>();
        tokio::select! {
            _ = interrupt => {}
            () = terminate => {}
        }
        tracing::info!("stopping: finishing the batches in flight");
        let _ = trigger.send(true);
    });
}

/// `lifeline up` and `lifeline run <component>`.
pub async fn up(
    common: Common,
    http: SocketAddr,
    consumers: Vec<Consumer>,
    access: Option<std::path::PathBuf>,
) -> anyhow::Result<ExitCode> {
    register_build_info();
    let connection = connect(&common, "lifeline").await?;
    let (trigger, shutdown) = watch::channel(false);
    stop_on_signal(trigger.clone());
    let mut tasks = JoinSet::new();
    let partitioning = common.partitioning()?;
    register_partitions(&partitioning);
    if !partitioning.serves_all() {
        tracing::info!(
            partitions = %partitioning,
            "serving some partitions: delivery, dispatch, campaigns and the partner feed apply their communities only"
        );
    }
    let running = start_consumers(
        &connection.jetstream,
        &common.data_dir,
        consumers,
        &shutdown,
        &mut tasks,
    )
    .await?;
    let api = api_if_served(&connection, &running, access.as_deref()).await?;
    let state = lifeline_gateway::GatewayState {
        nats: connection.client.clone(),
        consumers: running
            .iter()
            .map(|r| (r.consumer.name(), Arc::clone(&r.status)))
            .collect(),
        stores: running
            .iter()
            .map(|r| (r.consumer.name(), Arc::clone(&r.store)))
            .collect(),
        api,
        ready_max_lag: common.ready_max_lag,
        admission: lifeline_gateway::admission::Admission::new(
            common.max_in_flight,
            std::time::Duration::from_millis(common.queue_timeout_ms),
        ),
    };
    let mut http_shutdown = shutdown.clone();
    let http_task = tokio::spawn(lifeline_gateway::serve(http, state, async move {
        let _ = http_shutdown.wait_for(|stop| *stop).await;
    }));
    let mut failed = false;
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok((name, Ok(()))) => {
                tracing::info!(component = name, "consumer stopped")
            }
            Ok((name, Err(error))) => {
                tracing::error!(component = name, %error, "consumer failed, stopping");
                failed = true;
                let _ = trigger.send(true);
            }
            Err(error) => {
                tracing::error!(%error, "consumer task panicked, stopping");
                failed = true;
                let _ = trigger.send(true);
            }
        }
    }
    let _ = trigger.send(true);
    // Shutdown is bounded whatever NATS does: requests in flight get a few seconds to
    // finish, buffered publishes one more second to flush; what was committed stays
    // committed (every consumer has stopped by now).
    let mut http_task = http_task;
    match tokio::time::timeout(HTTP_DRAIN, &mut http_task).await {
        Ok(Ok(Ok(()))) => {}
        Ok(Ok(Err(error))) => {
            tracing::error!(%error, "http server failed");
            failed = true;
        }
        Ok(Err(error)) => {
            tracing::error!(%error, "http task panicked");
            failed = true;
        }
        Err(_) => {
            tracing::warn!(
                seconds = HTTP_DRAIN.as_secs(),
                "requests still in flight at shutdown, dropped"
            );
            http_task.abort();
        }
    }
    if tokio::time::timeout(std::time::Duration::from_secs(1), connection.client.flush())
        .await
        .is_err()
    {
        tracing::warn!("NATS unreachable at shutdown: nothing left to flush was waited for");
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// The API, when this process runs the projections it reads (registry, delivery and
/// inventory: `lifeline up`).
async fn api_if_served(
    connection: &Connection,
    all: &[Running],
    access: Option<&Path>,
) -> anyhow::Result<Option<Arc<lifeline_gateway::Api>>> {
    let (Some(registry), Some(delivery), Some(inventory)) = (
        running(all, lifeline_domain::registry::NAME),
        running(all, lifeline_domain::delivery::NAME),
        running(all, lifeline_domain::inventory::NAME),
    ) else {
        return Ok(None);
    };
    let delivery_partitioning = delivery.consumer.partitioning().clone();
    let (registry_status, delivery_status, inventory_status) = (
        Arc::clone(&registry.status),
        Arc::clone(&delivery.status),
        Arc::clone(&inventory.status),
    );
    let (registry, delivery, inventory) = (
        Arc::clone(&registry.store),
        Arc::clone(&delivery.store),
        Arc::clone(&inventory.store),
    );
    let access = match access {
        Some(path) => lifeline_gateway::Access::load(path)?,
        None => {
            tracing::warn!("no --access file: the API will answer 401 to every request");
            lifeline_gateway::Access::default()
        }
    };
    let idempotency = connection
        .jetstream
        .get_key_value(lifeline_bus::IDEMPOTENCY_BUCKET)
        .await
        .context("cannot open the idempotency bucket")?;
    Ok(Some(Arc::new(lifeline_gateway::Api {
        publisher: lifeline_bus::Publisher::new(connection.jetstream.clone(), "gateway"),
        jetstream: connection.jetstream.clone(),
        registry,
        delivery,
        registry_status,
        delivery_status,
        inventory_status,
        inventory,
        idempotency: lifeline_gateway::idempotency::Idempotency::new(idempotency),
        access,
        aggregates: lifeline_gateway::AggregateLocks::default(),
        head: lifeline_bus::HeadWatch::new(
            connection.jetstream.clone(),
            lifeline_events::EVENT_STREAM,
        ),
        last_appended: Default::default(),
        partitioning: delivery_partitioning,
    })))
}

/// `lifeline seed`.
pub async fn seed(common: Common, source: crate::SeedSource) -> anyhow::Result<ExitCode> {
    // The seed data first: a bad --seeds fails before anything connects.
    let seeds = source.load().context("cannot load seed data")?;
    let connection = connect(&common, "lifeline-seed").await?;
    let events = seeds.events(time::OffsetDateTime::now_utc());
    let publisher = lifeline_bus::Publisher::new(connection.jetstream.clone(), "seed");
    let published = publisher.publish_all(&events).await?;
    let new = published.iter().filter(|p| !p.duplicate).count();
    println!(
        "seeded {} households, {} items, {} tricycles, {} volunteers: {new} new events, {} duplicates",
        seeds.households.len(),
        seeds.catalogue.len(),
        seeds.tricycles.len(),
        seeds.volunteers.len(),
        published.len() - new
    );
    Ok(ExitCode::SUCCESS)
}

/// `lifeline replay <projection>`.
pub async fn replay(common: Common, consumer: Consumer) -> anyhow::Result<ExitCode> {
    let connection = connect(&common, "lifeline-replay").await?;
    let name = consumer.name();
    let live = common.data_dir.join(name);
    let fresh = common.data_dir.join(format!("{name}.replay"));
    // Held open (locked) until the swap: no consumer can start on the live store while
    // it is being replaced. Opening fails while a consumer holds it: replaying under a
    // running consumer would swap its files away.
    let opening = consumer.clone();
    let (live_guard, live_position, store) = {
        let (live, fresh) = (live.clone(), fresh.clone());
        tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
            let guard = if live.exists() {
                Some(opening.open_store_as_built(&live).with_context(|| {
                    format!(
                        "cannot open {}; stop the {name} consumer first",
                        live.display()
                    )
                })?)
            } else {
                None
            };
            if fresh.exists() {
                std::fs::remove_dir_all(&fresh)
                    .with_context(|| format!("cannot clear {}", fresh.display()))?;
            }
            let position = guard.as_ref().map(|previous| previous.position());
            Ok((guard, position, opening.open_store(&fresh)?))
        })
        .await??
    };
    // Up to where the store it replaces had got, not past it: what that consumer had not
    // reached yet it takes live once started again, so a process manager still publishes
    // the follow-ups of those events (a replay publishes nothing; replaying past them
    // would record them as done). With no store to replace, up to the stream's head.
    let until = match live_position {
        None => None,
        Some(position) => match position {
            Ok(position) => Some(position),
            Err(error) => {
                tracing::warn!(
                    consumer = name,
                    %error,
                    "the store being replaced has no readable position; replaying to the stream's head"
                );
                None
            }
        },
    };
    let started = std::time::Instant::now();
    let head = consumer
        .projection(
            Arc::clone(&store),
            connection.jetstream.clone(),
            DriverConfig::default(),
        )
        .replay_until(until)
        .await?;
    let digest = {
        let (store, fresh, live) = (store, fresh, live.clone());
        tokio::task::spawn_blocking(move || -> anyhow::Result<String> {
            let digest = store.digest()?;
            drop(store);
            drop(live_guard);
            lifeline_store::swap_in(&fresh, &live)?;
            Ok(digest)
        })
        .await??
    };
    println!(
        "replayed {name} to stream sequence {head} in {:.2}s; digest {digest}; swapped into {}",
        started.elapsed().as_secs_f64(),
        live.display()
    );
    Ok(ExitCode::SUCCESS)
}
