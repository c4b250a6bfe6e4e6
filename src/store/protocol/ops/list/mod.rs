//! The [`ListStore`] operations on Redis: RPUSH, LPOP, BLPOP, BLMPOP,
//! LINDEX, the take-last script and its wait, SCAN and PING; and the
//! blocking driver's implementation of the trait, one line each.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{Next, Operation, bulk_or_nil, bulks, count, items, single, status, unexpected};
#[cfg(feature = "tokio")]
use crate::store::AsyncListStore;
#[cfg(feature = "tokio")]
use crate::store::aio::AsyncStore;
use crate::store::blocking::BlockingStore;
use crate::store::policy::Op;
use crate::store::protocol::exchange::Call;
use crate::store::protocol::resp::Reply;
use crate::store::protocol::{Node, Request, Route, Wait};
use crate::store::script::{PUSH_WITH_TTL, TAKE_LAST};
use crate::store::target::Target;
use crate::store::{ListStore, StoreError, ttl_millis, wait_limit};

mod scan;
use scan::*;

/// RPUSH, or with a TTL the atomic push-and-expire script.
pub(crate) fn push(
    shown: &Arc<str>,
    key: &str,
    values: &[&[u8]],
    ttl: Option<Duration>,
) -> Result<impl Operation<Output = u64> + use<>, StoreError> {
    if values.is_empty() {
        // What RPUSH answers; the script would push nothing without a word.
        return Err(StoreError::Command {
            addr: shown.to_string(),
            message: "ERR wrong number of arguments for 'rpush' command".into(),
        });
    }
    let request = match ttl {
        None => Request::with_values("RPUSH", &[key.as_bytes()], values),
        Some(ttl) => {
            let millis = ttl_millis(ttl).to_string();
            let mut args: Vec<&[u8]> = Vec::with_capacity(values.len() + 1);
            args.push(millis.as_bytes());
            args.extend_from_slice(values);
            Request::script(&PUSH_WITH_TTL, &[key], &args)
        }
    };
    Ok(single(shown, Call::on_key(Op::Push, key, request), count))
}

/// LPOP.
pub(crate) fn pop(shown: &Arc<str>, key: &str) -> impl Operation<Output = Option<Vec<u8>>> + use<> {
    let request = Request::new(&["LPOP", key]);
    single(shown, Call::on_key(Op::Pop, key, request), bulk_or_nil)
}

/// LPOP with a count (nothing asked for a count of 0).
pub(crate) fn pop_many(
    shown: &Arc<str>,
    key: &str,
    count: usize,
) -> impl Operation<Output = Vec<Vec<u8>>> + use<> {
    let request = Request::new(&["LPOP", key, &redis_count(count).to_string()]);
    Nothing::unless(
        count > 0,
        single(shown, Call::on_key(Op::PopMany, key, request), bulks),
    )
}

/// BLPOP, waiting up to `timeout` (`None`: without limit).
pub(crate) fn blocking_pop(
    shown: &Arc<str>,
    key: &str,
    timeout: Option<Duration>,
) -> impl Operation<Output = Option<Vec<u8>>> + use<> {
    let timeout = wait_limit(timeout);
    let request = Request::new(&["BLPOP", key, &block_seconds(timeout)]);
    let call = Call::on_key(Op::BlockingPop, key, request).waiting(Wait::Blocking(timeout));
    single(shown, call, |reply| match reply {
        Reply::Nil => Ok(None),
        reply => {
            let [_key, value] = items(reply)?;
            bulk_or_nil(value)
        }
    })
}

/// BLMPOP (Redis 7); before Redis 7, BLPOP for the first element and LPOP
/// for the rest.
pub(crate) struct BlockingPopMany {
    shown: Arc<str>,
    key: String,
    count: usize,
    timeout: Option<Duration>,
    /// The first element, once the fallback's BLPOP took it.
    first: Option<Vec<u8>>,
    stage: PopStage,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum PopStage {
    Start,
    Blmpop,
    Blpop,
    Rest,
}

pub(crate) fn blocking_pop_many(
    shown: &Arc<str>,
    key: &str,
    count: usize,
    timeout: Option<Duration>,
) -> BlockingPopMany {
    BlockingPopMany {
        shown: shown.clone(),
        key: key.to_owned(),
        count,
        timeout: wait_limit(timeout),
        first: None,
        stage: PopStage::Start,
    }
}

impl Operation for BlockingPopMany {
    type Output = Vec<Vec<u8>>;

