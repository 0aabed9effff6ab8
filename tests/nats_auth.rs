//! The documented secure setup: a nats-server with the shipped users (deploy/nats/
//! auth.conf). `lifeline seed` and `lifeline up` connect with credentials in the URL, or
//! given as flags and environment; a wrong password fails at once, without the secret in
//! the output; a comma-separated seed list works; and over TLS with a client certificate
//! (certificates made with the openssl CLI), refused without one.

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
    let url = with_userinfo(server.url(), "lifeline:dev-lifeline");
    ready_on_secured_server(&url, &["up"], &[]).await;
    ready_on_secured_server(&url, &["run", "delivery"], &[]).await;
}

/// A CA, a server certificate for 127.0.0.1 and a client certificate, in `dir`.
fn certificates(dir: &std::path::Path) {
    let openssl = |args: &[&str]| {
        let output = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("the openssl CLI (scripts/setup.sh installs it)");
        assert!(
            output.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    };
    std::fs::write(dir.join("server.ext"), "subjectAltName=IP:127.0.0.1\n").expect("ext");
    std::fs::write(dir.join("client.ext"), "extendedKeyUsage=clientAuth\n").expect("ext");
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca-key.pem",
        "-out",
        "ca.pem",
        "-days",
        "1",
        "-subj",
        "/CN=lifeline-test-ca",
    ]);
    for (name, ext) in [("server", "server.ext"), ("client", "client.ext")] {
        openssl(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            &format!("{name}-key.pem"),
            "-out",
            &format!("{name}.csr"),
            "-subj",
            &format!("/CN=lifeline-{name}"),
        ]);
        openssl(&[
            "x509",
            "-req",
            "-in",
            &format!("{name}.csr"),
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca-key.pem",
            "-CAcreateserial",
            "-out",
            &format!("{name}.pem"),
            "-days",
            "1",
            "-extfile",
            ext,
        ]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_up_and_run_connect_over_tls_with_a_client_certificate() {
    let dir = tempfile::tempdir().expect("tempdir");
    certificates(dir.path());
    let file = |name: &str| dir.path().join(name).display().to_string();
    let server = NatsServer::start_with_config(&format!(
        "tls {{ cert_file: \"{}\", key_file: \"{}\", ca_file: \"{}\", verify: true, timeout: 2 }}\n",
        file("server.pem"),
        file("server-key.pem"),
        file("ca.pem"),
    ));
    let url = server.url().replacen("nats://", "tls://", 1);
    let (ca, cert, key) = (file("ca.pem"), file("client.pem"), file("client-key.pem"));
    let tls = [
        "--nats-tls-ca",
        ca.as_str(),
        "--nats-tls-cert",
        cert.as_str(),
        "--nats-tls-key",
        key.as_str(),
    ];
    let (ok, output) = seed(&[&["--nats-url", url.as_str()][..], &tls[..]].concat(), &[]);
    assert!(ok, "seed over TLS with a client certificate: {output}");
    // The server verifies clients: without a certificate the connection is refused.
    let (ok, output) = seed(
        &["--nats-url", url.as_str(), "--nats-tls-ca", ca.as_str()],
        &[],
    );
    assert!(!ok, "refused without a client certificate: {output}");
    ready_on_secured_server(&url, &["up"], &tls).await;
    ready_on_secured_server(&url, &["run", "delivery"], &tls).await;
}

/// Starts `lifeline <command>` against `url` (credentials in it, TLS flags in `extra`) and
/// waits for `/readyz` 200.
async fn ready_on_secured_server(url: &str, command: &[&str], extra: &[&str]) {
    let data = tempfile::tempdir().expect("tempdir");
    let log_path = data.path().join("lifeline.log");
    let log = std::fs::File::create(&log_path).expect("log");
    let mut child = Command::new(LIFELINE)
        .args(command)
        .args(["--nats-url", url, "--http", "127.0.0.1:0"])
        .args(extra)
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
