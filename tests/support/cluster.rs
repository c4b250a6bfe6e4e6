//! [`RedisCluster`]: a private Redis Cluster on loopback, and its
//! [`ClusterBackend`].

use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use redis::ConnectionLike;
use redisutil::{RedisClusterStore, wait_serve};

use super::free_port;
use super::process::{Guarded, check_installed};

/// One redis-server of a [`RedisCluster`]; the guard removes its
/// directory once it is dead.
struct Node {
    port: u16,
    /// The TLS port of a node of a TLS cluster (`tls-cluster yes`), which
    /// also keeps its plain `port` for the tests' own connections.
    tls_port: Option<u16>,
    process: Guarded,
}

impl Node {
    /// Starts a cluster-enabled server on a free port; `None` if it
    /// did not come up (the port was taken meanwhile).
    fn start(node_timeout: Duration, tls: bool) -> Option<Self> {
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let port = free_port();
        let bus_port = free_port();
        let dir = std::env::temp_dir().join(format!(
            "redisutil-cluster-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("create the node's directory");
        let config: PathBuf = dir.join("nodes.conf");
        let args = [
            "--port".into(),
            port.to_string(),
            "--bind".into(),
            "127.0.0.1".into(),
            "--cluster-enabled".into(),
            "yes".into(),
            "--cluster-config-file".into(),
            config.display().to_string(),
            "--cluster-port".into(),
            bus_port.to_string(),
            "--cluster-node-timeout".into(),
            node_timeout.as_millis().to_string(),
            // A replica may always take over, however long it was cut off.
            "--cluster-replica-validity-factor".into(),
            "0".into(),
            "--save".into(),
            String::new(),
            "--appendonly".into(),
            "no".into(),
            "--daemonize".into(),
            "no".into(),
            "--loglevel".into(),
            "warning".into(),
            "--dir".into(),
            dir.display().to_string(),
        ];
        let mut args = args.to_vec();
        let tls_port = tls.then(free_port);
        if let Some(tls_port) = tls_port {
            args.extend(tls_args(tls_port));
        }
        let mut node = Self {
            port,
            tls_port,
            process: Guarded::spawn(&args, Some(&dir)),
        };
        match wait_serve(port, Duration::from_secs(5)) {
            Ok(()) => Some(node),
            Err(_) => {
                node.process.kill();
                None
            }
        }
    }

    fn is_running(&self) -> bool {
        self.process.is_running()
    }

    fn raw(&self) -> redis::Connection {
        redis::Client::open(format!("redis://127.0.0.1:{}/", self.port))
            .and_then(|client| client.get_connection_with_timeout(Duration::from_secs(2)))
            .expect("raw connection to a cluster node")
    }
}

/// The arguments that make a node serve TLS on `tls_port`, with the
/// test certificates (one for `127.0.0.1`), and speak TLS on its bus.
#[cfg(feature = "tls-rustls")]
fn tls_args(tls_port: u16) -> Vec<String> {
    let certs = super::tls::Certs::get();
    let file = |name: &str| certs.path(name).display().to_string();
    [
        "--tls-port",
        &tls_port.to_string(),
        "--tls-cert-file",
        &file("node.pem"),
        "--tls-key-file",
        &file("node.key"),
        "--tls-ca-cert-file",
        &file("ca.pem"),
        "--tls-cluster",
        "yes",
        "--tls-auth-clients",
        "no",
    ]
    .iter()
    .map(|arg| arg.to_string())
    .collect()
}

#[cfg(not(feature = "tls-rustls"))]
fn tls_args(_tls_port: u16) -> Vec<String> {
    panic!("a TLS cluster needs the feature tls-rustls")
}

/// A Redis Cluster on loopback: masters (and replicas) on free ports,
/// joined by `redis-cli --cluster create`, killed on drop.
pub struct RedisCluster {
    nodes: Vec<Node>,
}

impl RedisCluster {
    /// Starts `masters` masters with `replicas` replicas each, whose
    /// nodes count a peer as failing after `node_timeout`.
    pub fn start(masters: usize, replicas: usize, node_timeout: Duration) -> Self {
        Self::start_with_tls(masters, replicas, node_timeout, false)
    }

    /// Like [`start`](Self::start); with `tls`, every node also serves TLS
    /// on a port of its own and the nodes talk TLS among themselves.
    pub fn start_with_tls(
        masters: usize,
        replicas: usize,
        node_timeout: Duration,
        tls: bool,
    ) -> Self {
        check_installed("redis-server");
        check_installed("redis-cli");
        let mut nodes = Vec::new();
        let mut failures = 0;
        while nodes.len() < masters * (replicas + 1) {
            match Node::start(node_timeout, tls) {
                Some(node) => nodes.push(node),
                None => {
                    failures += 1;
                    assert!(failures < 5, "redis-server did not start after 5 tries");
                }
            }
        }
        let cluster = Self { nodes };
        cluster.create(replicas);
        cluster.wait_until_ok();
        cluster
    }

    /// One cluster of 3 masters, no replicas, shared by every test of
    /// this test binary (each test uses its own key names). Its nodes
    /// die with the process (see `GUARD`).
    pub fn shared() -> &'static Self {
        static SHARED: OnceLock<RedisCluster> = OnceLock::new();
        SHARED.get_or_init(|| Self::start(3, 0, Duration::from_secs(5)))
    }

    fn create(&self, replicas: usize) {
        let mut command = Command::new("redis-cli");
        command.arg("--cluster").arg("create");
        for node in &self.nodes {
            command.arg(format!("127.0.0.1:{}", node.port));
        }
        command
            .args(["--cluster-replicas", &replicas.to_string(), "--cluster-yes"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("start redis-cli");
        let deadline = Instant::now() + Duration::from_secs(60);
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait for redis-cli") {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("redis-cli --cluster create did not finish within 60 s");
            }
            thread::sleep(Duration::from_millis(50));
        };
        let mut output = String::new();
        if let Some(mut out) = child.stdout.take() {
            let _ = out.read_to_string(&mut output);
        }
        if let Some(mut err) = child.stderr.take() {
            let _ = err.read_to_string(&mut output);
        }
        assert!(
            status.success(),
            "redis-cli --cluster create failed: {output}"
        );
    }

    /// Waits until every node says the cluster is up and every replica
    /// has synced with its master.
    fn wait_until_ok(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        for node in &self.nodes {
            let mut connection = node.raw();
            loop {
                let info: String = redis::cmd("CLUSTER")
                    .arg("INFO")
                    .query(&mut connection)
                    .expect("cluster info");
                let replication: String = redis::cmd("INFO")
                    .arg("replication")
                    .query(&mut connection)
                    .expect("info replication");
                let synced = replication.contains("role:master")
                    || replication.contains("master_link_status:up");
                if info.contains("cluster_state:ok") && synced {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "node {} not ready within 30 s: {info}",
                    node.port
                );
                thread::sleep(Duration::from_millis(50));
            }
        }
    }

    /// One TLS cluster of 3 masters, no replicas, shared like [`shared`](Self::shared).
    #[cfg(feature = "tls-rustls")]
    pub fn shared_tls() -> &'static Self {
        static SHARED: OnceLock<RedisCluster> = OnceLock::new();
        SHARED.get_or_init(|| Self::start_with_tls(3, 0, Duration::from_secs(5), true))
    }

