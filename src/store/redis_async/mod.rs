//! [`AsyncRedisStore`]: the [`AsyncListStore`] on a real Redis, one
//! server ([`server`]) or a cluster ([`cluster`]), on redis-rs's
//! multiplexed tokio connections.

#[cfg(feature = "cluster")]
mod cluster;
#[cfg(feature = "sentinel")]
mod sentinel;
mod server;

#[cfg(feature = "cluster")]
pub use cluster::{AsyncRedisClusterStore, Cluster};
#[cfg(feature = "sentinel")]
pub use sentinel::{AsyncRedisSentinelStore, Sentinel};
pub use server::Server;

use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use redis::{Cmd, FromRedisValue, RedisError};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::commands::build;
use super::commands::lease::{self, ScriptCall};
use super::lease::{DeliveryTag, LeaseKeys, LeasePolicy, LeaseSnapshot, Leased, Nacked};
use super::pool::{is_lost, to_store_error};
use super::script::lease::{LeaseReply, SnapshotReply};
use super::script::{PUSH_WITH_TTL, Script, TAKE_LAST};
use super::{StoreError, ttl_millis, wait_limit};
use crate::aio::{AsyncLeaseStore, AsyncListStore, FinishOnDrop};

/// The async store on a Redis server: the async
/// [`RedisStore`](crate::RedisStore), with the same addresses, options and
/// errors. [`AsyncStore`] on the topology [`Server`].
pub type AsyncRedisStore = AsyncStore<Server>;

/// An [`AsyncListStore`] and [`AsyncLeaseStore`] on Redis, one server
/// ([`AsyncRedisStore`]) or, with the feature `cluster`, a Redis Cluster
/// (`AsyncRedisClusterStore`, the async
/// [`RedisClusterStore`](crate::RedisClusterStore)).
///
/// - Calls that cannot block share **one multiplexed connection**: any
///   number of tasks send on it at once, their commands pipelined.
/// - A blocked pop ([`blocking_pop`](AsyncListStore::blocking_pop),
///   `brecv_msg`…) waits on a **connection of its own**, so it never holds
///   up the others; these are kept for reuse (up to
///   [`max_idle`](crate::RedisStoreOptions::max_idle)) and capped by
///   [`max_connections`](crate::RedisStoreOptions::max_connections): a blocked
///   pop past the cap waits up to
///   [`pool_timeout`](crate::RedisStoreOptions::pool_timeout) for another to end,
///   then fails with [`StoreError::PoolExhausted`]. So with the default 64,
///   64 receives can block at once; raise it for more.
/// - Opening a connection is bounded by the connect timeout as a whole,
///   the AUTH/SELECT handshake included; every command by the response
///   timeout, a blocked pop by its own timeout plus that margin (redis-rs
///   would cut every answer at 500 ms by default).
/// - A connection found closed (Redis restarted) is replaced, and a
///   command sent on a connection that turned out to be closed is sent
///   again on the new one, once, as the sync stores do.
/// - On a cluster, the connections are redis-rs's cluster connections:
///   each reaches every master and follows `MOVED` and `ASK`, so a blocked
///   pop there holds a connection to each master.
/// - Dropping a receive future never loses a message: see the
///   [`aio`](crate::aio#cancellation) module.
///
/// Clones share the connections. Opening the store connects to nothing.
/// `rediss://` addresses need the feature `tls-rustls`.
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
pub struct AsyncStore<Topo> {
    inner: Arc<Inner<Topo>>,
}

impl<Topo> Clone for AsyncStore<Topo> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

struct Inner<Topo> {
    /// Where the commands go, how to open a connection there, and the
    /// connections open.
    topology: Topo,
    limits: Limits,
    /// A place per connection a blocked pop may hold.
    places: Arc<Semaphore>,
}

/// The connections of a store, kept by its topology.
pub struct Connections<C> {
    /// The connection that calls which cannot block share.
    shared: Mutex<Option<C>>,
    /// Held while the shared connection is opened, so that it is opened once.
    opening: tokio::sync::Mutex<()>,
    /// Connections of blocked pops, idle.
    idle: Mutex<Vec<C>>,
}

impl<C> Default for Connections<C> {
    fn default() -> Self {
        Self {
            shared: Mutex::new(None),
            opening: tokio::sync::Mutex::new(()),
            idle: Mutex::new(Vec::new()),
        }
    }
}

