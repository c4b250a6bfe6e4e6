//! The async driver: [`AsyncStore`], an
//! [`AsyncListStore`](crate::store::AsyncListStore) and
//! [`AsyncLeaseStore`](crate::store::AsyncLeaseStore) on any target, doing
//! on tokio what the target's steps and the call policy ask for.
//!
//! - Calls that cannot block share **one connection per node**, their
//!   requests pipelined ([`Shared`]).
//! - A call that blocks (a blocked receive, the wait of a blocking lease)
//!   holds a **connection of its own** from the node's pool, capped by
//!   `max_connections`.
//! - **Cancellation** (a receive's future dropped): the call stops waiting
//!   at once — a blocked connection is unblocked from the shared one
//!   (`CLIENT UNBLOCK`) and goes back to its pool — and what it had taken
//!   is put back (see [`OnCancel`](crate::store::policy::OnCancel)).
//!
//! The trait implementations, one line per operation, are with the
//! operations (`store/protocol/ops/`).

mod alarm;
pub(crate) mod conn;
mod receive;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use conn::{Conn, Shared};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::policy::Op;
use super::protocol::exchange::{Call, Event, Exchange, Step};
use super::protocol::ops::{Next, Operation};
use super::protocol::resp::Reply;
use super::protocol::{Node, NodeMap, Request, Route, Wait};
#[cfg(feature = "cluster")]
use super::target::Cluster;
#[cfg(feature = "sentinel")]
use super::target::Sentinel;
use super::target::open::driver_common;
use super::target::{DialEvent, DialStep, Dialing, Server, Target};
use super::{StoreError, wait_limit};

/// An async store on the target `T`: `Server`
/// ([`AsyncRedisStore`]), `Cluster` ([`AsyncRedisClusterStore`]) or
/// `Sentinel` ([`AsyncRedisSentinelStore`]).
///
/// - Calls that cannot block share one connection per node, their
///   requests pipelined.
/// - A call that blocks (a blocked receive, the wait of a blocking lease)
///   holds a connection of its own from the node's pool, capped by
///   [`max_connections`](crate::store::PoolOptions::max_connections).
/// - A receive's future dropped stops waiting at once and puts back what
///   it took: see [`aio`](crate::aio#cancellation).
///
/// Clones share the connections.
pub struct AsyncStore<T> {
    inner: Arc<Inner<T>>,
}

struct Inner<T> {
    target: Arc<T>,
    nodes: Mutex<NodeMap<Arc<NodeConns>>>,
}

/// The connections of one node.
#[derive(Default)]
struct NodeConns {
    shared: Mutex<Option<Shared>>,
    /// Held while the shared connection is opened, so that it is opened once.
    opening: tokio::sync::Mutex<()>,
    idle: Mutex<Vec<Conn>>,
    places: Option<Arc<Semaphore>>,
}

/// A connection held by a call.
enum Held {
    Shared(Shared),
    Dedicated {
        conns: Arc<NodeConns>,
        conn: Conn,
        _place: OwnedSemaphorePermit,
    },
}

/// What a cancelled call tells the one still running it.
#[derive(Default)]
pub(crate) struct Cancel {
    cancelled: AtomicBool,
    /// The node and server id of the connection the call is blocked on.
    blocked: Mutex<Option<(Node, i64)>>,
}

impl Cancel {
    pub(crate) fn cancel(&self) -> Option<(Node, i64)> {
        self.cancelled.store(true, Ordering::SeqCst);
        self.blocked
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::SeqCst)
    }

    /// Whether the call is still blocked on connection `id`.
    pub(crate) fn is_blocked_on(&self, id: i64) -> bool {
        self.blocked
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .is_some_and(|(_, blocked)| *blocked == id)
    }

    fn set_blocked(&self, blocked: Option<(Node, i64)>) {
        *self.blocked.lock().unwrap_or_else(PoisonError::into_inner) = blocked;
    }
}

