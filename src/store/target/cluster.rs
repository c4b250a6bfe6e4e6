//! `Cluster`: a Redis Cluster, its slot map learnt from `CLUSTER SLOTS`
//! and kept up to date by redirections, and [`RedisClusterStoreOptions`].

use std::collections::HashMap;
use std::fmt;
use std::sync::{PoisonError, RwLock};
use std::time::Duration;

use super::endpoint::{Endpoint, Place, Tls, parse_url};
use super::{
    Ask, Dialing, Located, NodeDial, PoolOptions, Settings, Setup, Target, Verdict,
    client_id_request, common_verdict, handshake,
};
use crate::store::StoreError;
use crate::store::addr::{IntoRedisAddr, RedisAddr, addr_list};
use crate::store::auth::RedisAuth;
use crate::store::lease::keys::hash_tag;
use crate::store::protocol::resp::Reply;
use crate::store::protocol::{Node, Request, Route};
use crate::tls::TlsOptions;

/// How many hash slots a cluster has.
const SLOTS: usize = 16384;

/// Settings of a [`RedisClusterStore`](crate::RedisClusterStore) (and of
/// the async one). `Default` gives the documented values.
///
/// Two option sets are equal when every field is;
/// [`get_cluster_client_with`](crate::get_cluster_client_with) hands out
/// one store per seed set and options. `Debug` never shows a password.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RedisClusterStoreOptions {
    /// How long opening a connection to one node may take. Default: 1 s.
    pub connect_timeout: Duration,
    /// How long a non-blocking command may wait for one node's answer;
    /// `None` waits without limit. A blocking receive waits its own
    /// timeout plus this. Default: 5 s.
    pub response_timeout: Option<Duration>,
    /// The connections of each node.
    pub pool: PoolOptions,
    /// How many redirections (`MOVED`, `ASK`) and `TRYAGAIN` or
    /// `CLUSTERDOWN` answers a call follows before it fails. Default: 5.
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
        // The timeouts and pool of one server's options.
        let server = crate::RedisStoreOptions::default();
        Self {
            connect_timeout: server.connect_timeout,
            response_timeout: server.response_timeout,
            pool: server.pool,
            retries: 5,
            tls: None,
            auth: None,
        }
    }
}

/// A Redis Cluster: its seeds, the set-up of its connections, and the
/// slot map as learnt so far.
pub struct Cluster {
    seeds: Vec<RedisAddr>,
    options: RedisClusterStoreOptions,
    settings: Settings,
    /// The seeds as nodes, in the order given.
    seed_nodes: Vec<Node>,
    tls: Tls,
    /// AUTH.
    handshake: Vec<(Ask, Vec<u8>)>,
    layout: RwLock<Layout>,
}

/// The slot map, and where each node is.
#[derive(Default)]
struct Layout {
    /// The master of each slot; empty until learnt.
    slots: Vec<Option<Node>>,
    masters: Vec<Node>,
    endpoints: HashMap<Node, Endpoint>,
}