    /// `rediss://127.0.0.1:<tls port>` of every node of a TLS cluster.
    pub fn tls_seeds(&self) -> Vec<String> {
        self.nodes
            .iter()
            .filter_map(|node| node.tls_port)
            .map(|port| format!("rediss://127.0.0.1:{port}"))
            .collect()
    }

    /// `127.0.0.1:<port>` of every node, masters and replicas.
    pub fn seeds(&self) -> Vec<String> {
        self.nodes
            .iter()
            .filter(|node| node.is_running())
            .map(|node| format!("127.0.0.1:{}", node.port))
            .collect()
    }

    /// A new store (its own pool) on this cluster.
    pub fn store(&self) -> RedisClusterStore {
        RedisClusterStore::open(self.seeds()).expect("open a cluster store")
    }

    /// A raw connection to the live node on `port`.
    pub fn raw(&self, port: u16) -> redis::Connection {
        self.node(port).raw()
    }

    fn node(&self, port: u16) -> &Node {
        self.nodes
            .iter()
            .find(|node| node.port == port && node.is_running())
            .unwrap_or_else(|| panic!("no live node on port {port}"))
    }

    /// A raw connection to some live node.
    fn any_live(&self) -> redis::Connection {
        let node = self
            .nodes
            .iter()
            .find(|node| node.is_running())
            .expect("a live node");
        node.raw()
    }

