//! `RedisCounter`: click limits shared by every engine of a cluster, in the
//! Redis their update bus runs on, one key per link
//! (`ricochet:clicks-used:{link id}`). A use is taken by a Lua script, atomic
//! on the server: read the count, refuse at the limit, else `INCR`. So the
//! count is the number of redirects granted, and raising a limit grants
//! exactly the difference. The counter's thread owns one connection and
//! sends each batch of waiting takes as one pipeline (one round trip);
//! workers never touch the socket. Any failure refuses the batch.

use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TrySendError};
use ricochet_model::LinkId;
use tokio::sync::oneshot;

use super::{CountError, LimitCounter, REDIS_TIMEOUT, Taken, Taking};

/// Prefix of the per-link keys.
pub const KEY_PREFIX: &str = "ricochet:clicks-used:";
/// Takes one use of `KEYS[1]` under the limit `ARGV[1]`: the new count, or
/// minus the count when the limit is reached (0 for a limit of 0).
const TAKE_SCRIPT: &str = "local used = tonumber(redis.call('GET', KEYS[1]) or '0')\n\
if used >= tonumber(ARGV[1]) then return -used end\n\
return redis.call('INCR', KEYS[1])\n";
/// Takes waiting for the counter's thread before new ones are refused.
const QUEUE: usize = 4096;
/// Most takes sent in one pipeline.
const MAX_BATCH: usize = 512;
/// Longest wait for a new connection.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);
/// Longest pause between connection attempts while Redis is down; takes
/// meanwhile are refused at once.
const MAX_BACKOFF: Duration = Duration::from_secs(1);

struct Job {
    link: LinkId,
    limit: u64,
    reply: oneshot::Sender<Result<Taken, CountError>>,
}

enum Message {
    Take(Job),
    Stop,
}

/// Click limits in Redis, shared by engines.
pub struct RedisCounter {
    client: redis::Client,
    jobs: Sender<Message>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for RedisCounter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisCounter").finish_non_exhaustive()
    }
}

impl RedisCounter {
    /// A counter on the Redis server at `url` (`redis://host:port/`).
    /// Connections are made lazily, so a Redis that is down is not an error
    /// here (takes are refused until it is back).
    pub fn start(url: &str) -> Result<Arc<Self>, redis::RedisError> {
        let client = redis::Client::open(url)?;
        let (jobs, queue) = crossbeam_channel::bounded(QUEUE);
        let mut connection = Connection {
            client: client.clone(),
            open: None,
            retry_at: Instant::now(),
            backoff: Duration::from_millis(50),
        };
        let thread = std::thread::Builder::new()
            .name("ricochet-limits".into())
            .spawn(move || connection.run(queue))
            .map_err(redis::RedisError::from)?;
        Ok(Arc::new(Self {
            client,
            jobs,
            thread: Mutex::new(Some(thread)),
        }))
    }
}

/// The Redis key of `link`'s count.
pub fn key(link: LinkId) -> String {
    format!("{KEY_PREFIX}{link}")
}

impl LimitCounter for RedisCounter {
    fn take(&self, link: LinkId, limit: u64) -> Taking {
        let (reply, outcome) = oneshot::channel();
        match self
            .jobs
            .try_send(Message::Take(Job { link, limit, reply }))
        {
            Ok(()) => Taking::Pending {
                reply: outcome,
                within: REDIS_TIMEOUT,
            },
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                Taking::Ready(Err(CountError::Busy))
            }
        }
    }

    fn used(&self, link: LinkId) -> Result<u64, CountError> {
        let mut connection = self
            .client
            .get_connection_with_timeout(CONNECT_TIMEOUT)
            .map_err(|_| CountError::Unavailable)?;
        let used: Option<u64> = redis::cmd("GET")
            .arg(key(link))
            .query(&mut connection)
            .map_err(|_| CountError::Unavailable)?;
        Ok(used.unwrap_or(0))
    }

    fn stop(&self) {
        let thread = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(thread) = thread {
            let _ = self.jobs.send(Message::Stop);
            let _ = thread.join();
        }
    }
}