// The bound names a crate-private trait: these methods are the crate's own.
#[allow(private_bounds)]
impl<T: Target> AsyncStore<T> {
    /// A store on `target`; connects to nothing yet.
    pub(crate) fn with_target(target: T) -> Self {
        Self {
            inner: Arc::new(Inner {
                target: Arc::new(target),
                nodes: Mutex::new(NodeMap::default()),
            }),
        }
    }

    pub(crate) fn shown(&self) -> &Arc<str> {
        &self.inner.target.settings().shown
    }

    fn node(&self, node: &Node) -> Arc<NodeConns> {
        let mut nodes = self
            .inner
            .nodes
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(conns) = nodes.get(node) {
            return Arc::clone(conns);
        }
        let pool = self.inner.target.settings().pool;
        Arc::clone(nodes.entry(node.clone()).or_insert_with(|| {
            Arc::new(NodeConns {
                places: Some(Arc::new(Semaphore::new(pool.max_connections))),
                ..NodeConns::default()
            })
        }))
    }

    /// Runs `op`: each call it asks for, then its output. A call cancelled
    /// (`cancel`) stops before its next wait, with what it has.
    pub(crate) async fn run<O: Operation>(
        &self,
        mut op: O,
        cancel: Option<&Cancel>,
    ) -> Result<O::Output, StoreError> {
        let mut next = op.next(None);
        loop {
            let call = match next? {
                Next::Done(output) => return Ok(output),
                Next::Call(call) => call,
            };
            if cancel.is_some_and(Cancel::is_cancelled) {
                if let Some(output) = op.stop() {
                    return Ok(output);
                }
                if call.wait.blocks() {
                    // As if its time had passed: a wait cut short takes nothing.
                    next = op.next(Some(Reply::Nil));
                    continue;
                }
            }
            next = match self.call(call, cancel).await {
                Ok(reply) => op.next(Some(reply)),
                Err(err) => op.failed(err),
            };
        }
    }

    /// Makes one call, as its exchange says.
    pub(crate) async fn call(
        &self,
        call: Call,
        cancel: Option<&Cancel>,
    ) -> Result<Reply, StoreError> {
        let target = &*self.inner.target;
        let blocks = call.wait.blocks();
        let mut exchange = Exchange::new(target, call);
        let mut held: Option<(Node, Held)> = None;
        let mut event = Event::Go;
        loop {
            event = match exchange.next(event) {
                Step::Checkout { node, dedicated } => {
                    let multiplexed = target.settings().pool.multiplexed;
                    let checked_out = match dedicated || !multiplexed {
                        true => self.dedicated(&node).await,
                        false => self.shared(&node).await.map(Held::Shared),
                    };
                    match checked_out {
                        Ok(conn) => {
                            held = Some((node, conn));
                            Event::CheckedOut
                        }
                        Err(err) => Event::CheckoutFailed(err),
                    }
                }
                Step::Send {
                    bytes,
                    replies,
                    timeout,
                } => match held.as_mut().expect("a connection held") {
                    (_, Held::Shared(shared)) => {
                        match shared.exchange(bytes, replies, timeout).await {
                            Ok(replies) => Event::Replied(replies),
                            Err(failure) => Event::Failed(failure),
                        }
                    }
                    (node, Held::Dedicated { conn, .. }) => {
                        let watched = match (cancel, conn.client_id) {
                            (Some(cancel), Some(id)) if blocks => {
                                cancel.set_blocked(Some((node.clone(), id)));
                                Some(cancel)
                            }
                            _ => None,
                        };
                        let sent = match watched {
                            // Cancelled before the request left: it is not sent.
                            Some(cancel) if cancel.is_cancelled() => Ok(vec![Reply::Nil; replies]),
                            _ => conn.exchange(bytes, replies, timeout).await,
                        };
                        if let Some(cancel) = watched {
                            cancel.set_blocked(None);
                        }
                        match sent {
                            Ok(replies) => Event::Replied(replies),
                            Err(failure) => Event::Failed(failure),
                        }
                    }
                },
                Step::Checkin => {
                    // A cancelled call's connection may still be the target
                    // of its `CLIENT UNBLOCK`, sent by another task: reused,
                    // it would cut the next call's wait short. It is closed.
                    let cancelled = cancel.is_some_and(Cancel::is_cancelled);
                    if let Some((_, Held::Dedicated { conns, conn, .. })) = held.take() {
                        let mut idle = conns.idle.lock().unwrap_or_else(PoisonError::into_inner);
                        if idle.len() < target.settings().pool.max_idle && !cancelled {
                            idle.push(conn);
                        }
                    }
                    Event::Go
                }
                Step::Discard { clear } => {
                    if let Some((node, conn)) = held.take() {
                        let conns = self.node(&node);
                        if let Held::Shared(shared) = &conn {
                            let mut current =
                                conns.shared.lock().unwrap_or_else(PoisonError::into_inner);
                            if current.as_ref().is_some_and(|current| current.same(shared)) {
                                *current = None;
                            }
                        }
                        if clear {
                            conns
                                .idle
                                .lock()
                                .unwrap_or_else(PoisonError::into_inner)
                                .clear();
                        }
                    }
                    Event::Go
                }
                Step::Pause(pause) => {
                    tokio::time::sleep(pause).await;
                    Event::Go
                }
                Step::Done(result) => return result,
            };
        }
    }

