//! The projection driver every consumer shares.
//!
//! One loop: read a batch from the event stream after the stored position; apply each event
//! with the consumer's pure handler, all-or-nothing per event; publish the follow-up events
//! (deterministic ids) and park the rejected ones on the dead-letter stream; then commit the
//! state changes and the batch's last sequence in one RocksDB write. A crash anywhere before
//! the commit re-runs the batch: the publishes come back as JetStream duplicates and the
//! state was never written. A crash after the commit resumes after it.

pub mod metrics;
mod state;

pub use state::StoreState;
use state::StoreTx;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use lifeline_bus::async_nats::jetstream;
use lifeline_bus::{
    DeadLetter, EventReader, PublishError, Publisher, ReadError, StreamMessage, stream_head,
};
use lifeline_domain::{Applied, Handler, Reason, Rejection, apply_atomically, replay_atomically};
use lifeline_events::{EVENT_STREAM, Envelope, Partitioning, subject_for};
use lifeline_store::{ProjectionStore, StoreError, Writes};
use tokio::sync::watch;

#[derive(Debug, thiserror::Error)]
pub enum ProjectionError {
    /// The store failed: the batch was not committed; the consumer stops and its
    /// supervisor decides.
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Read(#[from] ReadError),
    #[error(transparent)]
    Publish(#[from] PublishError),
    #[error("blocking task failed: {0}")]
    Join(String),
}

/// Whether the driver publishes what the handler emits (live) or only rebuilds state
/// (replay: the follow-ups and dead letters of the past are already in their streams).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Live,
    Replay,
}

#[derive(Debug, Clone)]
pub struct DriverConfig {
    pub max_batch: usize,
    /// Pause before re-opening the stream after NATS trouble.
    pub retry_pause: Duration,
    /// A batch whose first message was stored longer ago than this has its follow-ups
    /// and dead letters looked up before they are published (see
    /// [`Publisher::publish_follow_ups_looked_up`] and `DeadLetter::park_once`): half the
    /// streams' 10-minute duplicate window, so JetStream's de-duplication covers
    /// everything younger.
    pub look_up_follow_ups_after: Duration,
}

impl Default for DriverConfig {
    fn default() -> Self {
        DriverConfig {
            max_batch: 512,
            retry_pause: Duration::from_millis(250),
            look_up_follow_ups_after: Duration::from_secs(5 * 60),
        }
    }
}

/// What a running consumer shows to health checks, the API and the demo: its committed
/// stream position (readable at once, and watchable without polling) and whether it is
/// reading.
#[derive(Debug)]
pub struct ProjectionStatus {
    pub position: AtomicU64,
    pub ready: AtomicBool,
    committed: watch::Sender<u64>,
}

impl Default for ProjectionStatus {
    fn default() -> Self {
        ProjectionStatus {
            position: AtomicU64::new(0),
            ready: AtomicBool::new(false),
            committed: watch::channel(0).0,
        }
    }
}

impl ProjectionStatus {
    /// Records a committed position and wakes whoever waits for it.
    fn advance(&self, position: u64) {
        self.position.store(position, Ordering::Relaxed);
        self.committed.send_replace(position);
    }

    /// Waits until the consumer has committed `position` (true), or `timeout` passes
    /// (false). No polling, no disk: it watches the position the driver publishes.
    pub async fn reached(&self, position: u64, timeout: Duration) -> bool {
        let mut committed = self.committed.subscribe();
        tokio::time::timeout(timeout, committed.wait_for(|at| *at >= position))
            .await
            .is_ok_and(|waited| waited.is_ok())
    }
}

/// Stops the driver between batches.
pub type Shutdown = watch::Receiver<bool>;

/// A consumer: one handler, its store and its connections.
pub struct Projection {
    handler: Arc<dyn Handler>,
    store: Arc<ProjectionStore>,
    jetstream: jetstream::Context,
    publisher: Publisher,
    dead_letter: DeadLetter,
    config: DriverConfig,
    /// The communities whose events this consumer applies; the others' it steps over.
    partitioning: Arc<Partitioning>,
    status: Arc<ProjectionStatus>,
    /// Series are initialised once per process run, not at every reconnect (a consumer
    /// that keeps failing must not look freshly committed).
    metrics_initialised: AtomicBool,
}

impl std::fmt::Debug for Projection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Projection")
            .field("name", &self.handler.name())
            .finish()
    }
}

