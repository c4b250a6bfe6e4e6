//! [`RedisClusterStore`]: the [`ListStore`] on a Redis Cluster, via the
//! `redis` crate's synchronous cluster client.
//!
//! Every channel operation touches one key, so every command goes to the
//! one master that owns the key's slot; the driver follows `MOVED` and
//! `ASK` redirections and reloads the slot map when it changes. The two
//! lists of a channel (`<name>/client`, `<name>/server`) usually hash to
//! different slots and so may live on different masters.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use redis::cluster::{ClusterClient, ClusterConnection};
use redis::cluster_routing::{MultipleNodeRoutingInfo, RoutingInfo, SingleNodeRoutingInfo};
use redis::{RedisError, Value};

use super::addr::{IntoRedisAddr, RedisAddr, addr_list};
use super::auth::RedisAuth;
use super::commands::lease::connector_lease_store;
use super::commands::{Connector, ScanPage, build, connector_list_store_methods, scan_to_end};
use super::pool::{Pool, Wait, pool_limits, to_store_error};
use super::{ListStore, StoreError};
use crate::host::split_host_port;
use crate::tls::TlsOptions;

/// Settings of a [`RedisClusterStore`]. `Default` gives the documented
/// values.
///
/// Two option sets are equal when every field is;
/// [`get_cluster_client_with`] hands out one store per seed set and
/// options.
///
/// [`get_cluster_client_with`]: crate::get_cluster_client_with
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RedisClusterStoreOptions {
    /// How long opening a connection to one node may take. Default: 1 s.
    pub connect_timeout: Duration,
    /// How long a non-blocking command may wait for one node's answer;
    /// `None` waits without limit. A blocking pop waits its own timeout plus
    /// this. Default: 5 s.
    pub response_timeout: Option<Duration>,
    /// How many cluster connections (each one socket per node) are kept
    /// idle for reuse. A value above `max_connections` keeps at most
    /// `max_connections`. Default: 16.
    pub max_idle: usize,
    /// How many cluster connections the store may have at once: idle ones,
    /// ones in use, and ones being opened. Each holds at most one socket
    /// per node, so a node sees at most this many connections from the
    /// store. Each call holds one while it runs, and each blocked receive
    /// holds one for as long as it waits, so this also bounds how many
    /// receives can block at once: a call past the cap waits
    /// `pool_timeout` for a connection to come back.
    ///
    /// Default: 64, four times `max_idle`: room for dozens of threads
    /// blocked in receives beside the senders, while a hundred processes
    /// stay well below Redis's default `maxclients` of 10,000 per node. 0
    /// is refused by [`RedisClusterStore::open_with`].
    pub max_connections: usize,
    /// How long a call waits for a connection when `max_connections` are
    /// in use, before it fails with [`StoreError::PoolExhausted`] (which
    /// names the cap and this timeout; nothing was sent). `Duration::ZERO`
    /// fails at once; 100 years and more (`Duration::MAX`) waits without
    /// limit. Default: 5 s.
    pub pool_timeout: Duration,
    /// How many times the driver sends a command again after a redirection
    /// (`MOVED`, `ASK`), a `TRYAGAIN` or `CLUSTERDOWN` answer, or a broken
    /// node connection. A call that meets no answer at all may so wait
    /// `(retries + 1)` response timeouts. Default: 5.
    pub retries: u32,
    /// The certificates of `rediss://` seeds (feature `tls-rustls`), used
    /// for every node: `None` trusts the system's roots and presents no
    /// client certificate. Given for `redis://` seeds, the store refuses
    /// to open. Default: `None`.
    pub tls: Option<TlsOptions>,
    /// A username and password for every node, in place of any the seeds
    /// hold. Default: `None` (the first seed's, if any).
    pub auth: Option<RedisAuth>,
}

impl Default for RedisClusterStoreOptions {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(1),
            response_timeout: Some(Duration::from_secs(5)),
            max_idle: 16,
            max_connections: 64,
            pool_timeout: Duration::from_secs(5),
            retries: 5,
            tls: None,
            auth: None,
        }
    }
}