    /// The shared connection of `node`, opened once.
    async fn shared(&self, node: &Node) -> Result<Shared, StoreError> {
        let conns = self.node(node);
        let current = || {
            conns
                .shared
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone()
                .filter(Shared::is_open)
        };
        if let Some(shared) = current() {
            return Ok(shared);
        }
        let _opening = conns.opening.lock().await;
        if let Some(shared) = current() {
            return Ok(shared);
        }
        let shared = self.dial(node, false).await?.into_shared();
        *conns.shared.lock().unwrap_or_else(PoisonError::into_inner) = Some(shared.clone());
        Ok(shared)
    }

    /// A connection of its own to `node`, within the pool's cap.
    async fn dedicated(&self, node: &Node) -> Result<Held, StoreError> {
        let conns = self.node(node);
        let pool = self.inner.target.settings().pool;
        let places = conns.places.as_ref().expect("a node's places");
        // A free place is taken without a timer (the semaphore hands
        // released places to those waiting first, so this jumps no queue).
        let acquired = match Arc::clone(places).try_acquire_owned() {
            Ok(place) => Ok(Ok(place)),
            Err(_) => {
                let acquire = Arc::clone(places).acquire_owned();
                match wait_limit(Some(pool.pool_timeout)) {
                    None => Ok(acquire.await),
                    Some(timeout) => tokio::time::timeout(timeout, acquire).await,
                }
            }
        };
        let Ok(Ok(place)) = acquired else {
            return Err(StoreError::PoolExhausted {
                addr: self.shown().to_string(),
                max_connections: pool.max_connections,
                timeout: pool.pool_timeout,
            });
        };
        loop {
            let idle = conns
                .idle
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .pop();
            let conn = match idle {
                Some(mut conn) => match conn.is_alive() {
                    true => conn,
                    false => continue,
                },
                None => self.dial(node, true).await?,
            };
            return Ok(Held::Dedicated {
                conns,
                conn,
                _place: place,
            });
        }
    }

