//! The store operations as I/O-free [`Operation`]s: the calls each makes
//! and what their replies mean, written once; and both drivers'
//! implementations of the store traits, each a line that runs one.
//!
//! - `list.rs`: the [`ListStore`](crate::ListStore) operations;
//! - `leased.rs`: the [`LeaseStore`](crate::LeaseStore) operations.

mod leased;
mod list;

use std::sync::Arc;

use super::exchange::Call;
use super::resp::Reply;
use crate::store::StoreError;

/// What an operation does next.
pub(crate) enum Next<O> {
    /// This call; its reply comes back to [`Operation::next`].
    Call(Call),
    /// It is over.
    Done(O),
}

/// A store operation without I/O: a driver makes the calls it asks for
/// and gives it their replies.
pub(crate) trait Operation: Send {
    type Output: Send + 'static;

    /// The next call, given the reply to the last one (`None` at first).
    fn next(&mut self, reply: Option<Reply>) -> Result<Next<Self::Output>, StoreError>;

    /// A call failed with `err`: the operation's error, or another way.
    fn failed(&mut self, err: StoreError) -> Result<Next<Self::Output>, StoreError> {
        Err(err)
    }

    /// The operation is cancelled before its next call, which is a wait:
    /// what it has so far (a wait takes nothing); `None` when it has no
    /// wait to cut short.
    fn stop(&mut self) -> Option<Self::Output> {
        None
    }
}

/// An operation of one call, whose reply `read` turns into its output.
pub(crate) struct Single<O, F> {
    call: Option<Call>,
    read: Option<F>,
    shown: Arc<str>,
    _output: std::marker::PhantomData<fn() -> O>,
}

/// The operation of `call`, read by `read`.
pub(crate) fn single<O, F>(shown: &Arc<str>, call: Call, read: F) -> Single<O, F>
where
    F: FnOnce(Reply) -> Result<O, String> + Send,
{
    Single {
        call: Some(call),
        read: Some(read),
        shown: shown.clone(),
        _output: std::marker::PhantomData,
    }
}

impl<O: Send + 'static, F> Operation for Single<O, F>
where
    F: FnOnce(Reply) -> Result<O, String> + Send,
{
    type Output = O;

    fn next(&mut self, reply: Option<Reply>) -> Result<Next<O>, StoreError> {
        match (self.call.take(), reply) {
            (Some(call), _) => Ok(Next::Call(call)),
            (None, Some(reply)) => {
                let read = self.read.take().expect("read once");
                read(reply)
                    .map(Next::Done)
                    .map_err(|why| unexpected(&self.shown, why))
            }
            (None, None) => Err(unexpected(&self.shown, "no reply".into())),
        }
    }
}

/// The error of a reply of another shape than the command's.
pub(crate) fn unexpected(shown: &str, why: String) -> StoreError {
    StoreError::Command {
        addr: shown.to_owned(),
        message: format!("unexpected reply: {why}"),
    }
}

/// An integer reply.
pub(crate) fn int(reply: Reply) -> Result<i64, String> {
    match reply {
        Reply::Int(value) => Ok(value),
        other => Err(format!("{other:?} where an integer belongs")),
    }
}

/// A count: a non-negative integer.
pub(crate) fn count(reply: Reply) -> Result<u64, String> {
    let value = int(reply)?;
    u64::try_from(value).map_err(|_| format!("a count of {value}"))
}

/// A bulk string or nil.
pub(crate) fn bulk_or_nil(reply: Reply) -> Result<Option<Vec<u8>>, String> {
    match reply {
        Reply::Nil => Ok(None),
        Reply::Bulk(bytes) => Ok(Some(bytes)),
        other => Err(format!("{other:?} where a bulk string or nil belongs")),
    }
}

/// An array of bulk strings, or nil (read as empty).
pub(crate) fn bulks(reply: Reply) -> Result<Vec<Vec<u8>>, String> {
    match reply {
        Reply::Nil => Ok(Vec::new()),
        Reply::Array(items) => items
            .into_iter()
            .map(|item| match item {
                Reply::Bulk(bytes) => Ok(bytes),
                other => Err(format!("{other:?} in an array of bulk strings")),
            })
            .collect(),
        other => Err(format!("{other:?} where an array belongs")),
    }
}

/// An array of exactly `N` items.
pub(crate) fn items<const N: usize>(reply: Reply) -> Result<[Reply; N], String> {
    match reply {
        Reply::Array(items) => {
            let len = items.len();
            items
                .try_into()
                .map_err(|_| format!("an array of {len} items where {N} belong"))
        }
        other => Err(format!("{other:?} where an array of {N} belongs")),
    }
}

/// `+OK` or `+PONG`.
pub(crate) fn status(reply: Reply) -> Result<(), String> {
    match reply {
        Reply::Status(_) => Ok(()),
        other => Err(format!("{other:?} where a status belongs")),
    }
}