/// A [`ListStore`] on a Redis Cluster.
///
/// - Opening it connects to nothing. The first call connects to one of the
///   seed nodes, loads the slot map (`CLUSTER SLOTS`) and connects to the
///   nodes it names. Such a cluster connection is kept in a small pool and
///   reused; a thread that needs one while all are busy opens another, so a
///   blocked [`blocking_pop`](ListStore::blocking_pop) never stalls other
///   calls, up to
///   [`max_connections`](RedisClusterStoreOptions::max_connections) (64)
///   in all: past that, a call waits up to
///   [`pool_timeout`](RedisClusterStoreOptions::pool_timeout) (5 s) for
///   another to give its connection back, then fails with
///   [`StoreError::PoolExhausted`].
/// - Each operation is one command on one key, sent to the master of the
///   key's slot. `push` with a TTL and `take_last` are one Lua script each
///   (`EVALSHA`, the same scripts as [`RedisStore`](crate::RedisStore)'s),
///   atomic, one round trip, and redirected like any keyed command.
///   (`MULTI`/`EXEC` would not roll back a failed step, and a `MOVED`
///   inside a transaction comes back as `EXECABORT`, which the driver does
///   not follow.)
/// - [`scan`](ListStore::scan) runs `SCAN` on every master, each to its own
///   end.
/// - After a failover (a replica promoted in place of a dead master) or a
///   resharding, the driver follows the redirections; a pooled connection
///   that still routes to a dead node is dropped with the rest of the pool,
///   and the command sent once more on a fresh connection, which loads the
///   current slot map from the seeds. Until the cluster has promoted a
///   replica, calls on the dead master's slots fail with
///   [`StoreError::Connection`] (or [`StoreError::Timeout`]).
/// - After `fork()`, the child never uses the parent's sockets.
///
/// Clones share one pool. [`get_cluster_client`](crate::get_cluster_client)
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
#[derive(Clone)]
pub struct RedisClusterStore {
    inner: Arc<Inner>,
}

struct Inner {
    client: ClusterClient,
    seeds: Vec<RedisAddr>,
    /// The seeds as shown in errors, passwords hidden.
    shown: String,
    options: RedisClusterStoreOptions,
    pool: Pool<ClusterConnection>,
}

impl RedisClusterStore {
    /// A store for the cluster that the `seeds` belong to, with default
    /// options. Connects to nothing yet.
    ///
    /// Each seed is anything [`IntoRedisAddr`] takes (a port, `(host,
    /// port)`, `"host:port"`, a `redis://` or `rediss://` URL); a few nodes
    /// are enough, the others are learnt from the cluster. A password or
    /// TLS setting is taken from the first seed.
    pub fn open<I>(seeds: I) -> Result<Self, StoreError>
    where
        I: IntoIterator,
        I::Item: IntoRedisAddr,
    {
        Self::open_with(seeds, RedisClusterStoreOptions::default())
    }

    /// A store for the cluster of the `seeds` with `options`. A
    /// `max_connections` of 0 is refused ([`StoreError::InvalidAddress`],
    /// naming the option).
    pub fn open_with<I>(seeds: I, options: RedisClusterStoreOptions) -> Result<Self, StoreError>
    where
        I: IntoIterator,
        I::Item: IntoRedisAddr,
    {
        let (seeds, shown) = addr_list(seeds)?;
        if seeds.is_empty() {
            return Err(StoreError::InvalidAddress {
                addr: shown,
                message: "a cluster needs at least one seed node".into(),
            });
        }
        if let Some(unix) = seeds.iter().find(|seed| {
            ["unix:", "redis+unix:"]
                .iter()
                .any(|scheme| seed.url().starts_with(scheme))
        }) {
            return Err(StoreError::InvalidAddress {
                addr: unix.to_string(),
                message: "cluster nodes are reached over tcp, not unix sockets".into(),
            });
        }
        let limits = pool_limits(
            shown.clone(),
            options.max_idle,
            options.max_connections,
            options.pool_timeout,
        )?;
        let mut builder = ClusterClient::builder(seeds.iter().map(RedisAddr::url))
            .connection_timeout(options.connect_timeout)
            .retries(options.retries);
        if let Some(auth) = &options.auth {
            builder = builder.password(auth.password.clone());
            if let Some(username) = &auth.username {
                builder = builder.username(username.clone());
            }
        }
        let tls = seeds.iter().any(|seed| seed.url().starts_with("rediss:"));
        builder = cluster_tls(builder, tls, options.tls.as_ref()).map_err(|message| {
            StoreError::InvalidAddress {
                addr: shown.clone(),
                message,
            }
        })?;
        if let Some(timeout) = options.response_timeout {
            builder = builder.response_timeout(timeout);
        }
        let client = builder.build().map_err(|err| StoreError::InvalidAddress {
            addr: shown.clone(),
            message: err.to_string(),
        })?;
        Ok(Self {
            inner: Arc::new(Inner {
                client,
                seeds,
                shown,
                pool: Pool::new(limits),
                options,
            }),
        })
    }