    /// Opens a connection to `node`: does each step of the target's dialing.
    async fn dial(&self, node: &Node, want_id: bool) -> Result<Conn, StoreError> {
        let start = Instant::now();
        let target = &*self.inner.target;
        let settings = target.settings();
        let mut dialing = target.dial(node, want_id);
        let mut conn: Option<Conn> = None;
        let mut event = DialEvent::Go;
        let opened = loop {
            event = match dialing.next(event) {
                DialStep::Connect { endpoint, deadline } => {
                    conn = None;
                    match conn::open(&endpoint, settings.tls.as_ref(), deadline).await {
                        Ok(stream) => {
                            conn = Some(Conn::new(stream));
                            DialEvent::Connected
                        }
                        Err(err) => DialEvent::NotConnected(err),
                    }
                }
                DialStep::Send { request, deadline } => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    let opening = conn.as_mut().expect("a connection being opened");
                    match opening.exchange(&request, 1, Some(left)).await {
                        Ok(mut replies) => DialEvent::Replied(replies.pop().unwrap_or(Reply::Nil)),
                        Err(failure) => DialEvent::Failed(failure),
                    }
                }
                DialStep::Pause(pause) => {
                    conn = None;
                    tokio::time::sleep(pause).await;
                    DialEvent::Go
                }
                DialStep::Ready { client_id } => {
                    let mut ready = conn.take().expect("a connection opened");
                    ready.client_id = client_id;
                    break Ok(ready);
                }
                DialStep::Fail(err) => break Err(err),
            };
        };
        crate::trace::connected("redis (async)", node, start, &opened);
        opened
    }

    /// Unblocks the connection `id` of `node`, blocked by a call nobody
    /// waits for any more, until it is not blocked (a `CLIENT UNBLOCK`
    /// sent before the blocking command arrived unblocks nothing).
    pub(crate) async fn unblock(self, node: Node, id: i64, cancel: Arc<Cancel>) {
        let request = || Request::new(&["CLIENT", "UNBLOCK", &id.to_string()]);
        for _ in 0..200 {
            if !cancel.is_blocked_on(id) {
                return;
            }
            let call = Call {
                op: Op::Unblock,
                route: Route::Node(node.clone()),
                request: request(),
                wait: Wait::Response,
            };
            match self.call(call, None).await {
                Ok(Reply::Int(1)) => return,
                Ok(_) => tokio::time::sleep(std::time::Duration::from_millis(5)).await,
                Err(_) => return,
            }
        }
    }

    /// Pushes back to the head of `key` what a receive nobody waits for
    /// any more took.
    pub(crate) async fn put_back(self, key: String, taken: Vec<Vec<u8>>) {
        if taken.is_empty() {
            return;
        }
        let values: Vec<&[u8]> = taken.iter().rev().map(Vec::as_slice).collect();
        let request = Request::with_values("LPUSH", &[key.as_bytes()], &values);
        let pushed = self
            .call(Call::on_key(Op::PutBack, &key, request), None)
            .await;
        crate::trace::event!(
            WARN,
            addr = %self.shown(),
            key = %key,
            elements = taken.len(),
            put_back = pushed.is_ok(),
            error = pushed.as_ref().err().map(ToString::to_string),
            "a cancelled receive had taken elements; they go back to the head of their list"
        );
        let _ = pushed;
    }
}

/// The async store on one Redis server: [`AsyncStore`] on the target
/// `Server`, the async [`RedisStore`](crate::RedisStore), with the same
/// addresses, options, errors and call policy.
///
/// # Examples
///
/// ```no_run
/// use redisutil::aio::{AsyncListStore, AsyncRedisStore};
///
/// # async fn run() -> Result<(), redisutil::StoreError> {
/// let store = AsyncRedisStore::open("127.0.0.1:6379")?;
/// store.push("/jobs/client", &[br#"{"id":1}"#], None).await?;
/// # Ok(()) }
/// ```
pub type AsyncRedisStore = AsyncStore<Server>;

/// The async store on a Redis Cluster: [`AsyncStore`] on the target
/// `Cluster`, the async [`RedisClusterStore`](crate::RedisClusterStore).
#[cfg(feature = "cluster")]
pub type AsyncRedisClusterStore = AsyncStore<Cluster>;

/// The async store on the master of a Sentinel service: [`AsyncStore`] on
/// the target `Sentinel`, the async
/// [`RedisSentinelStore`](crate::RedisSentinelStore).
#[cfg(feature = "sentinel")]
pub type AsyncRedisSentinelStore = AsyncStore<Sentinel>;

driver_common!(AsyncStore);
