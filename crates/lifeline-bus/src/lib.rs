//! The NATS JetStream edge: idempotent stream provisioning, a publisher with message-id
//! de-duplication, optimistic concurrency and retries, a batched ordered reader that
//! resumes from a stored position, dead-letter parking and re-driving.

mod connect;
mod dead_letter;
mod head;
mod lookup;
pub mod metrics;
mod provision;
mod publisher;
mod reader;
mod redrive;

pub use connect::{ConnectError, NatsOptions, connect_options, redact, server_addrs};
pub use dead_letter::{DeadLetter, DeadLetterRecord, read_dead_letters};
pub use head::HeadWatch;
pub use lookup::{
    LookupError, find_event_on_subject, last_subject_matching, last_subject_sequence,
};
pub use provision::{IDEMPOTENCY_BUCKET, ProvisionError, StreamSettings, provision, replicas_for};
pub use publisher::{Expected, PublishError, Published, Publisher};
pub use reader::{EventReader, ReadError, StreamMessage, stream_head};
pub use redrive::{REDRIVE_FOR, REDRIVE_OF, Redrive, RedriveError, redrive, redriven_for_another};

pub use async_nats;

/// The JetStream context every component publishes and reads through. A publish holds
/// one of the context's 5,000 in-flight permits until its acknowledgement arrives or, by
/// async-nats' default, 30 s pass; when a stream leader dies, every publish in flight
/// loses its acknowledgement, and pipelined windows of follow-ups could hold all 5,000
/// for those 30 s, stalling every publisher of the process (a consumer stood still past
/// its catch-up deadline in the cluster test). Here a lost acknowledgement releases its
/// permit after [`REQUEST_TIMEOUT`] (a healthy one arrives in milliseconds).
pub fn jetstream_context(client: async_nats::Client) -> async_nats::jetstream::Context {
    async_nats::jetstream::context::ContextBuilder::new()
        .ack_timeout(REQUEST_TIMEOUT)
        .build(client)
}

/// Connects to NATS (one URL or a comma-separated seed list) with a name that shows in
/// the server's connection list, authenticating as `options` and the URLs say.
///
/// While no server answers (not started yet, restarting), it keeps trying every second
/// or so and says so in the log; a refusal (wrong credentials, bad TLS) is an error at
/// once. Once connected it reconnects for ever, quickly: a jittered delay capped at one
/// second, so consumers resume within about a second of the server's return.
pub async fn connect(
    urls: &str,
    name: &str,
    options: &NatsOptions,
) -> Result<async_nats::Client, ConnectError> {
    use async_nats::ConnectErrorKind;
    let addrs = server_addrs(urls)?;
    let mut attempt: u32 = 0;
    loop {
        let connecting = connect_options(&addrs, options)
            .await?
            .name(name)
            .max_reconnects(None)
            // A JetStream request (a PubAck, a look-up) to a node that just died would
            // otherwise hang 10 s before the retry that reaches the new leader.
            .request_timeout(Some(REQUEST_TIMEOUT))
            .reconnect_delay_callback(reconnect_delay)
            .connect(addrs.clone())
            .await;
        match connecting {
            Ok(client) => return Ok(client),
            Err(error)
                if matches!(
                    error.kind(),
                    ConnectErrorKind::Io | ConnectErrorKind::TimedOut | ConnectErrorKind::Dns
                ) =>
            {
                attempt += 1;
                // A server that accepts the TCP connection and then drops it (TLS without
                // the client certificate it requires, say) is up and refusing us: after a
                // few tries, an error, not a wait for ever.
                if attempt >= 3 && any_reachable(&addrs).await {
                    return Err(error.into());
                }
                tracing::warn!(servers = %redact(urls), attempt, %error, "NATS not reachable yet, retrying");
                tokio::time::sleep(reconnect_delay(attempt as usize)).await;
            }
            Err(error) => return Err(error.into()),
        }
    }
}

/// Whether any of the servers accepts a TCP connection (within a second).
async fn any_reachable(addrs: &[async_nats::ServerAddr]) -> bool {
    for addr in addrs {
        let probe = tokio::net::TcpStream::connect((addr.host(), addr.port()));
        if matches!(
            tokio::time::timeout(std::time::Duration::from_secs(1), probe).await,
            Ok(Ok(_))
        ) {
            return true;
        }
    }
    false
}

/// How long a request to NATS (a JetStream PubAck or API call) may take before it is
/// retried or reported: milliseconds normally, so 3 s means a server or leader is gone.
pub const REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

/// 100 ms doubling per attempt, capped at one second, plus up to 25% jitter.
fn reconnect_delay(attempts: usize) -> std::time::Duration {
    let base_ms = 100u64.saturating_mul(1 << attempts.min(4)).min(1_000);
    let jitter_ms = u64::from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |now| now.subsec_nanos()),
    ) % (base_ms / 4 + 1);
    std::time::Duration::from_millis(base_ms + jitter_ms)
}
