//! The documented secure setup: a nats-server with the shipped users (deploy/nats/
//! auth.conf). `lifeline seed` and `lifeline up` connect with credentials in the URL, or
//! given as flags and environment; a wrong password fails at once, without the secret in
//! the output; a comma-separated seed list works.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use lifeline_testkit::NatsServer;

fn auth_server() -> NatsServer {
    let config = std::fs::read_to_string(
        std::path::Path::new(&manifest_dir()).join("../../deploy/nats/auth.conf"),
    )
    .expect("auth.conf");
    NatsServer::start_with_config(&config)
}

/// `nats://127.0.0.1:PORT` with `userinfo@` put in.
fn with_userinfo(url: &str, userinfo: &str) -> String {
    url.replacen("://", &format!("://{userinfo}@"), 1)
}

/// Runs `lifeline seed` with `args` and `env`; gives up after 30 s.
fn seed(args: &[&str], env: &[(&str, &str)]) -> (bool, String) {
    let data = tempfile::tempdir().expect("tempdir");
    let mut child = Command::new(LIFELINE)
        .arg("seed")
        .args(args)
        .arg("--data-dir")
        .arg(data.path())
        .env_remove("LIFELINE_NATS_PASSWORD")
        .env_remove("LIFELINE_NATS_URL")
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run lifeline seed");
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("lifeline seed {args:?} did not finish in 30 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let output = child.wait_with_output().expect("output");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

#[test]
fn seed_connects_with_credentials_in_the_url_or_given_apart() {
    let server = auth_server();
    let (ok, output) = seed(
        &[
            "--nats-url",
            &with_userinfo(server.url(), "lifeline:dev-lifeline"),
        ],
        &[],
    );
    assert!(ok, "credentials in the URL: {output}");
    let (ok, output) = seed(
        &["--nats-url", server.url(), "--nats-user", "lifeline"],
        &[("LIFELINE_NATS_PASSWORD", "dev-lifeline")],
    );
    assert!(ok, "user flag and password from the environment: {output}");
    // A seed list: an address nobody listens on, then the server.
    let list = format!(
        "nats://127.0.0.1:1,{}",
        with_userinfo(server.url(), "lifeline:dev-lifeline")
    );
    let (ok, output) = seed(&["--nats-url", &list], &[]);
    assert!(ok, "comma-separated seed list: {output}");
}

#[test]
fn a_wrong_password_fails_at_once_and_is_not_printed() {
    let server = auth_server();
    let started = Instant::now();
    let (ok, output) = seed(
        &[
            "--nats-url",
            &with_userinfo(server.url(), "lifeline:not-the-password"),
        ],
        &[],
    );
    assert!(!ok, "a wrong password must fail: {output}");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "refused at once, not retried"
    );
    assert!(
        output.contains("authorization violation"),
        "says why: {output}"
    );
    assert!(
        !output.contains("not-the-password"),
        "the secret is not printed: {output}"
    );
    let (ok, output) = seed(&["--nats-url", server.url()], &[]);
    assert!(!ok, "no credentials must fail: {output}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_and_run_serve_against_the_secured_server() {
    let server = auth_server();
    ready_on_secured_server(&server, &["up"]).await;
    ready_on_secured_server(&server, &["run", "delivery"]).await;
}

/// Starts `lifeline <command>` with credentials in the URL and waits for `/readyz` 200.
async fn ready_on_secured_server(server: &NatsServer, command: &[&str]) {
    let data = tempfile::tempdir().expect("tempdir");
    let log_path = data.path().join("lifeline.log");
    let log = std::fs::File::create(&log_path).expect("log");
    let mut child = Command::new(LIFELINE)
        .args(command)
        .args([
            "--nats-url",
            &with_userinfo(server.url(), "lifeline:dev-lifeline"),
            "--http",
            "127.0.0.1:0",
        ])
        .arg("--data-dir")
        .arg(data.path())
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start lifeline up");
    let mut address = None;
    let deadline = Instant::now() + Duration::from_secs(60);
    while address.is_none() && Instant::now() < deadline {
        let text = std::fs::read_to_string(&log_path).unwrap_or_default();
        address = text
            .lines()
            .filter(|line| line.contains("http listening"))
            .find_map(|line| {
                line.split_whitespace()
                    .find_map(|field| field.strip_prefix("address="))
                    .map(str::to_owned)
            });
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let address = address.unwrap_or_else(|| {
        panic!(
            "lifeline {command:?} listens:\n{}",
            std::fs::read_to_string(&log_path).unwrap_or_default()
        )
    });
    let ready = lifeline_testkit::eventually(Duration::from_secs(30), || async {
        reqwest::get(format!("http://{address}/readyz"))
            .await
            .is_ok_and(|response| response.status() == 200)
    })
    .await;
    let _ = child.kill();
    let _ = child.wait();
    let text = std::fs::read_to_string(&log_path).unwrap_or_default();
    assert!(
        ready,
        "lifeline up became ready on the secured server:\n{text}"
    );
    assert!(
        !text.contains("dev-lifeline@"),
        "the password is not logged"
    );
}

/// The package directory of the checkout running the test.
fn manifest_dir() -> std::ffi::OsString {
    std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into())
}
