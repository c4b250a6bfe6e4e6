//! The blocking driver: [`BlockingStore`], a [`ListStore`](crate::ListStore)
//! and [`LeaseStore`](crate::LeaseStore) on any target (one server, a
//! cluster, a Sentinel service), doing with blocking sockets what the
//! target's steps and the call policy ask for.
//!
//! - `conn.rs`: a connection (TCP, Unix socket, TLS);
//! - `pool.rs`: the connections of one node, from a manager;
//! - here: a manager that opens connections by the target's steps, and
//!   the loop that runs an operation's calls.
//!
//! The trait implementations, one line per operation, are with the
//! operations (`store/protocol/ops/`).

pub(crate) mod conn;
pub(crate) mod pool;

use std::sync::{Arc, PoisonError, RwLock};
use std::thread;
use std::time::Instant;

use conn::Conn;
use pool::{Manage, Pool, Pooled};

use super::StoreError;
use super::protocol::exchange::{Call, Event, Exchange, Step};
use super::protocol::ops::{Next, Operation};
use super::protocol::resp::Reply;
use super::protocol::{Node, NodeMap};
#[cfg(feature = "cluster")]
use super::target::Cluster;
#[cfg(feature = "sentinel")]
use super::target::Sentinel;
use super::target::open::driver_common;
use super::target::{DialEvent, DialStep, Dialing, Server, Target};

/// A blocking store on the target `T`: [`Server`](super::target::Server)
/// ([`RedisStore`](crate::RedisStore)), `Cluster`
/// ([`RedisClusterStore`](crate::RedisClusterStore)) or `Sentinel`
/// ([`RedisSentinelStore`](crate::RedisSentinelStore)).
///
/// Each node has a pool of connections: a call holds one while it runs
/// (a blocked receive for as long as it waits), an idle one is looked at
/// before it is used again, and at most
/// [`max_connections`](super::target::PoolOptions::max_connections) exist
/// per node. Clones share the pools.
pub struct BlockingStore<T> {
    inner: Arc<Inner<T>>,
}

struct Inner<T> {
    target: Arc<T>,
    /// The pool of each node used so far.
    pools: RwLock<NodeMap<Arc<NodePool<T>>>>,
}

// The bound names a crate-private trait: these methods are the crate's own.
#[allow(private_bounds)]
impl<T: Target> BlockingStore<T> {
    /// A store on `target`; connects to nothing yet.
    pub(crate) fn with_target(target: T) -> Self {
        Self {
            inner: Arc::new(Inner {
                target: Arc::new(target),
                pools: RwLock::new(NodeMap::default()),
            }),
        }
    }

    /// The store as errors show it.
    pub(crate) fn shown(&self) -> &Arc<str> {
        &self.inner.target.settings().shown
    }

    /// The pool of `node`, made on first use.
    fn pool(&self, node: &Node) -> Arc<NodePool<T>> {
        if let Some(pool) = self
            .inner
            .pools
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(node)
        {
            return Arc::clone(pool);
        }
        let mut pools = self
            .inner
            .pools
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        let settings = self.inner.target.settings();
        let pool = pools.entry(node.clone()).or_insert_with(|| {
            let dialer = Dialer {
                target: Arc::clone(&self.inner.target),
                node: node.clone(),
            };
            Arc::new(Pool::new(dialer, settings.pool, settings.shown.clone()))
        });
        Arc::clone(pool)
    }

    /// Runs `op`: each call it asks for, then its output.
    pub(crate) fn run<O: Operation>(&self, mut op: O) -> Result<O::Output, StoreError> {
        let mut next = op.next(None);
        loop {
            match next? {
                Next::Done(output) => return Ok(output),
                Next::Call(call) => {
                    next = match self.call(call) {
                        Ok(reply) => op.next(Some(reply)),
                        Err(err) => op.failed(err),
                    };
                }
            }
        }
    }

    /// Makes one call, as its exchange says.
    pub(crate) fn call(&self, call: Call) -> Result<Reply, StoreError> {
        let target = &*self.inner.target;
        let mut exchange = Exchange::new(target, call);
        let mut held: Option<(Arc<NodePool<T>>, Held<T>)> = None;
        let mut event = Event::Go;
        loop {
            event = match exchange.next(event) {
                Step::Checkout { node, .. } => {
                    let pool = self.pool(&node);
                    match pool.checkout() {
                        Ok(pooled) => {
                            held = Some((pool, pooled));
                            Event::CheckedOut
                        }
                        Err(err) => Event::CheckoutFailed(err),
                    }
                }
                Step::Send {
                    bytes,
                    replies,
                    timeout,
                } => {
                    let (_, pooled) = held.as_mut().expect("a connection held");
                    match pooled.conn().exchange(bytes, replies, timeout) {
                        Ok(replies) => Event::Replied(replies),
                        Err(failure) => Event::Failed(failure),
                    }
                }
                Step::Checkin => {
                    if let Some((_, pooled)) = held.take() {
                        pooled.check_in();
                    }
                    Event::Go
                }
                Step::Discard { clear } => {
                    if let Some((pool, pooled)) = held.take() {
                        drop(pooled);
                        if clear {
                            pool.clear_idle();
                        }
                    }
                    Event::Go
                }
                Step::Pause(pause) => {
                    thread::sleep(pause);
                    Event::Go
                }
                Step::Done(result) => return result,
            };
        }
    }
}

