//! Shared test fixtures: a real nats-server, real RocksDB stores in a temp dir, consumers
//! started and stopped like `lifeline up` does, and small event builders.

#![allow(dead_code)]

mod audit;
mod log;
#[allow(unused_imports)]
pub use audit::*;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use lifeline_bus::async_nats::jetstream;
use lifeline_bus::{Publisher, StreamSettings, provision};
use lifeline_events::*;
use lifeline_projection::{DriverConfig, ProjectionError, ProjectionStatus};
use lifeline_store::ProjectionStore;
use lifeline_testkit::{NatsServer, eventually};
use tokio::sync::watch;

pub const WAIT: Duration = Duration::from_secs(20);

pub struct Harness {
    pub server: NatsServer,
    pub client: lifeline_bus::async_nats::Client,
    pub jetstream: jetstream::Context,
    pub publisher: Publisher,
    pub data: tempfile::TempDir,
}

impl Harness {
    pub async fn start() -> Harness {
        Harness::start_with(&StreamSettings::default()).await
    }

    /// A harness whose streams have these settings (a short duplicate window, say).
    pub async fn start_with(settings: &StreamSettings) -> Harness {
        let server = NatsServer::start();
        let client = lifeline_bus::connect(server.url(), "test", &Default::default())
            .await
            .expect("connect");
        let jetstream = jetstream::new(client.clone());
        provision(&jetstream, settings).await.expect("provision");
        let publisher = Publisher::new(jetstream.clone(), "test");
        Harness {
            server,
            client,
            jetstream,
            publisher,
            data: tempfile::tempdir().expect("tempdir"),
        }
    }

    pub async fn publish(&self, events: &[Envelope]) {
        self.publisher.publish_all(events).await.expect("publish");
    }

    pub async fn head(&self) -> u64 {
        lifeline_bus::stream_head(&self.jetstream, EVENT_STREAM)
            .await
            .expect("head")
    }

    pub fn store_dir(&self, name: &str) -> std::path::PathBuf {
        self.data.path().join(name)
    }
}

/// A consumer task started like `lifeline up` starts it.
pub struct Consumer {
    pub store: Arc<ProjectionStore>,
    pub status: Arc<ProjectionStatus>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<Result<(), ProjectionError>>,
}

/// A consumer by name, as the process lists them (`lifeline_readmodel::consumers`).
pub type Kind = &'static str;
pub const INVENTORY: Kind = "inventory";
pub const DELIVERY: Kind = "delivery";
pub const DISPATCH: Kind = "dispatch";
pub const CAMPAIGNS: Kind = "campaigns";
pub const FEED: Kind = "feed";

pub fn consumer_of(kind: Kind) -> lifeline_readmodel::Consumer {
    lifeline_readmodel::consumer(kind).expect("a consumer of that name")
}

pub fn open_store(kind: Kind, directory: &std::path::Path) -> Arc<ProjectionStore> {
    consumer_of(kind).open_store(directory).expect("open store")
}

pub fn start_consumer(harness: &Harness, kind: Kind, directory: &std::path::Path) -> Consumer {
    start_consumer_with(
        harness,
        kind,
        open_store(kind, directory),
        DriverConfig::default(),
    )
}

pub fn start_consumer_with(
    harness: &Harness,
    kind: Kind,
    store: Arc<ProjectionStore>,
    config: DriverConfig,
) -> Consumer {
    let (stop, shutdown) = watch::channel(false);
    let projection =
        consumer_of(kind).projection(Arc::clone(&store), harness.jetstream.clone(), config);
    let status = projection.status();
    let task = tokio::spawn(projection.run(shutdown));
    Consumer {
        store,
        status,
        stop,
        task,
    }
}

impl Consumer {
    pub fn position(&self) -> u64 {
        self.status.position.load(Ordering::Relaxed)
    }

    pub async fn wait_for(&self, sequence: u64) {
        assert!(
            eventually(WAIT, || async { self.position() >= sequence }).await,
            "consumer stuck at {} waiting for {sequence}",
            self.position()
        );
    }

    /// Stops between batches and waits for the task; returns the store.
    pub async fn stop(self) -> Arc<ProjectionStore> {
        let _ = self.stop.send(true);
        self.task
            .await
            .expect("consumer task")
            .expect("consumer ran cleanly");
        self.store
    }
}