/// How long a reader may stay silent before the driver checks whether events wait for it.
const SILENT_READER: Duration = Duration::from_secs(10);

/// What the blocking half of [`Projection::ingest`] did with a batch.
enum Ingested {
    /// Everything in it was at or below the stored position: that position stands.
    NothingNew {
        position: u64,
    },
    Applied(AppliedBatch),
}

/// The outcome of applying one batch, before anything is published or committed.
struct AppliedBatch {
    writes: Writes,
    emitted: Vec<Envelope>,
    rejected: Vec<(usize, &'static str, String)>,
    applied_types: Vec<&'static str>,
    ignored: u64,
}

/// Decodes a message and checks it arrived on the subject its content belongs on (a
/// partner may not publish another partner's pick on its own subject).
fn decode(message: &StreamMessage) -> Result<Envelope, Rejection> {
    let envelope = Envelope::decode(&message.payload)
        .map_err(|error| Rejection::new(Reason::from(&error), error.to_string()))?;
    if envelope.subject != message.subject {
        return Err(Rejection::new(
            Reason::SubjectMismatch,
            format!(
                "the envelope says subject {}, it arrived on {}",
                envelope.subject, message.subject
            ),
        ));
    }
    let expected = subject_for(&envelope.event);
    if expected != message.subject {
        return Err(Rejection::new(
            Reason::SubjectMismatch,
            format!(
                "{} belongs on {expected}, arrived on {}",
                envelope.event_type(),
                message.subject
            ),
        ));
    }
    Ok(envelope)
}

/// The stored position, the messages of a delivered batch not applied yet (in stream
/// order), and how many were skipped (duplicates, or at or below the stored position).
fn unapplied(
    store: &ProjectionStore,
    mut messages: Vec<StreamMessage>,
) -> Result<(u64, Vec<StreamMessage>, usize), StoreError> {
    let position = store.position()?;
    let delivered = messages.len();
    messages.sort_by_key(|message| message.sequence);
    messages.dedup_by_key(|message| message.sequence);
    messages.retain(|message| message.sequence > position);
    let skipped = delivered - messages.len();
    Ok((position, messages, skipped))
}

fn apply_batch(
    handler: &dyn Handler,
    store: &ProjectionStore,
    partitioning: &Partitioning,
    mode: Mode,
    messages: &[StreamMessage],
) -> Result<AppliedBatch, StoreError> {
    let mut tx = StoreTx {
        batch: store.batch(),
        error: std::cell::RefCell::new(None),
    };
    let mut outcome = AppliedBatch {
        writes: Writes::default(),
        emitted: Vec::new(),
        rejected: Vec::new(),
        applied_types: Vec::new(),
        ignored: 0,
    };
    for (index, message) in messages.iter().enumerate() {
        // A re-driven dead letter is for the consumer that parked it; the others applied
        // the original already.
        if lifeline_bus::redriven_for_another(message.headers.as_ref(), handler.name()) {
            outcome.ignored += 1;
            continue;
        }
        // Another partition's community: stepped over before it is decoded (its position
        // still counts as applied when the batch commits; a clock reads its time only).
        if !partitioning.serves_subject(&message.subject) {
            if handler.keeps_clock()
                && let Some(time) = Envelope::time_of(&message.payload)
            {
                handler.stepped_over(&mut tx, time);
            }
            outcome.ignored += 1;
            continue;
        }
        let result = decode(message).and_then(|envelope| {
            // A debug span: at the default level it costs nothing per event (an info span
            // had every field formatted for every event, 7% of a catch-up). A rejection
            // carries the same fields itself.
            let _span = tracing::debug_span!(
                "apply",
                consumer = handler.name(),
                sequence = message.sequence,
                event_id = %envelope.id,
                correlation_id = %envelope.correlation_id,
                r#type = envelope.event_type(),
            )
            .entered();
            let result = match mode {
                Mode::Live => apply_atomically(handler, &mut tx, &envelope, &mut outcome.emitted),
                Mode::Replay => replay_atomically(handler, &mut tx, &envelope),
            };
            match &result {
                Ok(applied) => tracing::debug!(?applied, "event applied"),
                Err(rejection) => tracing::warn!(
                    consumer = handler.name(),
                    sequence = message.sequence,
                    event_id = %envelope.id,
                    correlation_id = %envelope.correlation_id,
                    r#type = envelope.event_type(),
                    reason = rejection.reason.as_str(),
                    detail = %rejection.detail,
                    "event rejected"
                ),
            }
            result.map(|applied| (applied, envelope.event_type()))
        });
        match result {
            Ok((Applied::Changed, event_type)) => outcome.applied_types.push(event_type),
            Ok((Applied::Ignored, _)) => outcome.ignored += 1,
            Err(rejection) => {
                outcome
                    .rejected
                    .push((index, rejection.reason.as_str(), rejection.detail))
            }
        }
        if let Some(error) = tx.error.borrow_mut().take() {
            return Err(error);
        }
    }
    outcome.writes = tx.batch.into_writes();
    Ok(outcome)
}

impl Projection {
    pub fn new(
        handler: Arc<dyn Handler>,
        store: Arc<ProjectionStore>,
        jetstream: jetstream::Context,
        config: DriverConfig,
    ) -> Self {
        let name = handler.name();
        Projection {
            publisher: Publisher::new(jetstream.clone(), name),
            dead_letter: DeadLetter::new(jetstream.clone(), name),
            handler,
            store,
            jetstream,
            config,
            partitioning: Arc::new(Partitioning::whole()),
            status: Arc::new(ProjectionStatus::default()),
            metrics_initialised: AtomicBool::new(false),
        }
    }