impl Drop for RedisCounter {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The counter thread's connection, with the script's digest once loaded.
struct Connection {
    client: redis::Client,
    open: Option<(redis::Connection, String)>,
    retry_at: Instant,
    backoff: Duration,
}

impl Connection {
    fn run(&mut self, queue: Receiver<Message>) {
        let mut batch = Vec::new();
        while let Ok(first) = queue.recv() {
            let mut stop = false;
            for message in std::iter::once(first).chain(queue.try_iter().take(MAX_BATCH - 1)) {
                match message {
                    Message::Take(job) => batch.push(job),
                    Message::Stop => {
                        stop = true;
                        break;
                    }
                }
            }
            // A take whose visitor already got 503 (it waited too long) is
            // not sent: it would use up a redirect nobody gets.
            batch.retain(|job: &Job| !job.reply.is_closed());
            if !batch.is_empty() {
                match self.take_all(&batch) {
                    Ok(counts) => {
                        for (job, count) in batch.drain(..).zip(counts) {
                            let taken = if count > 0 {
                                Taken::Granted
                            } else {
                                Taken::Reached
                            };
                            let _ = job.reply.send(Ok(taken));
                        }
                    }
                    Err(error) => {
                        for job in batch.drain(..) {
                            let _ = job.reply.send(Err(error));
                        }
                    }
                }
            }
            if stop {
                return;
            }
        }
    }

    /// Runs the script for every job in one pipeline; the counts in order.
    fn take_all(&mut self, batch: &[Job]) -> Result<Vec<i64>, CountError> {
        let (connection, digest) = self.connection()?;
        let mut pipeline = redis::pipe();
        for job in batch {
            pipeline
                .cmd("EVALSHA")
                .arg(&*digest)
                .arg(1)
                .arg(key(job.link))
                .arg(job.limit);
        }
        match pipeline.query::<Vec<i64>>(connection) {
            Ok(counts) if counts.len() == batch.len() => Ok(counts),
            Ok(_) => {
                self.open = None;
                Err(CountError::Unavailable)
            }
            Err(error) => {
                // Lost, timed out, or the script cache was flushed (NOSCRIPT):
                // a new connection loads the script again.
                tracing::warn!(%error, takes = batch.len(), "click-limit counts refused");
                self.open = None;
                Err(if error.is_timeout() {
                    CountError::TimedOut
                } else {
                    CountError::Unavailable
                })
            }
        }
    }

    /// The open connection, or a new one (the script loaded) unless the
    /// last attempt failed less than the backoff ago.
    fn connection(&mut self) -> Result<&mut (redis::Connection, String), CountError> {
        if self.open.is_none() {
            if Instant::now() < self.retry_at {
                return Err(CountError::Unavailable);
            }
            match self.connect() {
                Ok(open) => {
                    self.backoff = Duration::from_millis(50);
                    self.open = Some(open);
                }
                Err(error) => {
                    tracing::warn!(%error, retry_in_ms = self.backoff.as_millis() as u64, "cannot reach the click-limit store");
                    self.retry_at = Instant::now() + self.backoff;
                    self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
                    return Err(CountError::Unavailable);
                }
            }
        }
        Ok(self.open.as_mut().expect("connected above"))
    }

    fn connect(&self) -> redis::RedisResult<(redis::Connection, String)> {
        let mut connection = self.client.get_connection_with_timeout(CONNECT_TIMEOUT)?;
        connection.set_read_timeout(Some(REDIS_TIMEOUT))?;
        connection.set_write_timeout(Some(REDIS_TIMEOUT))?;
        let digest: String = redis::cmd("SCRIPT")
            .arg("LOAD")
            .arg(TAKE_SCRIPT)
            .query(&mut connection)?;
        Ok((connection, digest))
    }
}