    fn next(&mut self, reply: Option<Reply>) -> Result<Next<Self::Output>, StoreError> {
        let bad = |why| unexpected(&self.shown, why);
        match (self.stage, reply) {
            (PopStage::Start, _) if self.count == 0 => Ok(Next::Done(Vec::new())),
            (PopStage::Start, _) => {
                self.stage = PopStage::Blmpop;
                let request = Request::new(&[
                    "BLMPOP",
                    &block_seconds(self.timeout),
                    "1",
                    &self.key,
                    "LEFT",
                    "COUNT",
                    &redis_count(self.count).to_string(),
                ]);
                let call = Call::on_key(Op::BlockingPop, &self.key, request)
                    .waiting(Wait::Blocking(self.timeout));
                Ok(Next::Call(call))
            }
            (PopStage::Blmpop, Some(Reply::Nil)) => Ok(Next::Done(Vec::new())),
            (PopStage::Blmpop, Some(reply)) => {
                let [_key, values] = items(reply).map_err(bad)?;
                Ok(Next::Done(bulks(values).map_err(bad)?))
            }
            (PopStage::Blpop, Some(Reply::Nil)) => Ok(Next::Done(Vec::new())),
            (PopStage::Blpop, Some(reply)) => {
                let [_key, value] = items(reply).map_err(bad)?;
                let first = bulk_or_nil(value).map_err(bad)?.unwrap_or_default();
                if self.count == 1 {
                    return Ok(Next::Done(vec![first]));
                }
                self.first = Some(first);
                self.stage = PopStage::Rest;
                let count = (self.count - 1).to_string();
                let request = Request::new(&["LPOP", &self.key, &count]);
                Ok(Next::Call(Call::on_key(Op::PopMany, &self.key, request)))
            }
            (PopStage::Rest, Some(reply)) => {
                let mut popped: Vec<Vec<u8>> = self.first.take().into_iter().collect();
                popped.extend(bulks(reply).map_err(bad)?);
                Ok(Next::Done(popped))
            }
            (_, None) => Err(bad("no reply".into())),
        }
    }

    fn failed(&mut self, err: StoreError) -> Result<Next<Self::Output>, StoreError> {
        let unknown = matches!(&err, StoreError::Command { message, .. }
            if message.contains("unknown command"));
        if self.stage != PopStage::Blmpop || !unknown {
            return Err(err);
        }
        self.stage = PopStage::Blpop;
        let request = Request::new(&["BLPOP", &self.key, &block_seconds(self.timeout)]);
        let call =
            Call::on_key(Op::BlockingPop, &self.key, request).waiting(Wait::Blocking(self.timeout));
        Ok(Next::Call(call))
    }

    fn stop(&mut self) -> Option<Self::Output> {
        Some(self.first.take().into_iter().collect())
    }
}

/// LINDEX.
pub(crate) fn index(
    shown: &Arc<str>,
    key: &str,
    index: i64,
) -> impl Operation<Output = Option<Vec<u8>>> + use<> {
    let request = Request::new(&["LINDEX", key, &index.to_string()]);
    single(shown, Call::on_key(Op::Index, key, request), bulk_or_nil)
}

/// The take-last script.
fn take_last_call(key: &str) -> Call {
    Call::on_key(
        Op::TakeLast,
        key,
        Request::script(&TAKE_LAST, &[key], &[""; 0]),
    )
}

pub(crate) fn take_last(
    shown: &Arc<str>,
    key: &str,
) -> impl Operation<Output = Option<Vec<u8>>> + use<> {
    single(shown, take_last_call(key), bulk_or_nil)
}

/// Waits for the list to have an element without taking it (`BLMOVE` of
/// the tail onto itself), then the take-last script; nothing leaves
/// Redis before that one atomic step, so a failure of either loses
/// nothing. Another consumer may take the element in between: then it
/// waits again, for what is left of the timeout.
pub(crate) struct BlockingTakeLast {
    shown: Arc<str>,
    key: String,
    deadline: Option<Instant>,
    waiting: bool,
    /// The wait that returned last was cut to nothing.
    last_wait_zero: bool,
}

pub(crate) fn blocking_take_last(
    shown: &Arc<str>,
    key: &str,
    timeout: Option<Duration>,
) -> BlockingTakeLast {
    BlockingTakeLast {
        shown: shown.clone(),
        key: key.to_owned(),
        deadline: wait_limit(timeout).and_then(|timeout| Instant::now().checked_add(timeout)),
        waiting: false,
        last_wait_zero: false,
    }
}

/// `BLMOVE key key end end timeout`: waits for `key` to have an element
/// and leaves it as it is.
pub(crate) fn wait_for_element(key: &str, end: &str, timeout: Option<Duration>) -> Call {
    let request = Request::new(&["BLMOVE", key, key, end, end, &block_seconds(timeout)]);
    Call::on_key(Op::WaitForElement, key, request).waiting(Wait::Blocking(timeout))
}

impl Operation for BlockingTakeLast {
    type Output = Option<Vec<u8>>;

