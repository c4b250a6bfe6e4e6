//! [`Sentinel`]: an [`AsyncStore`] on the master of a Redis Sentinel
//! service.

use std::fmt;
use std::time::{Duration, Instant};

use redis::aio::MultiplexedConnection;
use redis::{RedisError, Value};

use super::super::commands::{build, scan_to_end_async};
use super::super::pool::to_store_error;
use super::super::sentinel::{
    MasterSearch, RedisSentinelStore, RedisSentinelStoreOptions, demoted, is_master, master_shown,
};
use super::server::{open_multiplexed, with_response_timeout};
use super::{AsyncStore, Connections, Limits, Topology};
use crate::StoreError;
use crate::store::addr::IntoRedisAddr;

/// The async store on the master of a Sentinel service: [`AsyncStore`]
/// with the topology [`Sentinel`], the async [`RedisSentinelStore`] (its
/// sentinels, service and options). A connection asks the sentinels where
/// the master is and checks its role, as the sync store does; a command
/// the old master refuses after a failover (`READONLY`, `NOREPLICAS`, a
/// blocked pop `UNBLOCKED`) did not run, and goes again to the new
/// master, once.
pub type AsyncRedisSentinelStore = AsyncStore<Sentinel>;

/// The topology of an [`AsyncRedisSentinelStore`]: the sentinels, the
/// service, and the connections to its master.
pub struct Sentinel {
    /// The sentinels, service, options and handshake, as the sync store
    /// has them; it finds the master.
    sync: RedisSentinelStore,
    connections: Connections<MultiplexedConnection>,
}

impl fmt::Debug for Sentinel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sentinel")
            .field("sentinels", &self.sync.sentinels())
            .field("service", &self.sync.service())
            .field("options", self.sync.options())
            .finish_non_exhaustive()
    }
}

impl AsyncStore<Sentinel> {
    /// A store for the master of `service`, found through `sentinels`, with
    /// `options`, checked as [`RedisSentinelStore::open_with`] checks them.
    /// Connects to nothing yet.
    pub fn open_with<I>(
        sentinels: I,
        service: &str,
        options: RedisSentinelStoreOptions,
    ) -> Result<Self, StoreError>
    where
        I: IntoIterator,
        I::Item: IntoRedisAddr,
    {
        Self::from_sync(RedisSentinelStore::open_with(sentinels, service, options)?)
    }

    /// A store for a `redis-sentinel://` address, as
    /// [`RedisSentinelStore::open_url`] reads it.
    pub fn open_url(url: &str, options: RedisSentinelStoreOptions) -> Result<Self, StoreError> {
        Self::from_sync(RedisSentinelStore::open_url(url, options)?)
    }

    fn from_sync(sync: RedisSentinelStore) -> Result<Self, StoreError> {
        let options = sync.options();
        let limits = Limits {
            response_timeout: options.response_timeout,
            max_idle: options.max_idle,
            max_connections: options.max_connections,
            pool_timeout: options.pool_timeout,
        };
        let sentinel = Sentinel {
            sync,
            connections: Connections::default(),
        };
        Ok(Self::with_topology(sentinel, limits))
    }

    /// The service's name.
    pub fn service(&self) -> &str {
        self.inner.topology.sync.service()
    }

    /// The options in force.
    pub fn options(&self) -> &RedisSentinelStoreOptions {
        self.inner.topology.sync.options()
    }
}

impl Sentinel {
    /// A connection to the master, found as the sync store finds it.
    async fn open_master(&self) -> Result<MultiplexedConnection, StoreError> {
        let mut search = MasterSearch::new(&self.sync);
        let (handshake, shown) = self.sync.master_handshake();
        let tls = self.sync.master_tls();
        loop {
            let (sync, deadline) = (self.sync.clone(), search.deadline.clone());
            let (host, port) = tokio::task::spawn_blocking(move || sync.ask_sentinels(&deadline))
                .await
                .map_err(|err| StoreError::Connection {
                    addr: shown.to_owned(),
                    message: format!("asking the sentinels failed: {err}"),
                    source: None,
                })?
                .map_err(|err| search.failed(err))?;
            let info = self.sync.master_info(&host, port);
            let left = search.deadline.left().map_err(|err| search.failed(err))?;
            let mut connection = open_multiplexed(info, handshake, tls, left, shown)
                .await
                .map_err(|err| search.failed(err))?;
            let role = redis::cmd("ROLE");
            let left = search.deadline.left().map_err(|err| search.failed(err))?;
            let reply: Vec<Value> =
                match tokio::time::timeout(left, role.query_async(&mut connection)).await {
                    Err(_) => {
                        let timeout = StoreError::Timeout {
                            addr: shown.to_owned(),
                            timeout: left,
                        };
                        return Err(search.failed(timeout));
                    }
                    Ok(reply) => reply.map_err(|err| {
                        search.failed(to_store_error(err, shown.to_owned(), left))
                    })?,
                };
            if is_master(reply) {
                self.sync.note_master(&host, port);
                return Ok(connection);
            }
            tokio::time::sleep(search.named_replica(master_shown(&host, port))?).await;
        }
    }
}

impl Topology for Sentinel {
    type Connection = MultiplexedConnection;

    /// The sync store's search for the master, within the connect
    /// timeout: the sentinels asked on a blocking thread (the sync store's
    /// way), then one connection to the server they name, the handshake
    /// and `ROLE` on it; a replica named means asking again.
    async fn connect(
        &self,
        response_timeout: Option<Duration>,
    ) -> Result<MultiplexedConnection, StoreError> {
        let start = Instant::now();
        let opened = self.open_master().await;
        crate::trace::connected("sentinel (async)", &self.shown_addr(), start, &opened);
        opened.map(|connection| with_response_timeout(connection, response_timeout))
    }

    fn shown_addr(&self) -> String {
        self.sync.master_handshake().1.to_owned()
    }

    fn connections(&self) -> &Connections<MultiplexedConnection> {
        &self.connections
    }

    fn is_gone(&self, err: &RedisError) -> bool {
        err.code().is_some_and(|code| demoted(code, err.detail()))
    }

    async fn scan(store: &AsyncStore<Self>, pattern: &str) -> Result<Vec<String>, StoreError> {
        let mut keys = Vec::new();
        let first = store.query(build::scan(0, pattern)).await?;
        scan_to_end_async(&mut keys, first, |cursor| {
            store.query(build::scan(cursor, pattern))
        })
        .await?;
        Ok(build::sorted_keys(keys))
    }

    async fn ping(store: &AsyncStore<Self>) -> Result<(), StoreError> {
        store.query(redis::cmd("PING")).await
    }
}