/// The pool of one node's connections.
type NodePool<T> = Pool<Dialer<T>, Conn>;

/// A connection held by a call.
type Held<T> = Pooled<Dialer<T>, Conn>;

/// Opens the connections of one node, by the target's steps.
struct Dialer<T> {
    target: Arc<T>,
    node: Node,
}

impl<T: Target> Manage<Conn> for Dialer<T> {
    fn open(&self) -> Result<Conn, StoreError> {
        let start = Instant::now();
        let opened = dial(&*self.target, &self.node, false);
        crate::trace::connected("redis", &self.node, start, &opened);
        opened
    }

    fn is_alive(&self, conn: &mut Conn) -> bool {
        conn.is_alive()
    }
}

/// Opens a connection to `node`: does each step of the target's dialing.
pub(crate) fn dial<T: Target>(target: &T, node: &Node, want_id: bool) -> Result<Conn, StoreError> {
    let settings = target.settings();
    let mut dialing = target.dial(node, want_id);
    let mut conn: Option<Conn> = None;
    let mut event = DialEvent::Go;
    loop {
        event = match dialing.next(event) {
            DialStep::Connect { endpoint, deadline } => {
                conn = None;
                match Conn::open(
                    &endpoint,
                    settings.tls.as_ref(),
                    deadline,
                    settings.response_timeout,
                ) {
                    Ok(opened) => {
                        conn = Some(opened);
                        DialEvent::Connected
                    }
                    Err(err) => DialEvent::NotConnected(err),
                }
            }
            DialStep::Send { request, deadline } => {
                let left = deadline.saturating_duration_since(Instant::now());
                let opened = conn.as_mut().expect("a connection being opened");
                match opened.exchange(&request, 1, Some(left)) {
                    Ok(mut replies) => DialEvent::Replied(replies.pop().unwrap_or(Reply::Nil)),
                    Err(failure) => DialEvent::Failed(failure),
                }
            }
            DialStep::Pause(pause) => {
                conn = None;
                thread::sleep(pause);
                DialEvent::Go
            }
            DialStep::Ready { client_id } => {
                let mut ready = conn.take().expect("a connection opened");
                ready.client_id = client_id;
                return Ok(ready);
            }
            DialStep::Fail(err) => return Err(err),
        };
    }
}

/// The blocking store on one Redis server.
///
/// - Opening it connects to nothing: connections are opened on first use,
///   kept in a small pool and reused; a thread that needs one while all are
///   busy opens another, so a blocked
///   [`blocking_pop`](crate::ListStore::blocking_pop) never stalls other
///   calls, up to [`max_connections`](super::target::PoolOptions::max_connections)
///   (64) in all: past that, a call waits up to the pool timeout (5 s) for
///   another to give its connection back, then fails with
///   [`StoreError::PoolExhausted`].
/// - Opening a connection is bounded by the connect timeout as a whole:
///   every address of the host in turn, the TLS handshake and the
///   AUTH/SELECT handshake share one deadline.
/// - Every command has a response timeout; a blocking receive waits its
///   own timeout plus that margin, never cut short.
/// - A push with a TTL and a take of the last element are Lua scripts
///   that check before they write, so a failure changes nothing.
/// - After Redis restarts (or closes idle connections) the store goes on
///   by itself: an idle connection is looked at before it is used again,
///   and one found closed is replaced before anything is sent on it. What
///   a connection lost during a call means is the call policy's: a request
///   that never left is sent again, a lost reply only when a second run
///   changes nothing more (see [`StoreError::ReplyLost`]).
/// - After `fork()`, the child never uses the parent's sockets.
///
/// Clones share one pool. [`get_client`](crate::get_client) hands out one
/// store per address per process.
///
/// # Examples
///
/// ```no_run
/// use redisutil::{ListStore, RedisStore};
///
/// let store = RedisStore::open("127.0.0.1:6379")?;
/// store.push("/jobs/client", &[br#"{"id":1}"#], None)?;
/// # Ok::<(), redisutil::StoreError>(())
/// ```
pub type RedisStore = BlockingStore<Server>;

driver_common!(BlockingStore);

