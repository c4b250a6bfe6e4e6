//! The connection pool and call policy that [`RedisStore`](crate::RedisStore)
//! and `RedisClusterStore` share: idle connections kept per process, a
//! blocking call's read timeout stretched by its block time, a dead pooled
//! connection replaced once, and redis errors mapped to [`StoreError`].

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use redis::{ConnectionLike, ErrorKind, RedisError, RedisResult, ServerErrorKind};

use super::script::{self, PUSH_WITH_TTL, TAKE_LAST};
use super::{StoreError, ttl_millis, wait_limit};

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

/// What a store tells the pool about itself, and the commands both real
/// stores send the same way.
pub(super) trait Connector: Sized {
    /// The connection type.
    type Connection: PooledConnection;
    /// The store's pool.
    fn pool(&self) -> &Pool<Self::Connection>;
    /// Opens a connection, with the response timeout set.
    fn connect(&self) -> Result<Self::Connection, StoreError>;
    /// How long a non-blocking command may wait for its answer.
    fn response_timeout(&self) -> Option<Duration>;
    /// The address shown in errors.
    fn shown_addr(&self) -> String;
    /// What the server says when it closes a new connection at once
    /// (`ERR max number of clients reached`), if it does.
    fn refusal(&self) -> Option<String> {
        None
    }

    /// Runs `command` through the pool (see [`Pool::run`]).
    fn run<T>(
        &self,
        wait: Wait,
        command: impl FnMut(&mut Self::Connection) -> RedisResult<T>,
    ) -> Result<T, StoreError> {
        self.pool().run(self, wait, command)
    }

    /// RPUSH, or with a TTL the atomic push-and-expire script.
    fn push(&self, key: &str, values: &[&[u8]], ttl: Option<Duration>) -> Result<u64, StoreError> {
        let Some(ttl) = ttl else {
            let mut rpush = redis::cmd("RPUSH");
            rpush.arg(key);
            for value in values {
                rpush.arg(*value);
            }
            return self.run(Wait::Response, |c| rpush.query(c));
        };
        if values.is_empty() {
            // What RPUSH answers; the script would push nothing and say 0.
            return Err(StoreError::Command {
                addr: self.shown_addr(),
                message: "ERR wrong number of arguments for 'rpush' command".into(),
            });
        }
        let millis = ttl_millis(ttl).to_string();
        let args = std::iter::once(millis.as_bytes()).chain(values.iter().copied());
        let commands = PUSH_WITH_TTL.commands(key, args);
        self.run(Wait::Response, |c| script::invoke(c, &commands))
    }

    /// LPOP.
    fn lpop(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let mut lpop = redis::cmd("LPOP");
        lpop.arg(key);
        self.run(Wait::Response, |c| lpop.query(c))
    }

    /// BLPOP, on a read timeout stretched by the block time.
    fn blpop(&self, key: &str, timeout: Option<Duration>) -> Result<Option<Vec<u8>>, StoreError> {
        let timeout = wait_limit(timeout);
        let mut blpop = redis::cmd("BLPOP");
        blpop.arg(key).arg(block_seconds(timeout));
        let popped: Option<(Vec<u8>, Vec<u8>)> =
            self.run(Wait::Blocking(timeout), |c| blpop.query(c))?;
        Ok(popped.map(|(_key, value)| value))
    }

    /// LINDEX.
    fn lindex(&self, key: &str, index: i64) -> Result<Option<Vec<u8>>, StoreError> {
        let mut lindex = redis::cmd("LINDEX");
        lindex.arg(key).arg(index);
        self.run(Wait::Response, |c| lindex.query(c))
    }

    /// The take-last script.
    fn take_last(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let commands = TAKE_LAST.commands(key, std::iter::empty());
        self.run(Wait::Response, |c| script::invoke(c, &commands))
    }

    /// Waits for the list to have an element without taking it (`BLMOVE`
    /// of the tail onto itself, which leaves the list as it is), then the
    /// take-last script. Nothing leaves Redis before that one atomic step,
    /// so a failure of either step loses nothing. Another consumer may take
    /// the element in between: then it waits again, for what is left of
    /// `timeout`.
    fn blocking_take_last(
        &self,
        key: &str,
        timeout: Option<Duration>,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let timeout = wait_limit(timeout);
        let deadline = timeout.map(|timeout| std::time::Instant::now() + timeout);
        loop {
            let left = deadline
                .map(|deadline| deadline.saturating_duration_since(std::time::Instant::now()));
            let mut blmove = redis::cmd("BLMOVE");
            blmove
                .arg(key)
                .arg(key)
                .arg("RIGHT")
                .arg("RIGHT")
                .arg(block_seconds(left));
            let moved: Option<Vec<u8>> = self.run(Wait::Blocking(left), |c| blmove.query(c))?;
            if moved.is_none() {
                return Ok(None);
            }
            if let Some(last) = self.take_last(key)? {
                return Ok(Some(last));
            }
            if left.is_some_and(|left| left.is_zero()) {
                return Ok(None);
            }
        }
    }
}

/// A BLPOP or BLMOVE timeout in seconds with millisecond precision, rounded
/// up: Redis reads a timeout below one millisecond as 0, which would block
/// forever.
fn block_seconds(timeout: Option<Duration>) -> String {
    match timeout {
        None => "0".into(),
        Some(timeout) => {
            let millis = ttl_millis(timeout).max(1);
            format!("{}.{:03}", millis / 1000, millis % 1000)
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blpop_timeouts_never_round_to_forever() {
        assert_eq!(block_seconds(None), "0");
        assert_eq!(block_seconds(Some(Duration::from_nanos(1))), "0.001");
        assert_eq!(block_seconds(Some(Duration::ZERO)), "0.001");
        assert_eq!(block_seconds(Some(Duration::from_millis(1500))), "1.500");
        assert_eq!(block_seconds(Some(Duration::from_secs(30))), "30.000");
    }
}
