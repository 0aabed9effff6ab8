//! Starting consumers and the HTTP endpoint, stopping them on a signal, and replaying.

use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::ValueEnum;
use lifeline_bus::async_nats::{self, jetstream};
use lifeline_bus::{StreamSettings, provision};
use lifeline_projection::{DriverConfig, ProjectionError, ProjectionStatus};
use lifeline_store::ProjectionStore;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::Common;
use crate::local_nats::{self, LocalNats};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Component {
    Registry,
    Inventory,
    Delivery,
    Dispatch,
}

impl Component {
    pub const ALL: [Component; 4] = [
        Component::Registry,
        Component::Inventory,
        Component::Delivery,
        Component::Dispatch,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Component::Registry => lifeline_registry::NAME,
            Component::Inventory => lifeline_inventory::NAME,
            Component::Delivery => lifeline_delivery::NAME,
            Component::Dispatch => lifeline_dispatch::NAME,
        }
    }

    pub fn open_store(
        self,
        directory: &Path,
    ) -> Result<Arc<ProjectionStore>, lifeline_store::StoreError> {
        match self {
            Component::Registry => lifeline_registry::open_store(directory),
            Component::Inventory => lifeline_inventory::open_store(directory),
            Component::Delivery => lifeline_delivery::open_store(directory),
            Component::Dispatch => lifeline_dispatch::open_store(directory),
        }
    }
}

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
    let client = lifeline_bus::connect(&url, client_name)
        .await
        .with_context(|| format!("cannot connect to {url}"))?;
    let jetstream = jetstream::new(client.clone());
    let settings = StreamSettings {
        replicas: common.replicas,
        ..StreamSettings::default()
    };
    provision(&jetstream, &settings)
        .await
        .map_err(|error| anyhow::anyhow!("cannot provision streams: {error}"))?;
    Ok(Connection {
        client,
        jetstream,
        _local: local,
    })
}

/// A running consumer, as the rest of the process sees it.
pub struct Running {
    pub component: Component,
    pub status: Arc<ProjectionStatus>,
    pub store: Arc<ProjectionStore>,
}

/// Opens each component's store under `data_dir` and spawns its consumer.
pub fn start_consumers(
    jetstream: &jetstream::Context,
    data_dir: &Path,
    components: &[Component],
    shutdown: &watch::Receiver<bool>,
    tasks: &mut JoinSet<(Component, Result<(), ProjectionError>)>,
) -> anyhow::Result<Vec<Running>> {
    let mut running = Vec::new();
    for component in components {
        let component = *component;
        let directory = data_dir.join(component.name());
        let store = component.open_store(&directory).with_context(|| {
            format!(
                "cannot open the {} store (is another process using it?)",
                component.name()
            )
        })?;
        register_collector(component, &store);
        let config = DriverConfig::default();
        let shutdown = shutdown.clone();
        let status = match component {
            Component::Inventory => {
                let projection =
                    lifeline_inventory::projection(Arc::clone(&store), jetstream.clone(), config);
                let status = projection.status();
                tasks.spawn(async move { (component, projection.run(shutdown).await) });
                status
            }
            Component::Delivery => {
                let projection =
                    lifeline_delivery::projection(Arc::clone(&store), jetstream.clone(), config);
                let status = projection.status();
                tasks.spawn(async move { (component, projection.run(shutdown).await) });
                status
            }
            Component::Dispatch => {
                let projection =
                    lifeline_dispatch::projection(Arc::clone(&store), jetstream.clone(), config);
                let status = projection.status();
                tasks.spawn(async move { (component, projection.run(shutdown).await) });
                status
            }
            Component::Registry => {
                let projection =
                    lifeline_registry::projection(Arc::clone(&store), jetstream.clone(), config);
                let status = projection.status();
                tasks.spawn(async move { (component, projection.run(shutdown).await) });
                status
            }
        };
        running.push(Running {
            component,
            status,
            store,
        });
    }
    Ok(running)
}