/// The blocking store on a Redis Cluster.
///
/// - Opening it connects to nothing. The first call asks a seed for the
///   slot map (`CLUSTER SLOTS`) and connects to the master of its key's
///   slot; each node has its own pool of connections.
/// - Each operation is one command (or one Lua script) on one key, sent
///   to the master of the key's slot. A `MOVED` or `ASK` redirection is
///   followed (the command did not run where it was refused), a
///   `TRYAGAIN` tried again after a pause, up to
///   [`retries`](crate::RedisClusterStoreOptions::retries) times per call.
/// - [`scan`](crate::ListStore::scan) runs `SCAN` on every master, each to
///   its own end; [`ping`](crate::ListStore::ping) asks every master.
/// - After a failover (a replica promoted in place of a dead master) or a
///   resharding, a node that cannot be reached makes the store learn the
///   slot map again; until the cluster has promoted a replica, calls on
///   the dead master's slots fail with [`StoreError::Connection`] (or
///   [`StoreError::Timeout`]).
///
/// Clones share the pools. [`get_cluster_client`](crate::get_cluster_client)
/// hands out one store per seed set per process.
///
/// # Examples
///
/// ```no_run
/// use redisutil::{ListStore, RedisClusterStore};
///
/// let store = RedisClusterStore::open(["127.0.0.1:7000", "127.0.0.1:7001"])?;
/// store.push("/jobs/client", &[br#"{"id":1}"#], None)?;
/// # Ok::<(), redisutil::StoreError>(())
/// ```
#[cfg(feature = "cluster")]
pub type RedisClusterStore = BlockingStore<Cluster>;

/// The blocking store on the master of a service watched by Redis
/// Sentinel.
///
/// - Opening it connects to nothing. Each new connection asks the
///   sentinels in turn where the master is (`SENTINEL
///   GET-MASTER-ADDR-BY-NAME`), starting with the one that answered last,
///   connects to the server named, sends AUTH and SELECT, and checks with
///   `ROLE` that it is a master. A sentinel that cannot be reached, or
///   names a server that cannot be reached or is a replica, is passed over
///   for the next one. The connect timeout bounds all of it.
/// - Connections are pooled and every command is the one
///   [`RedisStore`] sends, with the same timeouts and call policy.
/// - A failover is followed by itself: a master that is no longer one
///   answers `READONLY` (or `NOREPLICAS` when `min-replicas-to-write` is
///   set and its replicas left, `UNBLOCKED` for a receive blocked on it);
///   the command did not run, the pool is emptied and the command sent
///   once more to the master the sentinels name now.
/// - Replication is asynchronous: a failover loses the writes the old
///   master acknowledged but had not passed to the replica promoted. Set
///   `min-replicas-to-write 1` on the masters so that a master left alone
///   refuses writes.
/// - Passwords never show in `Debug`, `Display` or errors.
///
/// # Examples
///
/// ```no_run
/// use redisutil::{ListStore, RedisAuth, RedisSentinelStore, RedisSentinelStoreOptions};
///
/// let options = RedisSentinelStoreOptions {
///     auth: Some(RedisAuth::password("master-secret")),
///     ..RedisSentinelStoreOptions::default()
/// };
/// let sentinels = ["10.0.0.1:26379", "10.0.0.2:26379", "10.0.0.3:26379"];
/// let store = RedisSentinelStore::open_with(sentinels, "mymaster", options)?;
/// store.push("/jobs/client", &[br#"{"id":1}"#], None)?;
/// # Ok::<(), redisutil::StoreError>(())
/// ```
///
/// From a `redis-sentinel://` address
/// ([`open_url`](BlockingStore::open_url)), its password never shown:
///
/// ```
/// use redisutil::{RedisSentinelStore, RedisSentinelStoreOptions};
///
/// let url = "redis-sentinel://:master-pass@10.0.0.1,10.0.0.2:26380/2#mymaster";
/// let store = RedisSentinelStore::open_url(url, RedisSentinelStoreOptions::default())?;
/// assert_eq!(store.service(), "mymaster");
/// assert!(!format!("{store:?}").contains("master-pass"));
/// # Ok::<(), redisutil::StoreError>(())
/// ```
#[cfg(feature = "sentinel")]
pub type RedisSentinelStore = BlockingStore<Sentinel>;

#[cfg(feature = "sentinel")]
impl BlockingStore<Sentinel> {
    /// Where the sentinels say the master is now (`host`, `port`), found
    /// as a new connection finds it: the sentinels asked in turn, the
    /// server named checked, within the connect timeout.
    pub fn master_addr(&self) -> Result<(String, u16), StoreError> {
        let target = self.target();
        dial(target, &Node::new(target.settings().shown.clone()), false)?;
        target.last_master().ok_or_else(|| StoreError::Connection {
            addr: target.settings().shown.to_string(),
            message: "no master found".into(),
            source: None,
        })
    }
}