/// The options every topology has.
pub struct Limits {
    pub(crate) response_timeout: Option<Duration>,
    pub(crate) max_idle: usize,
    pub(crate) max_connections: usize,
    pub(crate) pool_timeout: Duration,
}

/// Where an [`AsyncStore`] sends its commands: the one server, or the
/// cluster, and how a connection there opens.
pub trait Topology: Send + Sync + Sized + 'static {
    /// A connection, cheap to clone (clones share it).
    type Connection: redis::aio::ConnectionLike + Clone + Send + Sync + 'static;

    /// Opens a connection whose commands time out after `response_timeout`
    /// (`None`: never).
    fn connect(
        &self,
        response_timeout: Option<Duration>,
    ) -> impl Future<Output = Result<Self::Connection, StoreError>> + Send;

    /// The address shown in errors.
    fn shown_addr(&self) -> String;

    /// The connections open.
    fn connections(&self) -> &Connections<Self::Connection>;

    /// Whether `err` says the server is no longer the one to send to (a
    /// master turned replica): like a lost connection, the command did not
    /// run, and a new connection goes where it should.
    fn is_gone(&self, err: &RedisError) -> bool {
        let _ = err;
        false
    }

    /// SCAN of every key matching `pattern`.
    fn scan(
        store: &AsyncStore<Self>,
        pattern: &str,
    ) -> impl Future<Output = Result<Vec<String>, StoreError>> + Send;

    /// PING, of every node the store may use.
    fn ping(store: &AsyncStore<Self>) -> impl Future<Output = Result<(), StoreError>> + Send;
}

impl<Topo: Topology> AsyncStore<Topo> {
    fn with_topology(topology: Topo, limits: Limits) -> Self {
        Self {
            inner: Arc::new(Inner {
                places: Arc::new(Semaphore::new(limits.max_connections)),
                topology,
                limits,
            }),
        }
    }

    fn shown_addr(&self) -> String {
        self.inner.topology.shown_addr()
    }

    fn limits(&self) -> &Limits {
        &self.inner.limits
    }

    fn connections(&self) -> &Connections<Topo::Connection> {
        self.inner.topology.connections()
    }

    async fn connect(
        &self,
        response_timeout: Option<Duration>,
    ) -> Result<Topo::Connection, StoreError> {
        self.inner.topology.connect(response_timeout).await
    }

    /// The shared connection, and whether it was open before this call.
    async fn shared(&self) -> Result<(Topo::Connection, bool), StoreError> {
        if let Some(connection) = self.lock_shared().clone() {
            return Ok((connection, true));
        }
        let _opening = self.connections().opening.lock().await;
        if let Some(connection) = self.lock_shared().clone() {
            return Ok((connection, false));
        }
        let connection = self.connect(self.limits().response_timeout).await?;
        *self.lock_shared() = Some(connection.clone());
        Ok((connection, false))
    }

    fn lock_shared(&self) -> std::sync::MutexGuard<'_, Option<Topo::Connection>> {
        self.connections()
            .shared
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `command` on the shared connection; once more on a new one
    /// when the connection it found had closed.
    async fn run<T, F, Fut>(&self, command: F) -> Result<T, StoreError>
    where
        F: Fn(Topo::Connection) -> Fut,
        Fut: Future<Output = Result<T, RedisError>>,
    {
        let timeout = self.limits().response_timeout.unwrap_or_default();
        let (connection, reused) = self.shared().await?;
        let err = match command(connection).await {
            Ok(value) => return Ok(value),
            Err(err) => err,
        };
        let gone = self.inner.topology.is_gone(&err);
        if !(is_lost(&err) || gone) || err.is_timeout() {
            return Err(to_store_error(err, self.shown_addr(), timeout));
        }
        *self.lock_shared() = None;
        if !reused && !gone {
            return Err(to_store_error(err, self.shown_addr(), timeout));
        }
        crate::trace::event!(
            INFO,
            addr = %self.shown_addr(),
            error = %err,
            "shared connection lost; the command is sent again on a new one"
        );
        let (connection, _) = self.shared().await?;
        command(connection)
            .await
            .map_err(|err| to_store_error(err, self.shown_addr(), timeout))
    }