pub fn meta(actor: Actor) -> EventMeta {
    EventMeta {
        time: time::OffsetDateTime::now_utc(),
        source: "test".to_owned(),
        actor,
        correlation_id: new_event_id(),
        causation_id: None,
    }
}

pub fn system(event: Event) -> Envelope {
    Envelope::new(event, meta(Actor::system("test")))
}

pub const COMMUNITY: &str = "tianlun";

pub fn stock(partner: &str, item: &str, quantity: u32) -> Envelope {
    system(Event::StockReceived(StockReceived {
        partner: partner.into(),
        item: item.into(),
        quantity,
    }))
}

pub fn tricycle(id: &str, capacity_g: u32) -> Envelope {
    system(Event::TricycleRegistered(TricycleRegistered {
        community: COMMUNITY.into(),
        tricycle: id.into(),
        capacity_g,
    }))
}

/// An order of `lines` (item, quantity) for household `n` in building `building`.
pub fn order(
    order: &str,
    household: usize,
    building: usize,
    partner: &str,
    lines: &[(&str, u32)],
    priority: Priority,
) -> Envelope {
    let lines: Vec<OrderLine> = lines
        .iter()
        .map(|(item, quantity)| OrderLine {
            item: (*item).into(),
            quantity: *quantity,
        })
        .collect();
    Envelope::new(
        Event::OrderPlaced(OrderPlaced {
            order: order.into(),
            community: COMMUNITY.into(),
            building: format!("tianlun-b{building:02}"),
            unit: format!("tianlun-b{building:02}-u1"),
            household: format!("tianlun-b{building:02}-u1-{household:04}"),
            partner: partner.into(),
            weight_g: 5_000 * lines.iter().map(|l| l.quantity).sum::<u32>(),
            lines,
            priority,
            on_behalf_by: None,
            campaign: None,
        }),
        meta(Actor::new(ActorKind::Resident, format!("h{household}"))),
    )
}

pub fn pick(order: &str, partner: &str, lines: Vec<PickLine>) -> Envelope {
    Envelope::new(
        Event::OrderPicked(OrderPicked {
            order: order.into(),
            community: COMMUNITY.into(),
            partner: partner.into(),
            lines,
            batch: None,
        }),
        meta(Actor::new(ActorKind::Partner, partner)),
    )
}

pub fn picked_in_full(item: &str, quantity: u32) -> PickLine {
    PickLine {
        item: item.into(),
        ordered: quantity,
        outcome: PickOutcome::Picked,
        picked: quantity,
        substitute: None,
    }
}

/// A line picked short: `picked` of `ordered`.
pub fn picked_short(item: &str, ordered: u32, picked: u32) -> PickLine {
    PickLine {
        item: item.into(),
        ordered,
        outcome: PickOutcome::Short,
        picked,
        substitute: None,
    }
}

pub fn arrival(partner: &str, orders: &[&str]) -> Envelope {
    system(Event::ArrivedAtCheckpoint(ArrivedAtCheckpoint {
        arrival: new_event_id().to_string(),
        community: COMMUNITY.into(),
        partner: partner.into(),
        orders: orders.iter().map(|o| (*o).to_owned()).collect(),
        vehicle: None,
        driver: None,
        batches: Vec::new(),
    }))
}

pub fn delivered(order: &str, run: &str, household: &str) -> Envelope {
    Envelope::new(
        Event::DropDelivered(DropDelivered {
            order: order.into(),
            run: run.into(),
            community: COMMUNITY.into(),
            household: household.into(),
            proof: Proof {
                photo_sha256: None,
                code: Some("1234".into()),
            },
        }),
        meta(Actor::new(ActorKind::Courier, "vol-1")),
    )
}

pub fn departed(run: &str, tricycle: &str) -> Envelope {
    system(Event::RunDeparted(RunDeparted {
        run: run.into(),
        community: COMMUNITY.into(),
        tricycle: tricycle.into(),
        courier: "vol-1".into(),
    }))
}

pub fn returned(run: &str, tricycle: &str) -> Envelope {
    system(Event::RunReturned(RunReturned {
        run: run.into(),
        community: COMMUNITY.into(),
        tricycle: tricycle.into(),
    }))
}

