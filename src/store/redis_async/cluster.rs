//! [`Cluster`]: an [`AsyncStore`] on a Redis Cluster.

use std::fmt;
use std::time::{Duration, Instant};

use redis::Value;
use redis::cluster::ClusterConfig;
use redis::cluster_async::ClusterConnection;

use super::super::cluster::{
    RedisClusterStore, RedisClusterStoreOptions, all_masters, master_pages, node_routing,
    parse_page,
};
use super::super::commands::{build, scan_to_end_async};
use super::super::pool::to_store_error;
use super::{AsyncStore, Connections, Limits, Topology};
use crate::StoreError;
use crate::store::addr::{IntoRedisAddr, RedisAddr};

/// The async store on a Redis Cluster: [`AsyncStore`] with the
/// topology [`Cluster`], the async [`RedisClusterStore`] (its seeds and
/// options, `MOVED` and `ASK` followed).
pub type AsyncRedisClusterStore = AsyncStore<Cluster>;

/// The topology of an [`AsyncRedisClusterStore`]: the cluster's client,
/// options and connections.
pub struct Cluster {
    /// The seeds, options and client, as the sync store has them.
    sync: RedisClusterStore,
    connections: Connections<ClusterConnection>,
}

impl fmt::Debug for Cluster {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cluster")
            .field("seeds", &self.sync.seeds())
            .field("options", self.sync.options())
            .finish_non_exhaustive()
    }
}

impl AsyncStore<Cluster> {
    /// A store for the cluster that the `seeds` belong to, with default
    /// options; the seeds as [`RedisClusterStore::open`] takes them.
    /// Connects to nothing yet.
    pub fn open<I>(seeds: I) -> Result<Self, StoreError>
    where
        I: IntoIterator,
        I::Item: IntoRedisAddr,
    {
        Self::open_with(seeds, RedisClusterStoreOptions::default())
    }

    /// A store for the cluster that the `seeds` belong to, with `options`,
    /// checked as [`RedisClusterStore::open_with`] checks them.
    pub fn open_with<I>(seeds: I, options: RedisClusterStoreOptions) -> Result<Self, StoreError>
    where
        I: IntoIterator,
        I::Item: IntoRedisAddr,
    {
        let limits = Limits {
            response_timeout: options.response_timeout,
            max_idle: options.max_idle,
            max_connections: options.max_connections,
            pool_timeout: options.pool_timeout,
        };
        let sync = RedisClusterStore::open_with(seeds, options)?;
        let cluster = Cluster {
            sync,
            connections: Connections::default(),
        };
        Ok(Self::with_topology(cluster, limits))
    }

    /// The seed nodes, as given.
    pub fn seeds(&self) -> &[RedisAddr] {
        self.inner.topology.sync.seeds()
    }

    /// The options in force.
    pub fn options(&self) -> &RedisClusterStoreOptions {
        self.inner.topology.sync.options()
    }

    /// A command routed as `routing` says, on the shared connection.
    async fn route(
        &self,
        command: redis::Cmd,
        routing: redis::cluster_routing::RoutingInfo,
    ) -> Result<Value, StoreError> {
        self.run(|mut connection| {
            let (command, routing) = (command.clone(), routing.clone());
            async move { connection.route_command(command, routing).await }
        })
        .await
    }
}

impl Topology for Cluster {
    type Connection = ClusterConnection;

    /// Opens connections to the masters and reads the slot map, within
    /// the connect timeout and the response timeout together.
    async fn connect(
        &self,
        response_timeout: Option<Duration>,
    ) -> Result<ClusterConnection, StoreError> {
        let (client, shown) = self.sync.client();
        let options = self.sync.options();
        let start = Instant::now();
        let config = ClusterConfig::new()
            .set_connection_timeout(options.connect_timeout)
            .set_response_timeout(response_timeout.unwrap_or(Duration::MAX));
        let bound = options
            .connect_timeout
            .saturating_add(options.response_timeout.unwrap_or(options.connect_timeout));
        let opened = match tokio::time::timeout(
            bound,
            client.get_async_connection_with_config(config),
        )
        .await
        {
            Err(_) => Err(StoreError::Timeout {
                addr: shown.to_owned(),
                timeout: bound,
            }),
            Ok(opened) => opened.map_err(|err| to_store_error(err, shown.to_owned(), bound)),
        };
        crate::trace::connected("cluster (async)", &shown, start, &opened);
        opened
    }

    fn shown_addr(&self) -> String {
        self.sync.client().1.to_owned()
    }

    fn connections(&self) -> &Connections<ClusterConnection> {
        &self.connections
    }

    /// The first page from every master at once, then each master's own
    /// cursor to its end, as the sync store does.
    async fn scan(store: &AsyncStore<Self>, pattern: &str) -> Result<Vec<String>, StoreError> {
        let shown = store.shown_addr();
        let pages = store.route(build::scan(0, pattern), all_masters()).await?;
        let mut keys = Vec::new();
        for (node, first) in master_pages(&shown, pages)? {
            let routing = node_routing(&shown, &node)?;
            scan_to_end_async(&mut keys, first, |cursor| {
                let (routing, node, shown) = (routing.clone(), node.clone(), shown.clone());
                async move {
                    let page = store.route(build::scan(cursor, pattern), routing).await?;
                    parse_page(&shown, &node, page)
                }
            })
            .await?;
        }
        Ok(build::sorted_keys(keys))
    }

    /// Every master must answer: a channel's two lists may be on any two.
    async fn ping(store: &AsyncStore<Self>) -> Result<(), StoreError> {
        store
            .route(redis::cmd("PING"), all_masters())
            .await
            .map(drop)
    }
}
