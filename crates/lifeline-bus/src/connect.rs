//! Connecting to NATS the way NATS users expect: one URL or a comma-separated seed list of
//! a cluster, credentials in the URL (`nats://user:password@host:port`) or given apart
//! (user and password, a token, an NKey seed file, a `.creds` file), TLS with a CA and a
//! client certificate. Secrets never reach a log line: [`redact`] every URL you print.

use std::path::PathBuf;

use async_nats::ServerAddr;

/// How to authenticate and secure the connection; all optional.
#[derive(Clone, Default)]
pub struct NatsOptions {
    pub user: Option<String>,
    pub password: Option<String>,
    pub token: Option<String>,
    /// A file holding an NKey seed (`SU...`).
    pub nkey_seed_file: Option<PathBuf>,
    /// A `.creds` file (JWT and NKey seed), as `nsc` writes it.
    pub credentials_file: Option<PathBuf>,
    /// CA certificate(s) to trust the server with (PEM).
    pub tls_ca: Option<PathBuf>,
    /// Client certificate and key (PEM) for servers that verify clients.
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// Insist on TLS even for `nats://` URLs.
    pub require_tls: bool,
}

impl std::fmt::Debug for NatsOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let set = |present: bool| if present { "<set>" } else { "<none>" };
        f.debug_struct("NatsOptions")
            .field("user", &self.user)
            .field("password", &set(self.password.is_some()))
            .field("token", &set(self.token.is_some()))
            .field("nkey_seed_file", &self.nkey_seed_file)
            .field("credentials_file", &self.credentials_file)
            .field("tls_ca", &self.tls_ca)
            .field("tls_cert", &self.tls_cert)
            .field("tls_key", &self.tls_key)
            .field("require_tls", &self.require_tls)
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("invalid NATS URL {url}: {message}")]
    InvalidUrl { url: String, message: String },
    #[error("cannot read {what} {path}: {source}")]
    File {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("a TLS client certificate needs both --nats-tls-cert and --nats-tls-key")]
    HalfClientCertificate,
    #[error(transparent)]
    Nats(#[from] async_nats::ConnectError),
}

/// The URL with any password or token in it replaced by `***`, for logs and errors.
pub fn redact(urls: &str) -> String {
    urls.split(',')
        .map(|url| {
            let url = url.trim();
            match (url.find("://"), url.rfind('@')) {
                (Some(scheme), Some(at)) if at > scheme => {
                    let userinfo = &url[scheme + 3..at];
                    let shown = match userinfo.split_once(':') {
                        Some((user, _)) => format!("{user}:***"),
                        None => "***".to_owned(),
                    };
                    format!("{}{shown}{}", &url[..scheme + 3], &url[at..])
                }
                _ => url.to_owned(),
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// The seed list: every comma-separated URL, parsed.
pub fn server_addrs(urls: &str) -> Result<Vec<ServerAddr>, ConnectError> {
    let addrs: Vec<ServerAddr> = urls
        .split(',')
        .map(str::trim)
        .filter(|url| !url.is_empty())
        .map(|url| {
            url.parse::<ServerAddr>()
                .map_err(|error| ConnectError::InvalidUrl {
                    url: redact(url),
                    message: error.to_string(),
                })
        })
        .collect::<Result<_, _>>()?;
    if addrs.is_empty() {
        return Err(ConnectError::InvalidUrl {
            url: String::new(),
            message: "no server given".into(),
        });
    }
    Ok(addrs)
}

fn read(what: &'static str, path: &PathBuf) -> Result<String, ConnectError> {
    std::fs::read_to_string(path).map_err(|source| ConnectError::File {
        what,
        path: path.clone(),
        source,
    })
}

/// Connect options from `options` and the credentials in the URLs. Explicit options win
/// over credentials in a URL (user and password, or a token given as the URL's user).
pub async fn connect_options(
    addrs: &[ServerAddr],
    options: &NatsOptions,
) -> Result<async_nats::ConnectOptions, ConnectError> {
    let mut connect = async_nats::ConnectOptions::new();
    let from_url = addrs.iter().find(|addr| addr.has_user_pass());
    let user = options
        .user
        .clone()
        .or_else(|| from_url.and_then(|addr| addr.username().map(str::to_owned)));
    let password = options
        .password
        .clone()
        .or_else(|| from_url.and_then(|addr| addr.password().map(str::to_owned)));
    match (user, password, &options.token) {
        (_, _, Some(token)) => connect = connect.token(token.clone()),
        (Some(user), Some(password), None) => connect = connect.user_and_password(user, password),
        // `nats://TOKEN@host`: a user without a password is a token, as NATS clients read it.
        (Some(token), None, None) => connect = connect.token(token),
        (None, _, None) => {}
    }
    if let Some(path) = &options.nkey_seed_file {
        connect = connect.nkey(read("NKey seed file", path)?.trim().to_owned());
    }
    if let Some(path) = &options.credentials_file {
        connect = connect
            .credentials_file(path)
            .await
            .map_err(|source| ConnectError::File {
                what: "credentials file",
                path: path.clone(),
                source,
            })?;
    }
    if let Some(ca) = &options.tls_ca {
        read("TLS CA file", ca)?;
        connect = connect.add_root_certificates(ca.clone()).require_tls(true);
    }
    match (&options.tls_cert, &options.tls_key) {
        (Some(cert), Some(key)) => {
            read("TLS client certificate", cert)?;
            read("TLS client key", key)?;
            connect = connect
                .add_client_certificate(cert.clone(), key.clone())
                .require_tls(true);
        }
        (None, None) => {}
        _ => return Err(ConnectError::HalfClientCertificate),
    }
    if options.require_tls {
        connect = connect.require_tls(true);
    }
    Ok(connect)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_hides_passwords_and_tokens_only() {
        let cases = [
            ("nats://127.0.0.1:4222", "nats://127.0.0.1:4222"),
            (
                "nats://lifeline:dev-lifeline@127.0.0.1:4222",
                "nats://lifeline:***@127.0.0.1:4222",
            ),
            ("nats://s3cr3t@host:4222", "nats://***@host:4222"),
            (
                "nats://a:x@n1:4222, nats://n2:4222",
                "nats://a:***@n1:4222,nats://n2:4222",
            ),
        ];
        for (url, shown) in cases {
            assert_eq!(redact(url), shown, "{url}");
        }
    }

    #[test]
    fn a_seed_list_is_every_url() {
        let addrs = server_addrs("nats://n1:4222,nats://n2:4223, tls://n3:4224").expect("parse");
        assert_eq!(addrs.len(), 3);
        assert!(server_addrs(" , ").is_err());
        let error = server_addrs("nats://u:secret@[bad").expect_err("invalid");
        assert!(!error.to_string().contains("secret"), "{error}");
    }
}
