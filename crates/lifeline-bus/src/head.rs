//! A stream's head for many callers at once: one JetStream request out at a time, and each
//! caller answered by a request that started after it asked, so what it gets is at least
//! the head at the moment it asked. Under load, hundreds of commands a second share a few
//! stream-info requests instead of sending one each.

use std::sync::atomic::{AtomicU64, Ordering};

use async_nats::jetstream;
use tokio::sync::{Mutex, watch};

use crate::reader::{ReadError, stream_head};

/// The answer of request number `.0`: the head, or why it could not be read.
type Answer = Option<(u64, Result<u64, String>)>;

pub struct HeadWatch {
    jetstream: jetstream::Context,
    stream: String,
    /// Requests started so far; request `n` is numbered `n`.
    started: AtomicU64,
    /// Held by the caller whose request is out.
    asking: Mutex<()>,
    answer: watch::Sender<Answer>,
}

impl std::fmt::Debug for HeadWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HeadWatch")
            .field("stream", &self.stream)
            .finish()
    }
}

impl HeadWatch {
    pub fn new(jetstream: jetstream::Context, stream: &str) -> HeadWatch {
        HeadWatch {
            jetstream,
            stream: stream.to_owned(),
            started: AtomicU64::new(0),
            asking: Mutex::new(()),
            answer: watch::channel(None).0,
        }
    }

    /// How many requests it has sent.
    pub fn requests(&self) -> u64 {
        self.started.load(Ordering::SeqCst)
    }

    /// The stream's last sequence, read by a request that started after this call did.
    pub async fn head(&self) -> Result<u64, ReadError> {
        // A request started from here on is numbered at least this.
        let fresh = self.started.load(Ordering::SeqCst) + 1;
        let mut answers = self.answer.subscribe();
        loop {
            if let Some((number, answer)) = &*answers.borrow_and_update()
                && *number >= fresh
            {
                return answer.clone().map_err(|message| ReadError::Unavailable {
                    stream: self.stream.clone(),
                    message,
                });
            }
            if let Ok(asking) = self.asking.try_lock() {
                let number = self.started.fetch_add(1, Ordering::SeqCst) + 1;
                let answer = stream_head(&self.jetstream, &self.stream)
                    .await
                    .map_err(|error| error.to_string());
                // Free before answering: a waiter the answer is too old for must find the
                // lock free when it wakes, or it would wait for an answer nobody asks for.
                drop(asking);
                self.answer.send_replace(Some((number, answer.clone())));
                return answer.map_err(|message| ReadError::Unavailable {
                    stream: self.stream.clone(),
                    message,
                });
            }
            // Another caller's request is out: wait for its answer, then look again (it
            // may have started before this call, and then the next one is needed).
            if answers.changed().await.is_err() {
                return Err(ReadError::Unavailable {
                    stream: self.stream.clone(),
                    message: "head watch closed".to_owned(),
                });
            }
        }
    }
}
