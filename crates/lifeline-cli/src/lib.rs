//! The `lifeline` command: `up` runs every component in one process, `run <component>`
//! runs one, `demo` plays a lockdown day, `replay <projection>` rebuilds a projection.

mod components;
mod demo;
mod local_nats;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "lifeline",
    version,
    about = "Deliveries for sealed communities, as an event-sourced pipeline on NATS JetStream"
)]
pub struct Cli {
    /// Log format: human-readable text or one JSON object per line.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Options every subcommand takes.
#[derive(Debug, Clone, Args)]
pub struct Common {
    /// NATS server URL, or a cluster's seed list, comma-separated. Credentials may be in
    /// it (`nats://user:password@host:4222`, `nats://token@host:4222`). Without it, a
    /// local nats-server is used or started.
    #[arg(long, env = "LIFELINE_NATS_URL", hide_env_values = true)]
    pub nats_url: Option<String>,
    #[command(flatten)]
    pub nats_auth: NatsAuth,
    /// Directory for the RocksDB projections (and a local nats-server's store).
    #[arg(long, env = "LIFELINE_DATA_DIR", default_value = "lifeline-data")]
    pub data_dir: PathBuf,
    /// JetStream replicas for the streams (3 on a 3-node cluster). Without it an existing
    /// stream keeps its replicas and a new one gets 1; lowering is refused unless
    /// --allow-fewer-replicas.
    #[arg(long, env = "LIFELINE_REPLICAS")]
    pub replicas: Option<usize>,
    /// Allow --replicas to lower an existing stream's replica count.
    #[arg(long)]
    pub allow_fewer_replicas: bool,
    /// `/readyz` answers 503 while NATS is down or any consumer is more than this many
    /// events behind the stream head.
    #[arg(long, env = "LIFELINE_READY_MAX_LAG", default_value_t = 1000)]
    pub ready_max_lag: u64,
    /// At most this many `/v1` requests are worked on at once.
    #[arg(long, env = "LIFELINE_MAX_IN_FLIGHT", default_value_t = 256)]
    pub max_in_flight: usize,
    /// A `/v1` request that cannot start within this many milliseconds is answered 503
    /// `overloaded` with `Retry-After`.
    #[arg(long, env = "LIFELINE_QUEUE_TIMEOUT_MS", default_value_t = 500)]
    pub queue_timeout_ms: u64,
    /// How many partitions the communities are spread over (a fixed hash of the community
    /// id). Every replica of a deployment must be given the same count; see
    /// docs/operations.md ("Partitions").
    #[arg(long, env = "LIFELINE_PARTITIONS", default_value_t = 1)]
    pub partitions: u32,
    /// The partitions this process serves, comma-separated (0 to --partitions - 1; all of
    /// them by default). Delivery, dispatch, campaigns and the partner feed then apply
    /// those communities' events only, and the API answers 421 for the others.
    #[arg(long, env = "LIFELINE_PARTITION", value_delimiter = ',')]
    pub partition: Option<Vec<u32>>,
}

impl Common {
    /// The partitions this process serves, as its flags say.
    pub fn partitioning(&self) -> anyhow::Result<lifeline_events::Partitioning> {
        lifeline_events::Partitioning::new(self.partitions, self.partition.as_deref())
            .map_err(|error| anyhow::anyhow!("--partitions/--partition: {error}"))
    }
}

/// How to authenticate to NATS and secure the connection. Secrets come from the
/// environment or files rather than the command line where possible; none is ever logged.
#[derive(Debug, Clone, Default, Args)]
pub struct NatsAuth {
    /// NATS user (overrides a user in the URL).
    #[arg(long, env = "LIFELINE_NATS_USER")]
    pub nats_user: Option<String>,
    /// NATS password (overrides a password in the URL).
    #[arg(long, env = "LIFELINE_NATS_PASSWORD", hide_env_values = true)]
    pub nats_password: Option<String>,
    /// NATS authentication token.
    #[arg(long, env = "LIFELINE_NATS_TOKEN", hide_env_values = true)]
    pub nats_token: Option<String>,
    /// A file holding an NKey seed.
    #[arg(long, env = "LIFELINE_NATS_NKEY", value_name = "FILE")]
    pub nats_nkey: Option<PathBuf>,
    /// A `.creds` file (JWT and NKey seed).
    #[arg(long, env = "LIFELINE_NATS_CREDS", value_name = "FILE")]
    pub nats_creds: Option<PathBuf>,
    /// CA certificate (PEM) to verify the server; turns TLS on.
    #[arg(long, env = "LIFELINE_NATS_TLS_CA", value_name = "FILE")]
    pub nats_tls_ca: Option<PathBuf>,
    /// Client certificate (PEM), with --nats-tls-key, for servers that verify clients.
    #[arg(long, env = "LIFELINE_NATS_TLS_CERT", value_name = "FILE")]
    pub nats_tls_cert: Option<PathBuf>,
    /// Client key (PEM).
    #[arg(long, env = "LIFELINE_NATS_TLS_KEY", value_name = "FILE")]
    pub nats_tls_key: Option<PathBuf>,
}

impl NatsAuth {
    pub fn options(&self) -> lifeline_bus::NatsOptions {
        lifeline_bus::NatsOptions {
            user: self.nats_user.clone(),
            password: self.nats_password.clone(),
            token: self.nats_token.clone(),
            nkey_seed_file: self.nats_nkey.clone(),
            credentials_file: self.nats_creds.clone(),
            tls_ca: self.nats_tls_ca.clone(),
            tls_cert: self.nats_tls_cert.clone(),
            tls_key: self.nats_tls_key.clone(),
            require_tls: false,
        }
    }
}

/// Where the seed data comes from.
#[derive(Debug, Clone, Args)]
pub struct SeedSource {
    /// A directory of seed files (communities.json, buildings.json, households.json,
    /// catalogue.json, partners.json, tricycles.json, volunteers.json). Without it, the
    /// seed data built into the binary.
    #[arg(long = "seeds", env = "LIFELINE_SEEDS_DIR", value_name = "DIR")]
    pub directory: Option<PathBuf>,
}

impl SeedSource {
    pub fn load(&self) -> Result<lifeline_seeds::Seeds, lifeline_seeds::SeedError> {
        lifeline_seeds::Seeds::load_or_embedded(self.directory.as_deref())
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run every component in one process.
    Up {
        #[command(flatten)]
        common: Common,
        /// Address for /healthz, /readyz, /metrics, the /v1 API and the courier page.
        #[arg(long, env = "LIFELINE_HTTP_ADDR", default_value = "127.0.0.1:8080")]
        http: SocketAddr,
        /// Bearer tokens and their scopes (TOML; see deploy/access.example.toml). Without
        /// it the API answers every request with 401.
        #[arg(long, env = "LIFELINE_ACCESS_FILE")]
        access: Option<PathBuf>,
    },
    /// Run one component (to spread components over machines).
    Run {
        /// The consumer to run.
        #[arg(value_parser = consumer_names())]
        component: String,
        #[command(flatten)]
        common: Common,
        #[arg(long, env = "LIFELINE_HTTP_ADDR", default_value = "127.0.0.1:8080")]
        http: SocketAddr,
    },
    /// Load the seed data and play one lockdown day on a simulated clock.
    Demo {
        #[command(flatten)]
        common: Common,
        /// Which community plays the day: `tianlun` (Tianlun Jincheng, 3,314 households),
        /// `huangtugang` (Huangtugang Village, 2,806), or `all` (both at once).
        #[arg(long, default_value = "tianlun")]
        community: String,
        /// How many households of each community take part (all of them by default).
        #[arg(long)]
        households: Option<usize>,
        /// Keep the planner's order of buildings instead of routing each run over the map
        /// (to measure what routes save: compare "distance ridden").
        #[arg(long)]
        no_routes: bool,
        /// Play the day with every household, tricycle and volunteer copied this many
        /// times and the stock multiplied to match (benchmarks: the same day, N times the
        /// orders).
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1000))]
        scale: u32,
        /// Seed of the simulation's random choices.
        #[arg(long, default_value_t = 20200613)]
        seed: u64,
        /// Give up (exit 1) after this many seconds.
        #[arg(long, default_value_t = 600)]
        timeout_secs: u64,
        #[command(flatten)]
        seeds: SeedSource,
    },
    /// Publish the seed data (both communities' registry, the catalogue, the partners'
    /// opening stock). Ids come from the content, so publishing twice stores nothing new
    /// within JetStream's duplicate window.
    Seed {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        seeds: SeedSource,
    },
    /// Print the partition of each community (for a router's map, or to check where a
    /// community is served). Reads nothing: the map is a fixed hash of the id.
    Partition {
        /// Community ids.
        #[arg(required = true)]
        communities: Vec<String>,
        /// The deployment's partition count.
        #[arg(long, env = "LIFELINE_PARTITIONS", default_value_t = 1)]
        partitions: u32,
    },
    /// Rebuild a projection from the stream into a fresh directory and swap it in.
    Replay {
        /// The consumer whose projection to rebuild.
        #[arg(value_parser = consumer_names())]
        projection: String,
        #[command(flatten)]
        common: Common,
    },
}