    /// The seed nodes, as given.
    pub fn seeds(&self) -> &[RedisAddr] {
        &self.inner.seeds
    }

    /// The options in force.
    pub fn options(&self) -> &RedisClusterStoreOptions {
        &self.inner.options
    }

    /// The cluster client, and the seeds as shown in errors.
    #[cfg(feature = "tokio")]
    pub(crate) fn client(&self) -> (&ClusterClient, &str) {
        (&self.inner.client, &self.inner.shown)
    }

    /// Whether `self` and `other` are the same handle (clones of one store).
    pub fn ptr_eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    fn error(&self, err: RedisError, timeout: Duration) -> StoreError {
        to_store_error(err, self.inner.shown.clone(), timeout)
    }

    /// One `SCAN` page on the node at `node` (`host:port`).
    fn scan_node(&self, node: &str, cursor: u64, pattern: &str) -> Result<ScanPage, StoreError> {
        let routing = node_routing(&self.inner.shown, node)?;
        let scan = build::scan(cursor, pattern);
        let page = self.run(Wait::Response, |c| c.route_command(&scan, routing.clone()))?;
        self.parse_page(node, page)
    }

    fn parse_page(&self, node: &str, page: Value) -> Result<ScanPage, StoreError> {
        parse_page(&self.inner.shown, node, page)
    }
}

/// One `SCAN` page that the node at `node` answered.
pub(crate) fn parse_page(shown: &str, node: &str, page: Value) -> Result<ScanPage, StoreError> {
    redis::from_redis_value(page).map_err(|err| StoreError::Command {
        addr: shown.to_owned(),
        message: format!("unexpected scan reply from {node}: {err}"),
    })
}

/// The routing of a command to the node at `node` (`host:port`), as a
/// cluster names its nodes.
pub(crate) fn node_routing(shown: &str, node: &str) -> Result<RoutingInfo, StoreError> {
    let (host, port) = split_host_port(node)
        .ok()
        .ok_or_else(|| StoreError::Command {
            addr: shown.to_owned(),
            message: format!("the cluster named a node without a port: {node:?}"),
        })?;
    Ok(RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress {
        host: host.to_owned(),
        port,
    }))
}

/// The first `SCAN` page of every master, by node, from the answer to a
/// scan routed to all masters.
pub(crate) fn master_pages(
    shown: &str,
    pages: Value,
) -> Result<Vec<(String, ScanPage)>, StoreError> {
    let Value::Map(pages) = pages else {
        return Err(StoreError::Command {
            addr: shown.to_owned(),
            message: format!("unexpected reply to a scan of every master: {pages:?}"),
        });
    };
    pages
        .into_iter()
        .map(|(node, page)| {
            let node: String =
                redis::from_redis_value(node).map_err(|err| StoreError::Command {
                    addr: shown.to_owned(),
                    message: format!("unexpected node name in a scan reply: {err}"),
                })?;
            let page = parse_page(shown, &node, page)?;
            Ok((node, page))
        })
        .collect()
}

/// Every master.
pub(crate) fn all_masters() -> RoutingInfo {
    RoutingInfo::MultiNode((MultipleNodeRoutingInfo::AllMasters, None))
}

impl Connector for RedisClusterStore {
    type Connection = ClusterConnection;

    fn pool(&self) -> &Pool<ClusterConnection> {
        &self.inner.pool
    }

