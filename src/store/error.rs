//! [`StoreError`]: how a store operation fails, the same on every store.

use std::fmt;
use std::time::Duration;

/// A [`ListStore`](super::ListStore) operation failed.
///
/// The real and the in-memory store fail with the same variants, so code
/// tested on [`MemoryStore`](crate::MemoryStore) handles real failures.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The store could not be reached, the connection broke during the
    /// call, or the server said it cannot serve for now (still loading its
    /// data after a restart, cluster down). The command may or may not have
    /// run; the next call reconnects.
    #[error("connection to {addr} failed: {message}")]
    Connection {
        /// The store's address (`redis://host:port/db`, or `memory`).
        addr: String,
        /// What went wrong.
        message: String,
        /// The underlying error, when there is one.
        #[source]
        source: Option<BoxError>,
    },
    /// The request reached the server, and the connection broke before
    /// its reply came back: the command may have been applied. The store
    /// does not send such a command again when a second run could change
    /// its effect (a push would push twice); see
    /// [`may_have_run`](Self::may_have_run).
    #[error("{addr}: the reply was lost, the command may have been applied: {message}")]
    ReplyLost {
        /// The store's address.
        addr: String,
        /// How the connection broke.
        message: String,
        /// The underlying error, when there is one.
        #[source]
        source: Option<BoxError>,
    },
    /// The store did not answer within the configured timeout: the command
    /// may have run, and may still run.
    #[error("{addr} did not answer within {timeout:?}")]
    Timeout {
        /// The store's address.
        addr: String,
        /// The timeout that passed.
        timeout: Duration,
    },
    /// The server answered with an error (a wrong key type, out of memory,
    /// a read-only replica, …).
    #[error("{addr} refused the command: {message}")]
    Command {
        /// The store's address.
        addr: String,
        /// The server's error message.
        message: String,
    },
    /// Every connection the store's pool may open
    /// (`max_connections`) stayed in use, and none came back within the
    /// pool timeout. Nothing was sent: the command never ran. A later call
    /// may pass, once other calls (a blocked receive among them) give
    /// their connections back.
    #[error(
        "connection pool of {addr} exhausted: all {max_connections} connections \
         (max_connections) stayed in use for {timeout:?} (pool_timeout)"
    )]
    PoolExhausted {
        /// The store's address.
        addr: String,
        /// The pool's cap, `max_connections`.
        max_connections: usize,
        /// How long the call waited for a connection, `pool_timeout`.
        timeout: Duration,
    },
    /// An argument the store refuses before sending anything (a dead
    /// letter id that is not one).
    #[error("invalid argument: {message}")]
    InvalidInput {
        /// Which argument, and why.
        message: String,
    },
    /// Options that cannot be used (a pool of no connection); nothing
    /// connected.
    #[error("invalid store options: {message}")]
    InvalidOptions {
        /// Which option, and why.
        message: String,
    },
    /// An address or configuration could not be used.
    #[error("invalid redis address {addr:?}: {message}")]
    InvalidAddress {
        /// The address as given.
        addr: String,
        /// Why it was refused.
        message: String,
    },
}

/// A boxed error kept as the [`source`](std::error::Error::source) of another.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

impl StoreError {
    /// Whether the failure was a lost or refused connection, a timeout, or
    /// a pool with no connection free in time: the kind of failure that a
    /// later call may not see.
    pub fn is_connection(&self) -> bool {
        matches!(
            self,
            Self::Connection { .. }
                | Self::ReplyLost { .. }
                | Self::Timeout { .. }
                | Self::PoolExhausted { .. }
        )
    }

    /// Whether the command may have run although the call failed: its
    /// reply was lost ([`ReplyLost`](Self::ReplyLost)) or did not come in
    /// time ([`Timeout`](Self::Timeout)). Every other error means it did
    /// not run: a call that failed so can be made again safely.
    ///
    /// ```
    /// use redisutil::{ListStore, MemoryStore};
    /// use redisutil::store::Fault;
    ///
    /// let store = MemoryStore::new();
    /// store.fail_next_with(1, Fault::Disconnect);
    /// assert!(!store.push("k", &[b"v"], None).unwrap_err().may_have_run());
    /// store.fail_next_with(1, Fault::ReplyLost);
    /// assert!(store.push("k", &[b"v"], None).unwrap_err().may_have_run());
    /// # Ok::<(), redisutil::StoreError>(())
    /// ```
    pub fn may_have_run(&self) -> bool {
        matches!(self, Self::ReplyLost { .. } | Self::Timeout { .. })
    }

    /// Whether the call ran out of time: the store did not answer in time
    /// ([`Timeout`](Self::Timeout): the command may have run, a receive may
    /// have taken its message), or no pooled connection came free in time
    /// ([`PoolExhausted`](Self::PoolExhausted): the command never ran).
    pub fn is_timeout(&self) -> bool {
        matches!(self, Self::Timeout { .. } | Self::PoolExhausted { .. })
    }

    /// Whether every connection of the store's pool stayed in use for the
    /// pool timeout ([`PoolExhausted`](Self::PoolExhausted)): nothing was
    /// sent.
    pub fn is_pool_exhausted(&self) -> bool {
        matches!(self, Self::PoolExhausted { .. })
    }

    /// The error code the server answered (`WRONGTYPE`, `NOPERM`, `OOM`,
    /// `ERR`…), when it refused the command.
    ///
    /// ```
    /// use redisutil::{ListStore, MemoryStore};
    ///
    /// let store = MemoryStore::new();
    /// store.set_string("k", "not a list");
    /// let err = store.pop("k").unwrap_err();
    /// assert_eq!(err.code(), Some("WRONGTYPE"));
    /// assert!(err.is_wrong_type());
    /// assert!(!err.is_connection());
    /// ```
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Command { message, .. } => message.split_whitespace().next(),
            _ => None,
        }
    }

    /// Whether the key holds another type than a list (`WRONGTYPE`).
    pub fn is_wrong_type(&self) -> bool {
        self.code() == Some("WRONGTYPE")
    }
}

/// Shows bytes as text when they are UTF-8, else as escaped bytes, bounded.
pub(crate) struct Excerpt<'a>(pub &'a [u8]);

impl fmt::Display for Excerpt<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const MAX: usize = 128;
        let shown = &self.0[..self.0.len().min(MAX)];
        write!(f, "{:?}", String::from_utf8_lossy(shown))?;
        if self.0.len() > MAX {
            write!(f, "… ({} bytes)", self.0.len())?;
        }
        Ok(())
    }
}