    /// The port of the master that owns `key`'s slot, as the live
    /// nodes see it.
    pub fn master_of(&self, key: &str) -> u16 {
        let mut connection = self.any_live();
        let slot: u16 = redis::cmd("CLUSTER")
            .arg("KEYSLOT")
            .arg(key)
            .query(&mut connection)
            .expect("cluster keyslot");
        let ranges: Vec<redis::Value> = redis::cmd("CLUSTER")
            .arg("SLOTS")
            .query(&mut connection)
            .expect("cluster slots");
        for range in ranges {
            // [start, end, [host, port, id, ...], replicas...]
            let redis::Value::Array(fields) = range else {
                panic!("a slot range is an array: {range:?}");
            };
            let int = |value: &redis::Value| match value {
                redis::Value::Int(int) => *int,
                other => panic!("expected an integer in a slot range: {other:?}"),
            };
            let (start, end) = (int(&fields[0]), int(&fields[1]));
            let redis::Value::Array(master) = &fields[2] else {
                panic!("a slot range names its master: {fields:?}");
            };
            if (start..=end).contains(&i64::from(slot)) {
                return u16::try_from(int(&master[1])).expect("a port");
            }
        }
        panic!("no master owns slot {slot}");
    }

    /// The ports of the replicas of the master on `port`.
    pub fn replicas_of(&self, port: u16) -> Vec<u16> {
        let mut master = self.raw(port);
        let id: String = redis::cmd("CLUSTER")
            .arg("MYID")
            .query(&mut master)
            .expect("cluster myid");
        let lines: Vec<String> = redis::cmd("CLUSTER")
            .arg("REPLICAS")
            .arg(&id)
            .query(&mut master)
            .expect("cluster replicas");
        lines
            .iter()
            .filter_map(|line| {
                let addr = line.split(' ').nth(1)?;
                let port = addr.split('@').next()?.rsplit_once(':')?.1;
                port.parse().ok()
            })
            .collect()
    }

    /// The ports of the live masters.
    pub fn masters(&self) -> Vec<u16> {
        self.nodes
            .iter()
            .filter(|node| node.is_running())
            .filter(|node| {
                let role: Vec<redis::Value> =
                    redis::cmd("ROLE").query(&mut node.raw()).expect("role");
                matches!(role.first(), Some(redis::Value::BulkString(role)) if role == b"master")
            })
            .map(|node| node.port)
            .collect()
    }

    /// The cluster node id of the node on `port`.
    pub fn node_id(&self, port: u16) -> String {
        redis::cmd("CLUSTER")
            .arg("MYID")
            .query(&mut self.raw(port))
            .expect("cluster myid")
    }

    /// Kills the node on `port` (SIGKILL) and waits for it to exit.
    pub fn kill(&mut self, port: u16) {
        let node = self
            .nodes
            .iter_mut()
            .find(|node| node.port == port)
            .unwrap_or_else(|| panic!("no node on port {port}"));
        node.process.kill();
    }

    /// Whether every live node answers `CLUSTER INFO` with
    /// `cluster_state:ok`.
    pub fn is_ok(&self) -> bool {
        self.nodes
            .iter()
            .filter(|node| node.is_running())
            .all(|node| {
                let mut connection = node.raw();
                connection.is_open()
                    && redis::cmd("CLUSTER")
                        .arg("INFO")
                        .query::<String>(&mut connection)
                        .is_ok_and(|info| info.contains("cluster_state:ok"))
            })
    }
}

/// The cluster as a conformance harness.
#[cfg(feature = "conformance")]
pub use harness::ClusterBackend;

#[cfg(feature = "conformance")]
mod harness {
    use std::thread;
    use std::time::Duration;

    use redisutil::RedisClusterStore;
    use redisutil::conformance::Harness;

    use super::RedisCluster;
    use crate::support::backend;

    /// The shared test cluster, with a store of its own per test.
    pub struct ClusterBackend {
        pub cluster: &'static RedisCluster,
        pub store: RedisClusterStore,
    }

    impl ClusterBackend {
        pub fn new() -> Self {
            let cluster = RedisCluster::shared();
            Self {
                cluster,
                store: cluster.store(),
            }
        }
    }

    impl Harness for ClusterBackend {
        type Store = RedisClusterStore;

        fn store(&self) -> RedisClusterStore {
            self.store.clone()
        }

        fn advance(&self, by: Duration) {
            thread::sleep(by);
        }

        fn set_string(&self, key: &str, value: &str) {
            backend::set_string(
                &mut self.cluster.raw(self.cluster.master_of(key)),
                key,
                value,
            );
        }

        fn get_string(&self, key: &str) -> Option<String> {
            backend::get_string(&mut self.cluster.raw(self.cluster.master_of(key)), key)
        }

        fn ttl(&self, key: &str) -> Option<Duration> {
            backend::ttl(&mut self.cluster.raw(self.cluster.master_of(key)), key)
        }

        fn delete(&self, key: &str) {
            backend::delete(&mut self.cluster.raw(self.cluster.master_of(key)), key);
        }

        fn blocking<R: Send>(&self, call: impl FnOnce() -> R + Send) -> R {
            call()
        }
    }
}