    fn connect(&self) -> Result<ClusterConnection, StoreError> {
        let start = std::time::Instant::now();
        let opened = self
            .inner
            .client
            .get_connection()
            .map_err(|err| self.error(err, self.inner.options.connect_timeout))
            .and_then(|connection| {
                connection
                    .set_write_timeout(self.inner.options.response_timeout)
                    .map_err(|err| self.error(err, Duration::ZERO))?;
                Ok(connection)
            });
        crate::trace::connected("cluster", &self.inner.shown, start, &opened);
        opened
    }

    fn response_timeout(&self) -> Option<Duration> {
        self.inner.options.response_timeout
    }

    fn shown_addr(&self) -> String {
        self.inner.shown.clone()
    }
}

impl fmt::Debug for RedisClusterStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisClusterStore")
            .field("seeds", &self.inner.seeds)
            .field("options", &self.inner.options)
            .finish_non_exhaustive()
    }
}

connector_lease_store!(RedisClusterStore);

impl ListStore for RedisClusterStore {
    connector_list_store_methods!();

    fn scan(&self, pattern: &str) -> Result<Vec<String>, StoreError> {
        // The first page from every master at once; the masters' addresses
        // come with it. Each master then runs its own cursor to the end.
        let first = build::scan(0, pattern);
        let routing = all_masters();
        let pages = self.run(Wait::Response, |c| c.route_command(&first, routing.clone()))?;
        let mut keys = Vec::new();
        for (node, first) in master_pages(&self.inner.shown, pages)? {
            scan_to_end(&mut keys, first, |cursor| {
                self.scan_node(&node, cursor, pattern)
            })?;
        }
        Ok(build::sorted_keys(keys))
    }

    fn ping(&self) -> Result<(), StoreError> {
        // Every master must answer: a channel's two lists may be on any two.
        let ping = redis::cmd("PING");
        let routing = all_masters();
        self.run(Wait::Response, |c| c.route_command(&ping, routing.clone()))
            .map(drop)
    }
}

/// `builder` with the certificates of `options` when the seeds are TLS;
/// why not, when the seeds and the options disagree or the build has no TLS.
fn cluster_tls(
    builder: redis::cluster::ClusterClientBuilder,
    tls: bool,
    options: Option<&TlsOptions>,
) -> Result<redis::cluster::ClusterClientBuilder, String> {
    if !tls {
        return match options {
            Some(_) => Err("TLS options are for rediss:// seeds".into()),
            None => Ok(builder),
        };
    }
    #[cfg(feature = "tls-rustls")]
    {
        crate::tls::install_crypto_provider();
        match options {
            None => Ok(builder),
            Some(options) => {
                options.check()?;
                Ok(builder.certs(options.certificates()))
            }
        }
    }
    #[cfg(not(feature = "tls-rustls"))]
    {
        let _ = (builder, options);
        Err("rediss:// seeds need the feature tls-rustls".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_are_checked_before_anything_connects() {
        let none: [&str; 0] = [];
        let err = RedisClusterStore::open(none).unwrap_err();
        assert!(matches!(err, StoreError::InvalidAddress { .. }), "{err}");
        for unix in ["unix:///tmp/r.sock", "redis+unix:///tmp/r.sock"] {
            let err = RedisClusterStore::open(["127.0.0.1:1", unix]).unwrap_err();
            assert!(err.to_string().contains("unix"), "{err}");
        }
        let err = RedisClusterStore::open(["nohost"]).unwrap_err();
        assert!(matches!(err, StoreError::InvalidAddress { .. }), "{err}");
        let store = RedisClusterStore::open([7000, 7001]).unwrap();
        assert_eq!(store.seeds().len(), 2);
        assert!(store.ptr_eq(&store.clone()));
        assert!(!format!("{store:?}").is_empty());
    }

    #[test]
    fn nothing_listening_is_a_connection_error_naming_the_seeds() {
        let options = RedisClusterStoreOptions {
            connect_timeout: Duration::from_millis(200),
            ..RedisClusterStoreOptions::default()
        };
        let store = RedisClusterStore::open_with(["redis://:s3cret@127.0.0.1:1/"], options)
            .expect("a valid seed");
        let err = store.pop("/k/client").unwrap_err();
        assert!(err.is_connection(), "{err:?}");
        assert!(err.to_string().contains("127.0.0.1:1"), "{err}");
        assert!(!err.to_string().contains("s3cret"), "{err}");
    }
}