impl Cluster {
    /// The cluster of the `seeds`, with `options` checked.
    pub(crate) fn new<I>(seeds: I, options: RedisClusterStoreOptions) -> Result<Self, StoreError>
    where
        I: IntoIterator,
        I::Item: IntoRedisAddr,
    {
        let (seeds, list) = addr_list(seeds)?;
        let refuse = |addr: &RedisAddr, message: &str| StoreError::InvalidAddress {
            addr: addr.to_string(),
            message: message.into(),
        };
        if seeds.is_empty() {
            return Err(StoreError::InvalidAddress {
                addr: String::new(),
                message: "a cluster needs at least one seed node".into(),
            });
        }
        let mut parsed = Vec::with_capacity(seeds.len());
        for seed in &seeds {
            let url = parse_url(seed.url()).map_err(|message| refuse(seed, &message))?;
            if matches!(url.endpoint.place, Place::Unix(_)) {
                return Err(refuse(seed, "a cluster's nodes are reached over TCP"));
            }
            if url.db != 0 {
                return Err(refuse(seed, "a cluster has only database 0"));
            }
            parsed.push(url);
        }
        let tls = parsed[0].endpoint.tls;
        if parsed.iter().any(|url| url.endpoint.tls != tls) {
            return Err(StoreError::InvalidAddress {
                addr: list,
                message: "the seeds are all rediss:// (TLS) addresses or all redis:// ones".into(),
            });
        }
        let settings = Settings::new(
            list,
            options.connect_timeout,
            options.response_timeout,
            options.pool,
            tls,
            options.tls.as_ref(),
        )?;
        let handshake = match &options.auth {
            Some(auth) => handshake(auth.username.as_deref(), Some(&auth.password), 0),
            None => handshake(
                parsed[0].username.as_deref(),
                parsed[0].password.as_deref(),
                0,
            ),
        };
        let mut layout = Layout::default();
        let mut seed_nodes = Vec::new();
        for url in parsed {
            let node = Node::new(url.endpoint.to_string());
            layout.endpoints.insert(node.clone(), url.endpoint);
            if !seed_nodes.contains(&node) {
                seed_nodes.push(node);
            }
        }
        Ok(Self {
            seeds,
            options,
            settings,
            seed_nodes,
            tls,
            handshake,
            layout: RwLock::new(layout),
        })
    }

    /// The seed nodes, as given.
    pub(crate) fn seeds(&self) -> &[RedisAddr] {
        &self.seeds
    }

    /// The options in force.
    pub(crate) fn options(&self) -> &RedisClusterStoreOptions {
        &self.options
    }

    fn layout(&self) -> std::sync::RwLockReadGuard<'_, Layout> {
        self.layout.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn layout_mut(&self) -> std::sync::RwLockWriteGuard<'_, Layout> {
        self.layout.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// The node at `host:port`, as this cluster reaches it.
    fn node_at(&self, host: &str, port: u16) -> (Node, Endpoint) {
        let endpoint = Endpoint::tcp(host, port, self.tls);
        (Node::new(endpoint.to_string()), endpoint)
    }

    /// The node a redirection names (`host:port`; an empty host is the
    /// host of the node that answered).
    fn named(&self, answered: &Node, named: &str) -> Option<(Node, Endpoint)> {
        let (host, port) = named.rsplit_once(':')?;
        let port: u16 = port.parse().ok().filter(|port| *port != 0)?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let host = match host {
            "" => {
                let layout = self.layout();
                match &layout.endpoints.get(answered)?.place {
                    Place::Tcp { host, .. } => host.clone(),
                    Place::Unix(_) => return None,
                }
            }
            host => host.to_owned(),
        };
        Some(self.node_at(&host, port))
    }
}