    async fn query<T: FromRedisValue>(&self, command: Cmd) -> Result<T, StoreError> {
        self.run(|mut connection| {
            let command = &command;
            async move { command.query_async(&mut connection).await }
        })
        .await
    }

    async fn invoke<T: FromRedisValue>(
        &self,
        script: &'static Script,
        key: &str,
        args: &[&[u8]],
    ) -> Result<T, StoreError> {
        self.run(|mut connection| async move {
            script.invoke_async(&mut connection, &[key], args).await
        })
        .await
    }

    /// A place for a blocked pop, within the pool timeout.
    async fn place(&self) -> Result<OwnedSemaphorePermit, StoreError> {
        let options = self.limits();
        let acquire = self.inner.places.clone().acquire_owned();
        let acquired = match wait_limit(Some(options.pool_timeout)) {
            None => Ok(acquire.await),
            Some(timeout) => tokio::time::timeout(timeout, acquire).await,
        };
        match acquired {
            Ok(Ok(permit)) => Ok(permit),
            _ => Err(StoreError::PoolExhausted {
                addr: self.shown_addr(),
                max_connections: options.max_connections,
                timeout: options.pool_timeout,
            }),
        }
    }

    /// Runs a blocking `command` that waits up to `block` on a connection
    /// of its own, within `block` plus the response timeout.
    async fn blocking<T: FromRedisValue>(
        &self,
        command: &Cmd,
        block: Option<Duration>,
    ) -> Result<T, StoreError> {
        let _place = self.place().await?;
        let limit = block.and_then(|block| {
            self.limits()
                .response_timeout
                .map(|margin| block.saturating_add(margin))
        });
        let mut second = false;
        loop {
            let idle = self
                .connections()
                .idle
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .pop();
            let reused = idle.is_some();
            let mut connection = match idle {
                Some(connection) => connection,
                None => self.connect(None).await?,
            };
            let answer = match limit {
                None => command.query_async(&mut connection).await,
                Some(limit) => {
                    match tokio::time::timeout(limit, command.query_async(&mut connection)).await {
                        Ok(answer) => answer,
                        Err(_) => {
                            return Err(StoreError::Timeout {
                                addr: self.shown_addr(),
                                timeout: limit,
                            });
                        }
                    }
                }
            };
            let err = match answer {
                Ok(value) => {
                    self.check_in(connection);
                    return Ok(value);
                }
                Err(err) => err,
            };
            let timeout = limit.unwrap_or_default();
            let gone = self.inner.topology.is_gone(&err);
            if !(is_lost(&err) || gone) {
                self.check_in(connection);
                return Err(to_store_error(err, self.shown_addr(), timeout));
            }
            if gone {
                // The shared connection went to the same server.
                *self.lock_shared() = None;
            }
            if !(reused || gone) || second || err.is_timeout() {
                return Err(to_store_error(err, self.shown_addr(), timeout));
            }
            // The idle ones most likely closed with it.
            self.connections()
                .idle
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clear();
            second = true;
        }
    }

    /// Keeps a blocking connection for reuse, up to `max_idle`.
    fn check_in(&self, connection: Topo::Connection) {
        let mut idle = self
            .connections()
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if idle.len() < self.limits().max_idle {
            idle.push(connection);
        }
    }

    /// Puts back at the head of `key` what a receive nobody waits for any
    /// more took.
    async fn put_back(self, key: String, taken: Vec<Vec<u8>>) {
        if taken.is_empty() {
            return;
        }
        let mut lpush = redis::cmd("LPUSH");
        lpush.arg(&key);
        for value in taken.iter().rev() {
            lpush.arg(value);
        }
        let pushed = self.query::<u64>(lpush).await;
        crate::trace::event!(
            WARN,
            addr = %self.shown_addr(),
            key = %key,
            elements = taken.len(),
            put_back = pushed.is_ok(),
            error = pushed.as_ref().err().map(ToString::to_string),
            "a cancelled receive had taken elements; they go back to the head of their list"
        );
        let _ = pushed;
    }

