//! A three-node JetStream cluster on loopback: random client and route ports, one store
//! directory per node, each node killable and restartable on its own.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::nats_server_binary;

/// A free loopback port, as the OS hands one out (released at once: a small race, fine on
/// a test machine).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("a free port")
}

struct Node {
    name: String,
    client_port: u16,
    config: PathBuf,
    child: Option<Child>,
}

/// Three nats-servers routed into one JetStream cluster (`lifeline`), named n1..n3.
pub struct NatsCluster {
    nodes: Vec<Node>,
    _directory: tempfile::TempDir,
}

impl std::fmt::Debug for NatsCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsCluster")
            .field("urls", &self.urls())
            .finish()
    }
}

impl NatsCluster {
    /// Starts the three nodes and waits until each accepts clients. JetStream elects its
    /// meta leader a few seconds later: provisioning retries until it has one.
    pub fn start() -> NatsCluster {
        let directory = tempfile::tempdir().expect("temp dir");
        let routes: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let mut nodes = Vec::new();
        for n in 0..3 {
            let name = format!("n{}", n + 1);
            let client_port = free_port();
            let store = directory.path().join(&name);
            let others: Vec<String> = routes
                .iter()
                .enumerate()
                .filter(|(m, _)| *m != n)
                .map(|(_, port)| format!("\"nats-route://127.0.0.1:{port}\""))
                .collect();
            let config = directory.path().join(format!("{name}.conf"));
            std::fs::write(
                &config,
                format!(
                    "server_name: {name}\nlisten: 127.0.0.1:{client_port}\n\
                     jetstream {{ store_dir: \"{}\" }}\n\
                     cluster {{ name: lifeline\n listen: 127.0.0.1:{}\n routes: [{}] }}\n",
                    store.display(),
                    routes[n],
                    others.join(", ")
                ),
            )
            .expect("write config");
            nodes.push(Node {
                name,
                client_port,
                config,
                child: None,
            });
        }
        let mut cluster = NatsCluster {
            nodes,
            _directory: directory,
        };
        for n in 0..3 {
            cluster.start_node(n);
        }
        cluster
    }

    fn start_node(&mut self, n: usize) {
        let node = &mut self.nodes[n];
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let mut child = Command::new(nats_server_binary())
                .arg("-c")
                .arg(&node.config)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|error| panic!("cannot start nats-server: {error}"));
            let up = loop {
                if std::net::TcpStream::connect(("127.0.0.1", node.client_port)).is_ok() {
                    break true;
                }
                if child.try_wait().expect("wait").is_some() || Instant::now() > deadline {
                    break false;
                }
                std::thread::sleep(Duration::from_millis(20));
            };
            if up {
                node.child = Some(child);
                return;
            }
            // The port may still be held by a node killed a moment ago.
            let _ = child.kill();
            let _ = child.wait();
            assert!(Instant::now() < deadline, "node {} starts", node.name);
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Every node's client URL, comma-separated: a seed list as NATS clients take it.
    pub fn urls(&self) -> String {
        self.nodes
            .iter()
            .map(|node| format!("nats://127.0.0.1:{}", node.client_port))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The server names, n1..n3.
    pub fn names(&self) -> Vec<String> {
        self.nodes.iter().map(|node| node.name.clone()).collect()
    }

    /// SIGKILL of the node called `name`, as a crash would.
    pub fn kill(&mut self, name: &str) {
        if let Some(node) = self.nodes.iter_mut().find(|node| node.name == name)
            && let Some(mut child) = node.child.take()
        {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the node called `name` again with its store.
    pub fn restart(&mut self, name: &str) {
        self.kill(name);
        if let Some(n) = self.nodes.iter().position(|node| node.name == name) {
            self.start_node(n);
        }
    }
}

impl Drop for NatsCluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            if let Some(mut child) = node.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}
