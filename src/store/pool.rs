//! The connection pool and call policy that [`RedisStore`](crate::RedisStore)
//! and `RedisClusterStore` share: idle connections kept per process, a
//! blocking call's read timeout stretched by its block time, a dead pooled
//! connection replaced once, and redis errors mapped to [`StoreError`]. The
//! commands themselves are in `commands.rs`.

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use redis::{ConnectionLike, ErrorKind, RedisError, RedisResult, ServerErrorKind};

use super::StoreError;
use super::commands::Connector;

/// A connection the pool can hold.
pub(super) trait PooledConnection: ConnectionLike {
    /// Sets how long a read may wait (`None`: without limit).
    fn set_read_timeout(&self, timeout: Option<Duration>) -> RedisResult<()>;
}

impl PooledConnection for redis::Connection {
    fn set_read_timeout(&self, timeout: Option<Duration>) -> RedisResult<()> {
        redis::Connection::set_read_timeout(self, timeout)
    }
}

#[cfg(feature = "cluster")]
impl PooledConnection for redis::cluster::ClusterConnection {
    fn set_read_timeout(&self, timeout: Option<Duration>) -> RedisResult<()> {
        redis::cluster::ClusterConnection::set_read_timeout(self, timeout)
    }
}

/// How a command waits for its answer.
#[derive(Clone, Copy)]
pub(super) enum Wait {
    /// The response timeout.
    Response,
    /// A blocking command that may wait this long on the server (`None`:
    /// forever) before the response timeout starts.
    Blocking(Option<Duration>),
}

/// Idle connections of one process: after `fork()`, the child finds the
/// pool belongs to another pid and forgets the parent's sockets.
pub(super) struct Pool<C> {
    max_idle: usize,
    state: Mutex<(u32, Vec<Idle<C>>)>,
}

/// A pooled connection and the read timeout its socket has now, so that a
/// run of calls of one kind sets it once, not twice per call.
struct Idle<C> {
    connection: C,
    read_timeout: Option<Duration>,
}

impl<C: PooledConnection> Pool<C> {
    pub(super) fn new(max_idle: usize) -> Self {
        Self {
            max_idle,
            state: Mutex::new((std::process::id(), Vec::new())),
        }
    }

    fn idle(&self) -> MutexGuard<'_, (u32, Vec<Idle<C>>)> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let pid = std::process::id();
        if state.0 != pid {
            *state = (pid, Vec::new());
        }
        state
    }

    fn checkin(&self, connection: Idle<C>) {
        let mut idle = self.idle();
        if idle.1.len() < self.max_idle {
            idle.1.push(connection);
        }
    }

    /// Runs `command` on a pooled or new connection.
    ///
    /// A pooled connection that turns out lost (Redis restarted or killed
    /// it, a cluster node died) is dropped with the rest of the pool, whose
    /// connections most likely share its fate, and the command is sent once
    /// more on a fresh connection: Redis closes connections only between
    /// commands, so the first attempt never ran.
    pub(super) fn run<T, S>(
        &self,
        store: &S,
        wait: Wait,
        mut command: impl FnMut(&mut C) -> RedisResult<T>,
    ) -> Result<T, StoreError>
    where
        S: Connector<Connection = C>,
    {
        let response_timeout = store.response_timeout();
        let (read_timeout, timeout_error) = match wait {
            Wait::Response => (response_timeout, response_timeout.unwrap_or_default()),
            Wait::Blocking(block) => {
                let limit =
                    block.and_then(|block| response_timeout.map(|t| block.saturating_add(t)));
                (limit, limit.unwrap_or_default())
            }
        };
        let mut pooled = self.idle().1.pop();
        loop {
            let reused = pooled.is_some();
            let mut idle = match pooled.take() {
                Some(idle) => idle,
                None => Idle {
                    connection: store.connect()?,
                    read_timeout: response_timeout,
                },
            };
            if idle.read_timeout != read_timeout {
                idle.connection
                    .set_read_timeout(read_timeout)
                    .map_err(|err| to_store_error(err, store.shown_addr(), Duration::ZERO))?;
                idle.read_timeout = read_timeout;
            }
            let outcome = command(&mut idle.connection);
            let healthy = match &outcome {
                Ok(_) => true,
                Err(err) => !is_lost(err) && idle.connection.is_open(),
            };
            if healthy {
                self.checkin(idle);
            }
            match outcome {
                Ok(value) => return Ok(value),
                Err(err) if reused && is_lost(&err) && !err.is_timeout() => {
                    crate::trace::event!(
                        INFO,
                        addr = %store.shown_addr(),
                        error = %err,
                        "pooled connection lost; the pool is dropped and the command sent again"
                    );
                    self.idle().1.clear();
                }
                Err(err) if !reused && is_lost(&err) && !err.is_timeout() => {
                    return Err(match store.refusal() {
                        Some(said) => StoreError::Connection {
                            addr: store.shown_addr(),
                            message: format!("the server closed the connection, saying: {said}"),
                            source: Some(Box::new(err)),
                        },
                        None => to_store_error(err, store.shown_addr(), timeout_error),
                    });
                }
                Err(err) => return Err(to_store_error(err, store.shown_addr(), timeout_error)),
            }
        }
    }
}

/// Whether the connection, or the node behind it, is gone.
fn is_lost(err: &RedisError) -> bool {
    err.is_io_error() || err.is_connection_dropped() || err.is_connection_refusal()
}

/// Whether the server answered that it cannot serve yet or for now (still
/// loading its data, a cluster or replica not ready): like a lost
/// connection, a later call may succeed.
fn is_unavailable(err: &RedisError) -> bool {
    // Redis answers a connection past `maxclients` with this, then closes it.
    err.detail() == Some("max number of clients reached")
        || matches!(
            err.kind(),
            ErrorKind::Server(
                ServerErrorKind::BusyLoading
                    | ServerErrorKind::TryAgain
                    | ServerErrorKind::ClusterDown
                    | ServerErrorKind::MasterDown
            )
        )
}

/// The [`StoreError`] for a redis error at `addr`; `timeout` is the one in
/// force when the error is a timeout.
pub(super) fn to_store_error(err: RedisError, addr: String, timeout: Duration) -> StoreError {
    if err.is_timeout() {
        StoreError::Timeout { addr, timeout }
    } else if is_lost(&err) || is_unavailable(&err) {
        StoreError::Connection {
            addr,
            message: server_words(&err),
            source: Some(Box::new(err)),
        }
    } else {
        StoreError::Command {
            addr,
            message: server_words(&err),
        }
    }
}

/// An error the server answered, in its own words (`NOPERM this user has
/// no permissions…`), not redis-rs's rendering of them (`NoPerm: …`).
fn server_words(err: &RedisError) -> String {
    let Some(code) = err.code() else {
        return err.to_string();
    };
    let words = format!("{code} {}", err.detail().unwrap_or_default());
    match words.trim() {
        "" => "an error reply with no text".into(),
        words => words.into(),
    }
}