/// Exports the projection's operations metrics from this process.
fn register_collector(component: Component, store: &Arc<ProjectionStore>) {
    let collector: Option<Box<dyn prometheus::core::Collector>> = match component {
        Component::Inventory => Some(Box::new(
            lifeline_inventory::metrics::InventoryCollector::new(Arc::clone(store)),
        )),
        Component::Delivery => Some(Box::new(
            lifeline_delivery::metrics::DeliveryCollector::new(Arc::clone(store)),
        )),
        Component::Dispatch | Component::Registry => None,
    };
    if let Some(collector) = collector
        && let Err(error) = prometheus::register(collector)
    {
        tracing::warn!(component = component.name(), %error, "operations metrics not registered");
    }
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
    components: Vec<Component>,
    access: Option<std::path::PathBuf>,
) -> anyhow::Result<ExitCode> {
    register_build_info();
    let connection = connect(&common, "lifeline").await?;
    let (trigger, shutdown) = watch::channel(false);
    stop_on_signal(trigger.clone());
    let mut tasks = JoinSet::new();
    let running = start_consumers(
        &connection.jetstream,
        &common.data_dir,
        &components,
        &shutdown,
        &mut tasks,
    )?;
    let api = api_if_served(&connection, &common, &running, access.as_deref())?;
    let state = lifeline_gateway::GatewayState {
        nats: connection.client.clone(),
        consumers: running
            .iter()
            .map(|r| (r.component.name(), Arc::clone(&r.status)))
            .collect(),
        api,
    };
    let mut http_shutdown = shutdown.clone();
    let http_task = tokio::spawn(lifeline_gateway::serve(http, state, async move {
        let _ = http_shutdown.wait_for(|stop| *stop).await;
    }));
    let mut failed = false;
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok((component, Ok(()))) => {
                tracing::info!(component = component.name(), "consumer stopped")
            }
            Ok((component, Err(error))) => {
                tracing::error!(component = component.name(), %error, "consumer failed, stopping");
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
    match http_task.await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => {
            tracing::error!(%error, "http server failed");
            failed = true;
        }
        Err(error) => {
            tracing::error!(%error, "http task panicked");
            failed = true;
        }
    }
    connection.client.flush().await.ok();
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// The API, when this process runs the projections it reads (registry, delivery and
/// inventory: `lifeline up`).
fn api_if_served(
    connection: &Connection,
    common: &Common,
    running: &[Running],
    access: Option<&Path>,
) -> anyhow::Result<Option<Arc<lifeline_gateway::Api>>> {
    let store_of = |component: Component| {
        running
            .iter()
            .find(|r| r.component == component)
            .map(|r| Arc::clone(&r.store))
    };
    let (Some(registry), Some(delivery), Some(inventory)) = (
        store_of(Component::Registry),
        store_of(Component::Delivery),
        store_of(Component::Inventory),
    ) else {
        return Ok(None);
    };
    let access = match access {
        Some(path) => lifeline_gateway::Access::load(path)?,
        None => {
            tracing::warn!("no --access file: the API will answer 401 to every request");
            lifeline_gateway::Access::default()
        }
    };
    let idempotency = ProjectionStore::open(
        &common.data_dir.join("gateway"),
        &[lifeline_gateway::idempotency::TABLE],
    )
    .context("cannot open the gateway's idempotency store")?;
    Ok(Some(Arc::new(lifeline_gateway::Api {
        publisher: lifeline_bus::Publisher::new(connection.jetstream.clone(), "gateway"),
        jetstream: connection.jetstream.clone(),
        registry,
        delivery,
        inventory,
        idempotency: lifeline_gateway::idempotency::Idempotency::new(Arc::new(idempotency)),
        access,
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
pub async fn replay(common: Common, component: Component) -> anyhow::Result<ExitCode> {
    let connection = connect(&common, "lifeline-replay").await?;
    let live = common.data_dir.join(component.name());
    // Held open (locked) until the swap: no consumer can start on the live store while
    // it is being replaced.
    let mut live_guard = None;
    if live.exists() {
        // Fails while a consumer holds the store: replaying under a running consumer would
        // swap its files away.
        let store = component.open_store(&live).with_context(|| {
            format!(
                "cannot open {}; stop the {} consumer first",
                live.display(),
                component.name()
            )
        })?;
        live_guard = Some(store);
    }
    let fresh = common.data_dir.join(format!("{}.replay", component.name()));
    if fresh.exists() {
        std::fs::remove_dir_all(&fresh)
            .with_context(|| format!("cannot clear {}", fresh.display()))?;
    }
    let store = component.open_store(&fresh)?;
    let config = DriverConfig::default();
    let started = std::time::Instant::now();
    let head = match component {
        Component::Inventory => {
            lifeline_inventory::projection(Arc::clone(&store), connection.jetstream.clone(), config)
                .replay()
                .await?
        }
        Component::Delivery => {
            lifeline_delivery::projection(Arc::clone(&store), connection.jetstream.clone(), config)
                .replay()
                .await?
        }
        Component::Dispatch => {
            lifeline_dispatch::projection(Arc::clone(&store), connection.jetstream.clone(), config)
                .replay()
                .await?
        }
        Component::Registry => {
            lifeline_registry::projection(Arc::clone(&store), connection.jetstream.clone(), config)
                .replay()
                .await?
        }
    };
    let digest = store.digest()?;
    drop(store);
    drop(live_guard);
    lifeline_store::swap_in(&fresh, &live)?;
    println!(
        "replayed {} to stream sequence {head} in {:.2}s; digest {digest}; swapped into {}",
        component.name(),
        started.elapsed().as_secs_f64(),
        live.display()
    );
    Ok(ExitCode::SUCCESS)
}