/// Every `run.planned` event in the stream.
pub async fn planned_runs(harness: &Harness) -> Vec<(u64, RunPlanned)> {
    envelopes(harness)
        .await
        .into_iter()
        .filter_map(|(sequence, envelope)| match envelope.event {
            Event::RunPlanned(run) => Some((sequence, run)),
            _ => None,
        })
        .collect()
}

/// Every decodable event in the stream, with its sequence, oldest first.
pub async fn envelopes(harness: &Harness) -> Vec<(u64, Envelope)> {
    envelopes_in(&harness.jetstream).await
}

/// [`envelopes`] through any connection (a cluster's, say).
pub async fn envelopes_in(jetstream: &jetstream::Context) -> Vec<(u64, Envelope)> {
    let head = lifeline_bus::stream_head(jetstream, EVENT_STREAM)
        .await
        .expect("head");
    let mut events = Vec::new();
    if head == 0 {
        return events;
    }
    // Right after a cluster lost its stream leader, creating the reader's consumer may
    // time out once or twice while the new leader settles: that is the cluster, not what
    // the audit checks.
    let mut tries = 0;
    let mut reader = loop {
        match lifeline_bus::EventReader::open(jetstream, EVENT_STREAM, 0, 512).await {
            Ok(reader) => break reader,
            Err(error) if tries < 10 => {
                tries += 1;
                eprintln!("audit reader not open yet ({error}); retrying");
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            }
            Err(error) => panic!("reader: {error:?}"),
        }
    };
    loop {
        let batch = reader
            .next_batch()
            .await
            .expect("stream open")
            .expect("batch");
        let mut last = 0;
        for message in batch {
            last = message.sequence;
            if let Ok(envelope) = Envelope::decode(&message.payload) {
                events.push((message.sequence, envelope));
            }
        }
        if last >= head {
            return events;
        }
    }
}

pub const LIFELINE: &str = env!("CARGO_BIN_EXE_lifeline");

pub struct Up {
    child: Child,
    pub http: String,
    /// Everything the process logged (stderr, `RUST_LOG=info` unless
    /// `LIFELINE_TEST_LOG` says otherwise); printed when a test fails.
    pub log: std::path::PathBuf,
}

impl Up {
    pub fn start(harness: &Harness, data_dir: &std::path::Path) -> Up {
        Up::start_with_args(harness, data_dir, &[])
    }

    /// Starts `lifeline up` on a port the OS chooses (`127.0.0.1:0`, so no two tests can
    /// race for one) and reads the bound address back from its "http listening" log line.
    pub fn start_with_args(harness: &Harness, data_dir: &std::path::Path, extra: &[&str]) -> Up {
        Up::start_logging_to(harness, data_dir, data_dir, extra, &[])
    }

    /// [`Up::start_with_args`] with its log in `log_dir` (not on a data disk a test fills)
    /// and these environment variables.
    pub fn start_logging_to(
        harness: &Harness,
        data_dir: &std::path::Path,
        log_dir: &std::path::Path,
        extra: &[&str],
        envs: &[(&str, &str)],
    ) -> Up {
        Up::start_at(harness.server.url(), data_dir, log_dir, extra, envs)
    }