    /// Runs the receive `call` so that, dropped, it ends anyway and puts
    /// back what it took.
    fn receive<T, F, Fut>(
        &self,
        key: &str,
        call: F,
        taken: fn(T) -> Vec<Vec<u8>>,
    ) -> FinishOnDrop<Result<T, StoreError>>
    where
        T: Send + 'static,
        F: FnOnce(Self, String) -> Fut,
        Fut: Future<Output = Result<T, StoreError>> + Send + 'static,
    {
        let store = self.clone();
        let key = key.to_owned();
        let call = call(store.clone(), key.clone());
        FinishOnDrop::new(call, move |output: Result<T, StoreError>| async move {
            if let Ok(output) = output {
                store.put_back(key, taken(output)).await;
            }
        })
    }

    async fn lpop(self, key: String) -> Result<Option<Vec<u8>>, StoreError> {
        self.query(build::lpop(&key, None)).await
    }

    async fn lpop_many(self, key: String, count: usize) -> Result<Vec<Vec<u8>>, StoreError> {
        let popped: Option<Vec<Vec<u8>>> = self.query(build::lpop(&key, Some(count))).await?;
        Ok(popped.unwrap_or_default())
    }

    async fn blpop(
        self,
        key: String,
        timeout: Option<Duration>,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let timeout = wait_limit(timeout);
        let popped: Option<(Vec<u8>, Vec<u8>)> =
            self.blocking(&build::blpop(&key, timeout), timeout).await?;
        Ok(popped.map(|(_key, value)| value))
    }

    async fn blmpop(
        self,
        key: String,
        count: usize,
        timeout: Option<Duration>,
    ) -> Result<Vec<Vec<u8>>, StoreError> {
        let timeout = wait_limit(timeout);
        let blmpop = build::blmpop(&key, count, timeout);
        match self.blocking::<build::Popped>(&blmpop, timeout).await {
            Ok(popped) => Ok(popped.map(|(_key, values)| values).unwrap_or_default()),
            Err(err) if build::unknown_command(&err) => {
                let Some(first) = self.clone().blpop(key.clone(), timeout).await? else {
                    return Ok(Vec::new());
                };
                let mut popped = vec![first];
                popped.extend(self.lpop_many(key, count - 1).await?);
                Ok(popped)
            }
            Err(err) => Err(err),
        }
    }

    async fn take_last_of(self, key: String) -> Result<Option<Vec<u8>>, StoreError> {
        self.invoke(&TAKE_LAST, &key, &[]).await
    }

    /// Waits without taking (BLMOVE of the tail onto itself), then the
    /// atomic take, as [`RedisStore`] does.
    async fn blocking_take_last_of(
        self,
        key: String,
        timeout: Option<Duration>,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let deadline = wait_limit(timeout).map(|timeout| Instant::now() + timeout);
        loop {
            let left = deadline.map(|deadline| deadline.saturating_duration_since(Instant::now()));
            let moved: Option<Vec<u8>> =
                self.blocking(&build::blmove_tail(&key, left), left).await?;
            if moved.is_none() {
                return Ok(None);
            }
            if let Some(last) = self.clone().take_last_of(key.clone()).await? {
                return Ok(Some(last));
            }
            if left.is_some_and(|left| left.is_zero()) {
                return Ok(None);
            }
        }
    }
}

/// What a receive of one element took.
fn one(taken: Option<Vec<u8>>) -> Vec<Vec<u8>> {
    taken.into_iter().collect()
}

/// What a receive of many elements took.
fn all(taken: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
    taken
}

impl<Topo: Topology> AsyncListStore for AsyncStore<Topo> {
    async fn push(
        &self,
        key: &str,
        values: &[&[u8]],
        ttl: Option<Duration>,
    ) -> Result<u64, StoreError> {
        let Some(ttl) = ttl else {
            return self.query(build::rpush(key, values)).await;
        };
        let millis = ttl_millis(ttl).to_string();
        let args = build::push_with_ttl_args(&millis, values)
            .ok_or_else(|| build::no_values(self.shown_addr()))?;
        self.invoke(&PUSH_WITH_TTL, key, &args).await
    }

    fn pop(&self, key: &str) -> impl Future<Output = Result<Option<Vec<u8>>, StoreError>> + Send {
        self.receive(key, Self::lpop, one)
    }

    fn blocking_pop(
        &self,
        key: &str,
        timeout: Option<Duration>,
    ) -> impl Future<Output = Result<Option<Vec<u8>>, StoreError>> + Send {
        self.receive(key, move |store, key| store.blpop(key, timeout), one)
    }