    fn next(&mut self, reply: Option<Reply>) -> Result<Next<Self::Output>, StoreError> {
        match reply {
            Some(Reply::Nil) if self.waiting => return Ok(Next::Done(None)),
            Some(_) if self.waiting => {
                self.waiting = false;
                return Ok(Next::Call(take_last_call(&self.key)));
            }
            Some(reply) => {
                if let Some(last) =
                    bulk_or_nil(reply).map_err(|why| unexpected(&self.shown, why))?
                {
                    return Ok(Next::Done(Some(last)));
                }
                if self.last_wait_zero {
                    return Ok(Next::Done(None));
                }
            }
            None => {}
        }
        let left = self
            .deadline
            .map(|deadline| deadline.saturating_duration_since(Instant::now()));
        self.waiting = true;
        self.last_wait_zero = left.is_some_and(|left| left.is_zero());
        Ok(Next::Call(wait_for_element(&self.key, "RIGHT", left)))
    }

    fn stop(&mut self) -> Option<Self::Output> {
        Some(None)
    }
}

/// PING on every master: a channel's two lists may be on any two.
pub(crate) fn ping(shown: &Arc<str>) -> impl Operation<Output = ()> + use<> {
    let call = Call {
        op: Op::Ping,
        route: Route::EveryMaster,
        request: Request::new(&["PING"]),
        wait: Wait::Response,
    };
    single(shown, call, |reply| match reply {
        Reply::Array(pongs) => pongs.into_iter().try_for_each(|pong| {
            let [_node, pong] = items(pong)?;
            status(pong)
        }),
        other => Err(format!("{other:?} where the masters' answers belong")),
    })
}

/// An operation that is skipped (its output empty) unless a condition held.
pub(crate) struct Nothing<O>(Option<O>);

impl<O> Nothing<O> {
    pub(crate) fn unless(run: bool, op: O) -> Self {
        Self(run.then_some(op))
    }
}

impl<O: Operation> Operation for Nothing<O>
where
    O::Output: Default,
{
    type Output = O::Output;

    fn next(&mut self, reply: Option<Reply>) -> Result<Next<Self::Output>, StoreError> {
        match &mut self.0 {
            Some(op) => op.next(reply),
            None => Ok(Next::Done(O::Output::default())),
        }
    }

    fn failed(&mut self, err: StoreError) -> Result<Next<Self::Output>, StoreError> {
        match &mut self.0 {
            Some(op) => op.failed(err),
            None => Err(err),
        }
    }

    fn stop(&mut self) -> Option<Self::Output> {
        self.0.as_mut().and_then(Operation::stop)
    }
}

/// A count as LPOP and BLMPOP take it: Redis refuses one beyond
/// `i64::MAX`, which no list reaches, so a larger one means the same.
fn redis_count(count: usize) -> u64 {
    (count as u64).min(i64::MAX as u64)
}

/// A blocking timeout in seconds with millisecond precision, rounded up:
/// Redis reads a timeout below one millisecond as 0, which blocks forever.
pub(crate) fn block_seconds(timeout: Option<Duration>) -> String {
    match timeout {
        None => "0".into(),
        Some(timeout) => {
            let millis = ttl_millis(timeout).max(1);
            format!("{}.{:03}", millis / 1000, millis % 1000)
        }
    }
}

impl<T: Target> ListStore for BlockingStore<T> {
    fn push(&self, key: &str, values: &[&[u8]], ttl: Option<Duration>) -> Result<u64, StoreError> {
        self.run(push(self.shown(), key, values, ttl)?)
    }

    fn pop(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.run(pop(self.shown(), key))
    }