/// The consumers' names, as `run` and `replay` accept them.
fn consumer_names() -> clap::builder::PossibleValuesParser {
    clap::builder::PossibleValuesParser::new(
        lifeline_readmodel::consumers()
            .iter()
            .map(|consumer| consumer.name()),
    )
}

/// The consumer called `name` (clap has checked it is one).
fn named(name: &str) -> anyhow::Result<lifeline_readmodel::Consumer> {
    lifeline_readmodel::consumer(name).ok_or_else(|| anyhow::anyhow!("no consumer {name}"))
}

/// `RUST_LOG` filters (default `info`); `--log-format json` for machines. Logs go to
/// stderr, coloured only when stderr is a terminal and `NO_COLOR` is unset, so a log piped
/// into a file, CI or journald carries no escape codes.
pub fn init_tracing(format: LogFormat) {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,async_nats=warn"));
    let colour = format == LogFormat::Text
        && std::io::stderr().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|value| value.is_empty());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}

pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Up {
            common,
            http,
            access,
        } => {
            let partitioning = common.partitioning()?;
            let consumers = lifeline_readmodel::consumers()
                .into_iter()
                .map(|consumer| consumer.serving(&partitioning))
                .collect();
            components::up(common, http, consumers, access).await
        }
        Command::Run {
            component,
            common,
            http,
        } => {
            let consumer = named(&component)?.serving(&common.partitioning()?);
            components::up(common, http, vec![consumer], None).await
        }
        Command::Demo {
            common,
            community,
            households,
            no_routes,
            scale,
            seed,
            timeout_secs,
            seeds,
        } => {
            let day = demo::Day {
                communities: demo::communities(&community)?,
                households,
                routes: !no_routes,
                scale,
                seed,
                timeout_secs,
            };
            demo::run(common, day, seeds).await
        }
        Command::Replay { projection, common } => {
            let consumer = named(&projection)?.serving(&common.partitioning()?);
            components::replay(common, consumer).await
        }
        Command::Seed { common, seeds } => components::seed(common, seeds).await,
        Command::Partition {
            communities,
            partitions,
        } => {
            anyhow::ensure!(partitions >= 1, "--partitions must be at least 1");
            for community in communities {
                let partition = lifeline_events::partition_of(&community, partitions);
                println!("{community} {partition}");
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