    /// Applies only the events of the communities `partitioning` serves.
    pub fn with_partitioning(self, partitioning: Partitioning) -> Self {
        Projection {
            partitioning: Arc::new(partitioning),
            ..self
        }
    }

    pub fn status(&self) -> Arc<ProjectionStatus> {
        Arc::clone(&self.status)
    }

    pub fn store(&self) -> Arc<ProjectionStore> {
        Arc::clone(&self.store)
    }

    /// Runs live until `shutdown` turns true. A batch in flight is finished and committed
    /// first. NATS trouble and a store that cannot write (a full disk) are retried; a
    /// corrupt store ends the run with an error.
    pub async fn run(self, mut shutdown: Shutdown) -> Result<(), ProjectionError> {
        let name = self.handler.name();
        loop {
            if *shutdown.borrow() {
                return Ok(());
            }
            match self.run_until_error(Mode::Live, None, &mut shutdown).await {
                Ok(()) => return Ok(()),
                Err(ProjectionError::Read(error)) => {
                    tracing::warn!(consumer = name, %error, "event stream unavailable, retrying");
                }
                Err(ProjectionError::Publish(error)) => {
                    tracing::warn!(consumer = name, %error, "publishing follow-ups failed, retrying the batch");
                }
                // A full disk: the batch was not written (state and position together);
                // readiness is off until the store writes again, which it tries once the
                // disk has room.
                Err(ProjectionError::Store(error)) if error.is_transient() => {
                    tracing::error!(consumer = name, %error, "store cannot write, retrying the batch");
                }
                Err(error) => return Err(error),
            }
            self.status.ready.store(false, Ordering::Relaxed);
            tokio::select! {
                _ = shutdown.changed() => return Ok(()),
                () = tokio::time::sleep(self.config.retry_pause) => {}
            }
        }
    }

