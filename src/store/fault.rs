//! [`Fault`]: the failures [`MemoryStore`](crate::MemoryStore) injects, one
//! for each way a real store fails.

use std::time::Duration;

use super::StoreError;

/// A failure that [`MemoryStore::fail_next_with`](crate::MemoryStore::fail_next_with)
/// injects into the next calls, so that a downstream test meets each way a
/// real Redis fails without writing a store of its own.
///
/// # Examples
///
/// ```
/// use redisutil::{ListStore, MemoryStore, StoreError};
/// use redisutil::store::Fault;
///
/// let store = MemoryStore::new();
/// store.push("jobs", &[b"1", b"2"], None)?;
///
/// // The pop runs, but its answer never arrives: the message is gone.
/// store.fail_next_with(1, Fault::ReplyLost);
/// assert!(matches!(store.pop("jobs"), Err(StoreError::ReplyLost { .. })));
/// assert_eq!(store.pop("jobs")?, Some(b"2".to_vec()));
///
/// // A read is sent again, as a real store's driver does: it passes.
/// store.fail_next_with(1, Fault::ReplyLost);
/// assert_eq!(store.index("jobs", 0)?, None);
///
/// store.fail_next_with(1, Fault::Refused("NOPERM this user has no permissions".into()));
/// let err = store.pop("jobs").unwrap_err();
/// assert!(matches!(err, StoreError::Command { .. }) && err.to_string().contains("NOPERM"));
/// # Ok::<(), StoreError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// The connection is lost before the command reaches the server:
    /// [`StoreError::Connection`], and nothing changes.
    Disconnect,
    /// The server does not answer in time and never runs the command:
    /// [`StoreError::Timeout`], and nothing changes.
    Timeout,
    /// The server runs the command but its answer is lost. The store then
    /// does what a Redis store's driver does, by the operation: a read,
    /// an `extend`, a `release` is sent again and passes; a leased receive
    /// is sent again under its call id and answers what it leased; any
    /// other call takes effect (a pop removes its element) and fails with
    /// [`StoreError::ReplyLost`]. This is how an at-most-once receive
    /// loses a message, and how a leased one does not.
    ReplyLost,
    /// The server refuses the command with this error reply (`NOPERM …`,
    /// `OOM …`, `READONLY …`): [`StoreError::Command`], and nothing changes.
    Refused(String),
}

/// The address the in-memory store reports in its errors.
pub(super) const ADDR: &str = "memory";

/// The response timeout a faked timeout reports: a real store's default.
const TIMEOUT: Duration = Duration::from_secs(5);

impl Fault {
    /// The error the caller sees.
    pub(super) fn error(&self) -> StoreError {
        match self {
            Self::Disconnect => StoreError::Connection {
                addr: ADDR.into(),
                message: "injected fault: connection lost".into(),
                source: None,
            },
            Self::Timeout => StoreError::Timeout {
                addr: ADDR.into(),
                timeout: TIMEOUT,
            },
            Self::ReplyLost => StoreError::ReplyLost {
                addr: ADDR.into(),
                message: "injected fault: connection lost after the command ran".into(),
                source: None,
            },
            Self::Refused(message) => StoreError::Command {
                addr: ADDR.into(),
                message: message.clone(),
            },
        }
    }
}