    async fn pop_many(&self, key: &str, count: usize) -> Result<Vec<Vec<u8>>, StoreError> {
        if count == 0 {
            return Ok(Vec::new());
        }
        self.receive(key, move |store, key| store.lpop_many(key, count), all)
            .await
    }

    async fn blocking_pop_many(
        &self,
        key: &str,
        count: usize,
        timeout: Option<Duration>,
    ) -> Result<Vec<Vec<u8>>, StoreError> {
        if count == 0 {
            return Ok(Vec::new());
        }
        self.receive(
            key,
            move |store, key| store.blmpop(key, count, timeout),
            all,
        )
        .await
    }

    async fn index(&self, key: &str, index: i64) -> Result<Option<Vec<u8>>, StoreError> {
        self.query(build::lindex(key, index)).await
    }

    fn take_last(
        &self,
        key: &str,
    ) -> impl Future<Output = Result<Option<Vec<u8>>, StoreError>> + Send {
        self.receive(key, Self::take_last_of, one)
    }

    fn blocking_take_last(
        &self,
        key: &str,
        timeout: Option<Duration>,
    ) -> impl Future<Output = Result<Option<Vec<u8>>, StoreError>> + Send {
        self.receive(
            key,
            move |store, key| store.blocking_take_last_of(key, timeout),
            one,
        )
    }

    async fn scan(&self, pattern: &str) -> Result<Vec<String>, StoreError> {
        Topo::scan(self, pattern).await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        Topo::ping(self).await
    }
}

impl<Topo: Topology + fmt::Debug> fmt::Debug for AsyncStore<Topo> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncStore")
            .field("topology", &self.inner.topology)
            .finish_non_exhaustive()
    }
}

/// The lease operations: the scripts the sync stores run, built by the
/// same code ([`commands::lease`](super::commands::lease)).
impl<Topo: Topology> AsyncStore<Topo> {
    async fn invoke_lease<T: FromRedisValue>(
        &self,
        keys: &LeaseKeys,
        call: &ScriptCall,
    ) -> Result<T, StoreError> {
        let (names, args) = (lease::key_names(keys), call.args());
        self.run(|mut connection| {
            let (names, args) = (&names, &args);
            async move { call.script.invoke_async(&mut connection, names, args).await }
        })
        .await
    }

    /// Runs the leasing `call` so that, dropped, it ends anyway and hands
    /// back at once what it leased.
    fn leasing<T, F, Fut>(
        &self,
        keys: &LeaseKeys,
        max_deliveries: u32,
        call: F,
        leased: fn(T) -> Vec<Leased>,
    ) -> FinishOnDrop<Result<T, StoreError>>
    where
        T: Send + 'static,
        F: FnOnce(Self, LeaseKeys) -> Fut,
        Fut: Future<Output = Result<T, StoreError>> + Send + 'static,
    {
        let store = self.clone();
        let keys = keys.clone();
        let call = call(store.clone(), keys.clone());
        FinishOnDrop::new(call, move |output: Result<T, StoreError>| async move {
            let Ok(output) = output else { return };
            for leased in leased(output) {
                let call = lease::nack_call(&leased.tag, Duration::ZERO, max_deliveries);
                let handed_back = store.invoke_lease::<i64>(&keys, &call).await;
                crate::trace::event!(
                    WARN,
                    addr = %store.shown_addr(),
                    list = %keys.list(),
                    handed_back = handed_back.is_ok(),
                    "a cancelled leased receive had leased a message; it is handed back"
                );
                let _ = handed_back;
            }
        })
    }

    async fn lease_script(
        self,
        keys: LeaseKeys,
        tags: Vec<DeliveryTag>,
        count: usize,
        policy: LeasePolicy,
    ) -> Result<LeaseReply, StoreError> {
        self.invoke_lease(&keys, &lease::lease_call(&tags, count, policy))
            .await
    }