    /// Rebuilds the store from the stream up to its current head, publishing nothing.
    pub async fn replay(self) -> Result<u64, ProjectionError> {
        self.replay_until(None).await
    }

    /// Rebuilds the store from the stream up to `until` (at most the current head),
    /// publishing nothing; returns the sequence it rebuilt to.
    pub async fn replay_until(self, until: Option<u64>) -> Result<u64, ProjectionError> {
        let head = stream_head(&self.jetstream, EVENT_STREAM).await?;
        let head = until.map_or(head, |until| until.min(head));
        let (_keep, mut shutdown) = watch::channel(false);
        let store = Arc::clone(&self.store);
        let position = tokio::task::spawn_blocking(move || store.position())
            .await
            .map_err(|error| ProjectionError::Join(error.to_string()))??;
        if head > position {
            self.run_until_error(Mode::Replay, Some(head), &mut shutdown)
                .await?;
        }
        Ok(head)
    }

    /// Exports this consumer's series at zero before anything happens, so dashboards and
    /// alerts see them from the first scrape.
    fn initialise_metrics(&self) {
        let name = self.handler.name();
        metrics::IGNORED.with_label_values(&[name]);
        metrics::REDELIVERED.with_label_values(&[name]);
        metrics::EMITTED.with_label_values(&[name]);
        metrics::LAG_EVENTS.with_label_values(&[name]);
        metrics::LAG_SECONDS.with_label_values(&[name]);
        // "Nothing committed since start" reads as a commit at start.
        metrics::LAST_COMMIT
            .with_label_values(&[name])
            .set(time::OffsetDateTime::now_utc().unix_timestamp() as f64);
        metrics::BATCH_SIZE.with_label_values(&[name]);
        metrics::BATCH_SECONDS.with_label_values(&[name]);
        for reason in [
            Reason::Undecodable,
            Reason::UnknownType,
            Reason::InvalidPayload,
            Reason::SubjectMismatch,
        ] {
            let reason = reason.as_str();
            metrics::REJECTED.with_label_values(&[name, reason]);
            lifeline_bus::metrics::DEAD_LETTERS.with_label_values(&[name, reason]);
        }
        lifeline_bus::metrics::PUBLISHED.with_label_values(&[name]);
        lifeline_bus::metrics::DUPLICATES.with_label_values(&[name]);
        lifeline_bus::metrics::RETRIES.with_label_values(&[name]);
        lifeline_bus::metrics::FAILURES.with_label_values(&[name, "unavailable"]);
    }