impl fmt::Debug for Cluster {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisClusterStore")
            .field("seeds", &self.seeds)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

/// The hash slot of `key`, as Redis Cluster computes it: CRC16 (XMODEM)
/// of its hash tag, or of the whole key.
pub(crate) fn key_slot(key: &str) -> u16 {
    let hashed = hash_tag(key).unwrap_or(key);
    let mut crc: u16 = 0;
    for byte in hashed.bytes() {
        crc ^= u16::from(byte) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc % SLOTS as u16
}

/// A `CLUSTER SLOTS` reply as (first slot, last slot, master host, port).
fn slot_ranges(reply: Reply) -> Result<Vec<(usize, usize, String, u16)>, String> {
    let Reply::Array(ranges) = reply else {
        return Err(format!("{reply:?}, not an array of slot ranges"));
    };
    let mut found = Vec::with_capacity(ranges.len());
    for range in ranges {
        let Reply::Array(items) = range else {
            return Err("a slot range that is not an array".into());
        };
        let mut items = items.into_iter();
        let slot = |item: Option<Reply>| match item {
            Some(Reply::Int(slot)) => usize::try_from(slot)
                .ok()
                .filter(|slot| *slot < SLOTS)
                .ok_or_else(|| format!("slot {slot} out of range")),
            other => Err(format!("{other:?} where a slot belongs")),
        };
        let (first, last) = (slot(items.next())?, slot(items.next())?);
        if first > last {
            return Err(format!("a slot range from {first} down to {last}"));
        }
        let Some(Reply::Array(master)) = items.next() else {
            return Err("a slot range without its master".into());
        };
        let mut master = master.into_iter();
        let host = match master.next() {
            Some(Reply::Bulk(host)) => {
                String::from_utf8(host).map_err(|_| "a master host that is not UTF-8".to_owned())?
            }
            Some(Reply::Nil) => String::new(),
            other => return Err(format!("{other:?} where a host belongs")),
        };
        let port = match master.next() {
            Some(Reply::Int(port)) => u16::try_from(port)
                .ok()
                .filter(|port| *port != 0)
                .ok_or_else(|| format!("port {port} out of range"))?,
            other => return Err(format!("{other:?} where a port belongs")),
        };
        found.push((first, last, host, port));
    }
    Ok(found)
}

impl Target for Cluster {
    fn settings(&self) -> &Settings {
        &self.settings
    }

    fn locate(&self, route: &Route) -> Located {
        let layout = self.layout();
        match route {
            Route::Node(node) => Located::Node(node.clone()),
            Route::Key(key) => match layout.slots.get(usize::from(key_slot(key))) {
                Some(Some(node)) => Located::Node(node.clone()),
                _ => Located::Unknown,
            },
            Route::EveryMaster if layout.masters.is_empty() => Located::Unknown,
            Route::EveryMaster => Located::Nodes(layout.masters.clone()),
        }
    }

    fn map_request(&self) -> Option<(Request, Vec<Node>)> {
        let layout = self.layout();
        let mut sources = layout.masters.clone();
        for seed in &self.seed_nodes {
            if !sources.contains(seed) {
                sources.push(seed.clone());
            }
        }
        Some((Request::new(&["CLUSTER", "SLOTS"]), sources))
    }

    fn learn_map(&self, node: &Node, reply: Reply) -> Result<(), String> {
        let ranges = slot_ranges(reply)?;
        if ranges.is_empty() {
            return Err("no slot served (is the cluster set up?)".into());
        }
        let answered_host = match self.layout().endpoints.get(node).map(|e| e.place.clone()) {
            Some(Place::Tcp { host, .. }) => host,
            _ => String::new(),
        };
        let mut slots = vec![None; SLOTS];
        let mut masters: Vec<Node> = Vec::new();
        let mut endpoints = HashMap::new();
        for (first, last, host, port) in ranges {
            let host = if host.is_empty() || host == "?" {
                answered_host.clone()
            } else {
                host
            };
            let (master, endpoint) = self.node_at(&host, port);
            for slot in &mut slots[first..=last] {
                *slot = Some(master.clone());
            }
            if !masters.contains(&master) {
                masters.push(master.clone());
            }
            endpoints.insert(master, endpoint);
        }
        let mut layout = self.layout_mut();
        for seed in &self.seed_nodes {
            if let Some(endpoint) = layout.endpoints.get(seed).cloned() {
                endpoints.entry(seed.clone()).or_insert(endpoint);
            }
        }
        *layout = Layout {
            slots,
            masters,
            endpoints,
        };
        Ok(())
    }

    fn max_redirects(&self) -> u32 {
        self.options.retries.max(1)
    }

    fn verdict(&self, node: &Node, message: &str) -> Verdict {
        if let Some(verdict) = common_verdict(message) {
            return verdict;
        }
        let mut words = message.split_whitespace();
        match (words.next(), words.next(), words.next()) {
            (Some("MOVED"), Some(slot), Some(named)) => {
                match (slot.parse::<u16>(), self.named(node, named)) {
                    (Ok(slot), Some((node, endpoint))) if usize::from(slot) < SLOTS => {
                        self.layout_mut()
                            .endpoints
                            .entry(node.clone())
                            .or_insert(endpoint);
                        Verdict::Moved { slot, node }
                    }
                    _ => Verdict::Refused,
                }
            }
            (Some("ASK"), Some(_), Some(named)) => match self.named(node, named) {
                Some((node, endpoint)) => {
                    self.layout_mut()
                        .endpoints
                        .entry(node.clone())
                        .or_insert(endpoint);
                    Verdict::Ask { node }
                }
                None => Verdict::Refused,
            },
            (Some("TRYAGAIN" | "CLUSTERDOWN"), _, _) => Verdict::TryAgain,
            _ => Verdict::Refused,
        }
    }

    fn moved(&self, slot: u16, node: &Node) {
        let mut layout = self.layout_mut();
        if let Some(entry) = layout.slots.get_mut(usize::from(slot)) {
            *entry = Some(node.clone());
        }
        if !layout.slots.is_empty() && !layout.masters.contains(node) {
            layout.masters.push(node.clone());
        }
    }

    fn dial(&self, node: &Node, want_id: bool) -> impl Dialing + Send + '_ {
        let endpoint = self
            .layout()
            .endpoints
            .get(node)
            .cloned()
            .unwrap_or_else(|| {
                // A node known by name only: `host:port`.
                match node.name().rsplit_once(':') {
                    Some((host, port)) => Endpoint::tcp(
                        host.trim_start_matches('[').trim_end_matches(']'),
                        port.parse().unwrap_or(0),
                        self.tls,
                    ),
                    None => Endpoint::tcp(node.name(), 0, self.tls),
                }
            });
        let mut requests = self.handshake.clone();
        if want_id {
            requests.push(client_id_request());
        }
        NodeDial {
            setup: Setup::new(endpoint, requests, self.settings.deadline()),
            shown: self.settings.shown.clone(),
            node: node.name().to_owned(),
            timeout: self.settings.connect_timeout,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_redis_clusters() {
        // Values from the Redis Cluster specification and redis-cli.
        assert_eq!(key_slot("123456789"), 0x31C3);
        assert_eq!(key_slot("foo"), 12182);
        assert_eq!(key_slot("{user1000}.following"), key_slot("user1000"));
        assert_eq!(key_slot("foo{}{bar}"), key_slot("foo{}{bar}"));
        assert_eq!(key_slot(""), 0);
    }

    #[test]
    fn a_slot_map_is_read_and_a_broken_one_refused() {
        let node = |host: &str, port: i64| {
            Reply::Array(vec![
                Reply::Bulk(host.as_bytes().to_vec()),
                Reply::Int(port),
            ])
        };
        let reply = Reply::Array(vec![
            Reply::Array(vec![
                Reply::Int(0),
                Reply::Int(8191),
                node("10.0.0.1", 7000),
            ]),
            Reply::Array(vec![Reply::Int(8192), Reply::Int(16383), node("", 7001)]),
        ]);
        let ranges = slot_ranges(reply).unwrap();
        assert_eq!(ranges[0], (0, 8191, "10.0.0.1".into(), 7000));
        assert_eq!(ranges[1], (8192, 16383, String::new(), 7001));
        for broken in [
            Reply::Int(1),
            Reply::Array(vec![Reply::Int(1)]),
            Reply::Array(vec![Reply::Array(vec![
                Reply::Int(5),
                Reply::Int(1),
                node("h", 1),
            ])]),
            Reply::Array(vec![Reply::Array(vec![
                Reply::Int(0),
                Reply::Int(16384),
                node("h", 1),
            ])]),
            Reply::Array(vec![Reply::Array(vec![
                Reply::Int(0),
                Reply::Int(1),
                node("h", 0),
            ])]),
            Reply::Array(vec![Reply::Array(vec![Reply::Int(0), Reply::Int(1)])]),
        ] {
            assert!(slot_ranges(broken).is_err());
        }
    }
}