    fn blocking_pop(
        &self,
        key: &str,
        timeout: Option<Duration>,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        self.run(blocking_pop(self.shown(), key, timeout))
    }

    fn pop_many(&self, key: &str, count: usize) -> Result<Vec<Vec<u8>>, StoreError> {
        self.run(pop_many(self.shown(), key, count))
    }

    fn blocking_pop_many(
        &self,
        key: &str,
        count: usize,
        timeout: Option<Duration>,
    ) -> Result<Vec<Vec<u8>>, StoreError> {
        self.run(blocking_pop_many(self.shown(), key, count, timeout))
    }

    fn index(&self, key: &str, index_: i64) -> Result<Option<Vec<u8>>, StoreError> {
        self.run(index(self.shown(), key, index_))
    }

    fn take_last(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.run(take_last(self.shown(), key))
    }

    fn blocking_take_last(
        &self,
        key: &str,
        timeout: Option<Duration>,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        self.run(blocking_take_last(self.shown(), key, timeout))
    }

    fn scan(&self, pattern: &str) -> Result<Vec<String>, StoreError> {
        self.run(scan(self.shown(), pattern))
    }

    fn ping(&self) -> Result<(), StoreError> {
        self.run(ping(self.shown()))
    }
}

/// What a cancelled receive took goes back to the head of its list.
#[cfg(feature = "tokio")]
fn back<T: Target, O: IntoIterator<Item = Vec<u8>>>(
    key: &str,
) -> impl FnOnce(AsyncStore<T>, O) -> std::pin::Pin<Box<dyn Future<Output = ()> + Send>> + Send + 'static
{
    let key = key.to_owned();
    move |store, taken| Box::pin(store.put_back(key, taken.into_iter().collect()))
}

#[cfg(feature = "tokio")]
impl<T: Target> AsyncListStore for AsyncStore<T> {
    async fn push(
        &self,
        key: &str,
        values: &[&[u8]],
        ttl: Option<Duration>,
    ) -> Result<u64, StoreError> {
        self.run(push(self.shown(), key, values, ttl)?, None).await
    }

    fn pop(&self, key: &str) -> impl Future<Output = Result<Option<Vec<u8>>, StoreError>> + Send {
        self.receive(pop(self.shown(), key), back(key))
    }

    fn blocking_pop(
        &self,
        key: &str,
        timeout: Option<Duration>,
    ) -> impl Future<Output = Result<Option<Vec<u8>>, StoreError>> + Send {
        self.receive(blocking_pop(self.shown(), key, timeout), back(key))
    }

    fn pop_many(
        &self,
        key: &str,
        count: usize,
    ) -> impl Future<Output = Result<Vec<Vec<u8>>, StoreError>> + Send {
        self.receive(pop_many(self.shown(), key, count), back(key))
    }

    fn blocking_pop_many(
        &self,
        key: &str,
        count: usize,
        timeout: Option<Duration>,
    ) -> impl Future<Output = Result<Vec<Vec<u8>>, StoreError>> + Send {
        let op = blocking_pop_many(self.shown(), key, count, timeout);
        self.receive(op, back(key))
    }

    async fn index(&self, key: &str, index_: i64) -> Result<Option<Vec<u8>>, StoreError> {
        self.run(index(self.shown(), key, index_), None).await
    }

    fn take_last(
        &self,
        key: &str,
    ) -> impl Future<Output = Result<Option<Vec<u8>>, StoreError>> + Send {
        self.receive(take_last(self.shown(), key), back(key))
    }

    fn blocking_take_last(
        &self,
        key: &str,
        timeout: Option<Duration>,
    ) -> impl Future<Output = Result<Option<Vec<u8>>, StoreError>> + Send {
        self.receive(blocking_take_last(self.shown(), key, timeout), back(key))
    }

    async fn scan(&self, pattern: &str) -> Result<Vec<String>, StoreError> {
        self.run(scan(self.shown(), pattern), None).await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.run(ping(self.shown()), None).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocking_timeouts_never_round_to_forever() {
        assert_eq!(block_seconds(None), "0");
        assert_eq!(block_seconds(Some(Duration::from_nanos(1))), "0.001");
        assert_eq!(block_seconds(Some(Duration::ZERO)), "0.001");
        assert_eq!(block_seconds(Some(Duration::from_millis(1500))), "1.500");
    }
}