    async fn run_until_error(
        &self,
        mode: Mode,
        until: Option<u64>,
        shutdown: &mut Shutdown,
    ) -> Result<(), ProjectionError> {
        let name = self.handler.name();
        if mode == Mode::Live && !self.metrics_initialised.swap(true, Ordering::Relaxed) {
            self.initialise_metrics();
        }
        let store = Arc::clone(&self.store);
        let mut position = tokio::task::spawn_blocking(move || store.position())
            .await
            .map_err(|error| ProjectionError::Join(error.to_string()))??;
        self.status.advance(position);
        metrics::POSITION
            .with_label_values(&[name])
            .set(i64::try_from(position).unwrap_or(i64::MAX));
        let mut reader = EventReader::open(
            &self.jetstream,
            EVENT_STREAM,
            position,
            self.config.max_batch,
        )
        .await?;
        if mode == Mode::Live
            && let Ok(head) = stream_head(&self.jetstream, EVENT_STREAM).await
        {
            let lag = head.saturating_sub(position);
            metrics::LAG_EVENTS
                .with_label_values(&[name])
                .set(i64::try_from(lag).unwrap_or(i64::MAX));
        }
        self.status.ready.store(true, Ordering::Relaxed);
        tracing::info!(consumer = name, position, ?mode, "consumer reading");
        // The ordered consumer notices a restarted server only after missed heartbeats
        // (about 15 s), and after a reconnect to another node it could stay silent for
        // good. Watching the connection instead, the reader is re-opened as soon as the
        // client has connected again, and the consumer counts as not reading while it is
        // not. The client's count of connections tells a reconnect apart even when it
        // happened while a batch was being applied or published (sampling the state
        // would miss that, and a consumer once stood still there).
        let client = self.jetstream.client();
        let statistics = client.statistics();
        let connects_at_open = statistics.connects.load(Ordering::Relaxed);
        let mut watch_connection = tokio::time::interval(Duration::from_millis(200));
        // A reader silent this long is asked whether events wait beyond its position; if
        // so it is re-opened (seen once after a stream leader died: one consumer's ordered
        // reader stood still, connected, with thousands of events waiting).
        let mut heard_at = tokio::time::Instant::now();
        loop {
            if until.is_some_and(|until| position >= until) {
                return Ok(());
            }
            let batch = tokio::select! {
                _ = shutdown.changed() => return Ok(()),
                batch = reader.next_batch() => batch,
                _ = watch_connection.tick() => {
                    let now = client.connection_state()
                        == lifeline_bus::async_nats::connection::State::Connected;
                    self.status.ready.store(now, Ordering::Relaxed);
                    if now && statistics.connects.load(Ordering::Relaxed) != connects_at_open {
                        return Err(ReadError::Unavailable {
                            stream: EVENT_STREAM.into(),
                            message: "reconnected to NATS: re-opening the reader".into(),
                        }
                        .into());
                    }
                    if now && heard_at.elapsed() >= SILENT_READER {
                        heard_at = tokio::time::Instant::now();
                        if let Ok(head) = stream_head(&self.jetstream, EVENT_STREAM).await
                            && head > position
                        {
                            return Err(ReadError::Unavailable {
                                stream: EVENT_STREAM.into(),
                                message: format!(
                                    "no message for {SILENT_READER:?} with {} waiting: re-opening the reader",
                                    head - position
                                ),
                            }
                            .into());
                        }
                    }
                    continue;
                }
            };
            let Some(batch) = batch else {
                return Err(ReadError::Unavailable {
                    stream: EVENT_STREAM.into(),
                    message: "consumer ended".into(),
                }
                .into());
            };
            let mut messages = batch?;
            if let Some(until) = until {
                messages.retain(|message| message.sequence <= until);
            }
            position = self.ingest(mode, messages).await?;
            // Silence counts from the end of the batch's work, not from its arrival.
            heard_at = tokio::time::Instant::now();
        }
    }

    /// Applies a batch as it was delivered: possibly redelivered, duplicated or out of
    /// order within the batch. Messages are sorted by stream sequence, duplicates and
    /// everything at or below the stored position are skipped (already applied), the rest
    /// is applied in order. Returns the new position. The ordered reader never delivers
    /// across batches out of stream order, so a sequence below the position is always one
    /// that was applied.
    ///
    /// One hand-off to the blocking pool reads the position and applies the batch; a live
    /// batch then publishes its follow-ups and dead letters and hands off once more to
    /// commit, while a replay (which publishes nothing) commits in the same hand-off.
    pub async fn ingest(
        &self,
        mode: Mode,
        messages: Vec<StreamMessage>,
    ) -> Result<u64, ProjectionError> {
        let name = self.handler.name();
        let started = Instant::now();
        let handler = Arc::clone(&self.handler);
        let store = Arc::clone(&self.store);
        let partitioning = Arc::clone(&self.partitioning);
        let (messages, skipped, ingested) = tokio::task::spawn_blocking(move || {
            let (position, messages, skipped) = match unapplied(&store, messages) {
                Ok(unapplied) => unapplied,
                Err(error) => return (Vec::new(), 0, Err(error)),
            };
            let Some(last) = messages.last().map(|message| message.sequence) else {
                return (messages, skipped, Ok(Ingested::NothingNew { position }));
            };
            let ingested = apply_batch(handler.as_ref(), &store, &partitioning, mode, &messages)
                .and_then(|mut applied| {
                    if mode == Mode::Replay {
                        store.commit(std::mem::take(&mut applied.writes), last)?;
                    }
                    Ok(Ingested::Applied(applied))
                });
            (messages, skipped, ingested)
        })
        .await
        .map_err(|error| ProjectionError::Join(error.to_string()))?;
        if skipped > 0 && mode == Mode::Live {
            metrics::REDELIVERED
                .with_label_values(&[name])
                .inc_by(skipped as u64);
        }
        let applied = match ingested? {
            Ingested::Applied(applied) => applied,
            Ingested::NothingNew { position } => return Ok(position),
        };
        self.finish(mode, started, messages, applied).await
    }