    /// As the sync stores' blocking lease: the script; when it leased
    /// nothing, a wait on the list that takes nothing, bounded by when a
    /// pending message is due; again.
    async fn lease_blocking(
        self,
        keys: LeaseKeys,
        count: usize,
        policy: LeasePolicy,
        timeout: Option<Duration>,
    ) -> Result<Vec<Leased>, StoreError> {
        let deadline = wait_limit(timeout).and_then(|timeout| Instant::now().checked_add(timeout));
        loop {
            let reply = self
                .clone()
                .lease_script(keys.clone(), Vec::new(), count, policy)
                .await?;
            if !reply.leased.is_empty() {
                return Ok(reply.leased);
            }
            let left = deadline.map(|deadline| deadline.saturating_duration_since(Instant::now()));
            if left.is_some_and(|left| left.is_zero()) {
                return Ok(Vec::new());
            }
            let wait = lease::lease_pause(left, reply.next_due);
            let _: Option<Vec<u8>> = self
                .blocking(&build::blmove_head(keys.list(), wait), wait)
                .await?;
        }
    }
}

impl<Topo: Topology> AsyncLeaseStore for AsyncStore<Topo> {
    async fn ack_and_lease(
        &self,
        keys: &LeaseKeys,
        tags: &[DeliveryTag],
        count: usize,
        policy: LeasePolicy,
    ) -> Result<(u64, Vec<Leased>), StoreError> {
        if count == 0 {
            return Ok((AsyncLeaseStore::ack(self, keys, tags).await?, Vec::new()));
        }
        let tags = tags.to_vec();
        let reply = self
            .leasing(
                keys,
                policy.max_deliveries,
                move |store, keys| store.lease_script(keys, tags, count, policy),
                |reply: LeaseReply| reply.leased,
            )
            .await?;
        Ok((reply.acked, reply.leased))
    }

    async fn blocking_lease(
        &self,
        keys: &LeaseKeys,
        count: usize,
        policy: LeasePolicy,
        timeout: Option<Duration>,
    ) -> Result<Vec<Leased>, StoreError> {
        if count == 0 {
            return Ok(Vec::new());
        }
        self.leasing(
            keys,
            policy.max_deliveries,
            move |store, keys| store.lease_blocking(keys, count, policy, timeout),
            std::convert::identity,
        )
        .await
    }

    async fn ack(&self, keys: &LeaseKeys, tags: &[DeliveryTag]) -> Result<u64, StoreError> {
        match lease::ack_call(tags) {
            None => Ok(0),
            Some(call) => self.invoke_lease(keys, &call).await,
        }
    }

    async fn nack(
        &self,
        keys: &LeaseKeys,
        tag: &DeliveryTag,
        delay: Duration,
        max_deliveries: u32,
    ) -> Result<Nacked, StoreError> {
        let call = lease::nack_call(tag, delay, max_deliveries);
        self.invoke_lease(keys, &call).await.map(lease::nacked)
    }

    async fn extend(
        &self,
        keys: &LeaseKeys,
        tag: &DeliveryTag,
        lease: Duration,
    ) -> Result<Option<SystemTime>, StoreError> {
        let call = lease::extend_call(tag, lease);
        self.invoke_lease(keys, &call).await.map(lease::extended)
    }

    async fn dead_letter(&self, keys: &LeaseKeys, tag: &DeliveryTag) -> Result<bool, StoreError> {
        let call = lease::dead_letter_call(tag);
        let moved: i64 = self.invoke_lease(keys, &call).await?;
        Ok(moved == 1)
    }

    async fn reclaim(&self, keys: &LeaseKeys, max_deliveries: u32) -> Result<u64, StoreError> {
        self.invoke_lease(keys, &lease::reclaim_call(max_deliveries))
            .await
    }

    async fn dead_letters(&self, keys: &LeaseKeys, max: usize) -> Result<Vec<Vec<u8>>, StoreError> {
        match lease::dead_letters_command(keys, max) {
            None => Ok(Vec::new()),
            Some(lrange) => self.query(lrange).await,
        }
    }

    async fn requeue_dead(&self, keys: &LeaseKeys, max: usize) -> Result<u64, StoreError> {
        match lease::requeue_dead_call(max) {
            None => Ok(0),
            Some(call) => self.invoke_lease(keys, &call).await,
        }
    }

    async fn purge_dead(&self, keys: &LeaseKeys) -> Result<u64, StoreError> {
        self.invoke_lease(keys, &lease::purge_dead_call()).await
    }

    async fn lease_snapshot(&self, keys: &LeaseKeys) -> Result<LeaseSnapshot, StoreError> {
        let SnapshotReply(snapshot) = self.invoke_lease(keys, &lease::snapshot_call()).await?;
        Ok(snapshot)
    }
}
