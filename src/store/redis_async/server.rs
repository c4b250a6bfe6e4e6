//! [`Server`]: an [`AsyncStore`] on one Redis server.

use std::fmt;
use std::future::Future;
use std::time::{Duration, Instant};

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Cmd, ConnectionInfo, RedisError};

use super::super::commands::{build, scan_to_end_async};
use super::super::pool::to_store_error;
use super::super::redis::{RedisStore, RedisStoreOptions};
use super::{AsyncStore, Connections, Limits, Topology};
use crate::StoreError;
use crate::store::addr::{IntoRedisAddr, RedisAddr};

/// The topology of an [`AsyncRedisStore`](super::AsyncRedisStore), on one server:
/// its address, options and connections.
pub struct Server {
    /// The parsed address and options, and the handshake, as the sync
    /// store has them.
    sync: RedisStore,
    connections: Connections<MultiplexedConnection>,
}

impl fmt::Debug for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server")
            .field("addr", self.sync.addr())
            .field("options", self.sync.options())
            .finish_non_exhaustive()
    }
}

impl AsyncStore<Server> {
    /// A store for the Redis at `addr`, with default options. Connects to
    /// nothing yet.
    pub fn open(addr: impl IntoRedisAddr) -> Result<Self, StoreError> {
        Self::open_with(addr, RedisStoreOptions::default())
    }

    /// A store for the Redis at `addr` with `options`, checked as
    /// [`RedisStore::open_with`] checks them. Connects to nothing yet.
    pub fn open_with(
        addr: impl IntoRedisAddr,
        options: RedisStoreOptions,
    ) -> Result<Self, StoreError> {
        let limits = Limits {
            response_timeout: options.response_timeout,
            max_idle: options.max_idle,
            max_connections: options.max_connections,
            pool_timeout: options.pool_timeout,
        };
        let sync = RedisStore::open_with(addr, options)?;
        let server = Server {
            sync,
            connections: Connections::default(),
        };
        Ok(Self::with_topology(server, limits))
    }

    /// The server's address.
    pub fn addr(&self) -> &RedisAddr {
        self.inner.topology.sync.addr()
    }

    /// The options in force.
    pub fn options(&self) -> &RedisStoreOptions {
        self.inner.topology.sync.options()
    }
}

/// A multiplexed connection to `info`, with the AUTH/SELECT `handshake`
/// (and a PING, to make a TLS handshake happen, when there is none), all
/// within `timeout`; `shown` names the server in errors.
pub(super) async fn open_multiplexed(
    info: ConnectionInfo,
    handshake: &[Cmd],
    tls: bool,
    timeout: Duration,
    shown: &str,
) -> Result<MultiplexedConnection, StoreError> {
    let open = async {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout));
        let mut connection = redis::Client::open(info)?
            .get_multiplexed_async_connection_with_config(&config)
            .await?;
        for command in handshake {
            command.query_async::<()>(&mut connection).await?;
        }
        if tls && handshake.is_empty() {
            redis::cmd("PING")
                .query_async::<()>(&mut connection)
                .await?;
        }
        Ok::<_, RedisError>(connection)
    };
    match tokio::time::timeout(timeout, open).await {
        Err(_) => Err(StoreError::Timeout {
            addr: shown.to_owned(),
            timeout,
        }),
        Ok(opened) => opened.map_err(|err| to_store_error(err, shown.to_owned(), timeout)),
    }
}

/// `connection`, whose handshake ran on the connect timeout, with the
/// response timeout of its commands (`None`: never).
pub(super) fn with_response_timeout(
    mut connection: MultiplexedConnection,
    response_timeout: Option<Duration>,
) -> MultiplexedConnection {
    connection.set_response_timeout(response_timeout.unwrap_or(Duration::MAX));
    connection
}

impl Topology for Server {
    type Connection = MultiplexedConnection;

    /// Opens a connection within the connect timeout, handshake included.
    async fn connect(
        &self,
        response_timeout: Option<Duration>,
    ) -> Result<MultiplexedConnection, StoreError> {
        let (info, handshake, tls) = self.sync.connection_parts();
        let timeout = self.sync.options().connect_timeout;
        let start = Instant::now();
        let opened =
            open_multiplexed(info.clone(), handshake, tls, timeout, &self.shown_addr()).await;
        crate::trace::connected("redis (async)", self.sync.addr(), start, &opened);
        opened.map(|connection| with_response_timeout(connection, response_timeout))
    }

    fn shown_addr(&self) -> String {
        self.sync.addr().to_string()
    }

    fn connections(&self) -> &Connections<MultiplexedConnection> {
        &self.connections
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

    fn ping(store: &AsyncStore<Self>) -> impl Future<Output = Result<(), StoreError>> + Send {
        store.query(redis::cmd("PING"))
    }
}