    /// `lifeline up` against the NATS servers `urls` (one URL or a seed list).
    pub fn start_at(
        urls: &str,
        data_dir: &std::path::Path,
        log_dir: &std::path::Path,
        extra: &[&str],
        envs: &[(&str, &str)],
    ) -> Up {
        static STARTS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let start = STARTS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let log = log_dir.join(format!("lifeline-{}-{start}.log", std::process::id()));
        let log_file = std::fs::File::create(&log).expect("log file");
        let child = Command::new(LIFELINE)
            .args(["up", "--nats-url", urls, "--http", "127.0.0.1:0"])
            .arg("--data-dir")
            .arg(data_dir)
            .args(extra)
            .envs(envs.iter().copied())
            .env(
                "RUST_LOG",
                std::env::var("LIFELINE_TEST_LOG")
                    .unwrap_or_else(|_| "info,async_nats=warn".into()),
            )
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .expect("start lifeline up");
        let mut up = Up {
            child,
            http: String::new(),
            log,
        };
        let deadline = Instant::now() + WAIT;
        loop {
            let text = std::fs::read_to_string(&up.log).unwrap_or_default();
            let address = text
                .lines()
                .filter(|line| line.contains("http listening"))
                .find_map(|line| {
                    line.split_whitespace()
                        .find_map(|field| field.strip_prefix("address="))
                        .map(str::to_owned)
                });
            if let Some(address) = address {
                up.http = format!("http://{address}");
                return up;
            }
            assert!(
                up.child.try_wait().expect("wait").is_none(),
                "lifeline up exited before listening:\n{text}"
            );
            assert!(
                Instant::now() < deadline,
                "lifeline up did not listen:\n{text}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until `/readyz` answers 200.
    pub async fn wait_ready(&self) {
        assert!(
            eventually(WAIT, || async {
                self.get("/readyz")
                    .await
                    .is_some_and(|(status, _)| status == 200)
            })
            .await,
            "lifeline up became ready"
        );
    }

    /// Waits until every consumer's position is the stream's head, and the head has not
    /// moved for one more poll (a process manager may still be publishing what it decided).
    /// An audit against a replay is only fair after this: a replay reads to the head.
    pub async fn wait_caught_up(&self, jetstream: &jetstream::Context) {
        let deadline = Instant::now() + WAIT;
        let mut settled_at = None;
        loop {
            let head = lifeline_bus::stream_head(jetstream, EVENT_STREAM)
                .await
                .ok();
            let body = self.get("/readyz").await.map(|(_, body)| body);
            let body: serde_json::Value =
                serde_json::from_str(body.as_deref().unwrap_or("")).unwrap_or_default();
            let all_at_head = head.is_some()
                && lifeline_readmodel::consumers()
                    .iter()
                    .all(|c| body["consumers"][c.name()]["position"].as_u64() == head);
            if all_at_head && settled_at == head {
                return;
            }
            settled_at = if all_at_head { head } else { None };
            assert!(
                Instant::now() < deadline,
                "every consumer reached the stream's head: {body}"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    pub async fn get(&self, path: &str) -> Option<(u16, String)> {
        let response = reqwest::get(format!("{}{path}", self.http)).await.ok()?;
        let status = response.status().as_u16();
        Some((status, response.text().await.ok()?))
    }

    /// A stand-in while a test restarts the process: no child, nothing listening.
    pub fn placeholder() -> Up {
        let child = Command::new("true").spawn().expect("spawn true");
        Up {
            child,
            http: String::new(),
            log: std::path::PathBuf::new(),
        }
    }

    /// SIGKILL, as a crash or an OOM kill would: no batch is finished.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then the exit code.
    pub fn terminate(mut self) -> i32 {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status.code().unwrap_or(-1);
            }
            assert!(
                Instant::now() < deadline,
                "lifeline up did not stop on SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Up {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            log::print(&self.log);
        }
    }
}

/// A small tmpfs (mounting needs root: CI runs as root; `None` elsewhere), unmounted on
/// drop.
pub struct Tmpfs(tempfile::TempDir);

impl Tmpfs {
    pub fn mount(megabytes: u32) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().ok()?;
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={megabytes}m"), "tmpfs"])
            .arg(dir.path())
            .stderr(Stdio::null())
            .status()
            .ok()?;
        status.success().then_some(Tmpfs(dir))
    }

    pub fn path(&self) -> &std::path::Path {
        self.0.path()
    }

    /// Fills what is left with a file (`dd` stops at ENOSPC); removing it gives it back.
    pub fn fill(&self) -> std::path::PathBuf {
        let filler = self.path().join("filler");
        let _ = Command::new("dd")
            .args(["if=/dev/zero", "bs=1M"])
            .arg(format!("of={}", filler.display()))
            .stderr(Stdio::null())
            .status();
        filler
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.0.path()).status();
    }
}

/// Seeds a freshly started cluster at R3. The cluster elects its JetStream meta leader a
/// few seconds after start: seed until provisioning and the seed data go through.
pub async fn seed_cluster(urls: &str) {
    let seeded = lifeline_testkit::eventually(Duration::from_secs(60), || async {
        Command::new(LIFELINE)
            .args(["seed", "--nats-url", urls, "--replicas", "3"])
            .output()
            .is_ok_and(|output| output.status.success())
    })
    .await;
    assert!(seeded, "lifeline seed on the cluster");
}

/// The server name of the event stream's leader.
pub async fn stream_leader(jetstream: &jetstream::Context) -> Option<String> {
    let mut stream = jetstream.get_stream(EVENT_STREAM).await.ok()?;
    stream.info().await.ok()?.cluster.as_ref()?.leader.clone()
}