    /// Publishes (live), commits (live; a replay committed already) and records one
    /// applied batch; returns the new position.
    async fn finish(
        &self,
        mode: Mode,
        started: Instant,
        messages: Vec<StreamMessage>,
        applied: AppliedBatch,
    ) -> Result<u64, ProjectionError> {
        let name = self.handler.name();
        let last = messages.last().expect("batch is not empty");
        let new_position = last.sequence;

        if mode == Mode::Live {
            // Older than half the duplicate window: JetStream may no longer drop a second
            // copy of what this batch publishes, so each is looked for first.
            let age = time::OffsetDateTime::now_utc() - messages[0].published;
            let old = age > self.config.look_up_follow_ups_after;
            if !applied.emitted.is_empty() {
                if old {
                    self.publisher
                        .publish_follow_ups_looked_up(&applied.emitted, messages[0].sequence)
                        .await?;
                } else {
                    self.publisher.publish_follow_ups(&applied.emitted).await?;
                }
                metrics::EMITTED
                    .with_label_values(&[name])
                    .inc_by(applied.emitted.len() as u64);
            }
            for (index, reason, detail) in &applied.rejected {
                let message = &messages[*index];
                if old {
                    self.dead_letter.park_once(message, reason, detail).await?;
                } else {
                    self.dead_letter.park(message, reason, detail).await?;
                }
            }
            let store = Arc::clone(&self.store);
            let writes = applied.writes;
            tokio::task::spawn_blocking(move || store.commit(writes, new_position))
                .await
                .map_err(|error| ProjectionError::Join(error.to_string()))??;
        }

        self.status.advance(new_position);
        for event_type in &applied.applied_types {
            metrics::APPLIED
                .with_label_values(&[name, event_type])
                .inc();
        }
        metrics::IGNORED
            .with_label_values(&[name])
            .inc_by(applied.ignored);
        for (_, reason, _) in &applied.rejected {
            metrics::REJECTED.with_label_values(&[name, reason]).inc();
        }
        metrics::BATCH_SIZE
            .with_label_values(&[name])
            .observe(messages.len() as f64);
        metrics::BATCH_SECONDS
            .with_label_values(&[name])
            .observe(started.elapsed().as_secs_f64());
        metrics::POSITION
            .with_label_values(&[name])
            .set(i64::try_from(new_position).unwrap_or(i64::MAX));
        metrics::LAG_EVENTS
            .with_label_values(&[name])
            .set(i64::try_from(last.pending).unwrap_or(i64::MAX));
        let now = time::OffsetDateTime::now_utc();
        // Caught up means no lag, however old the last event was (a catch-up of history
        // must not leave the gauge at the age of the history).
        let lag_seconds = if last.pending == 0 {
            0.0
        } else {
            (now - last.published).as_seconds_f64().max(0.0)
        };
        metrics::LAG_SECONDS
            .with_label_values(&[name])
            .set(lag_seconds);
        metrics::LAST_COMMIT
            .with_label_values(&[name])
            .set(now.unix_timestamp() as f64);
        Ok(new_position)
    }
}
