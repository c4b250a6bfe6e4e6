//! Test support: a private `redis-server` per test, and the backends the
//! conformance suites run on.
#![allow(dead_code)] // each test binary uses a different part of this module

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use redisutil::{ListStore, ManualClock, MemoryStore, RedisStore, wait_serve};

/// A `redis-server` on a free loopback port, killed on drop.
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
    args: Vec<String>,
}

const INSTALL_HINT: &str = "redis-server is needed by these tests and was not found on PATH: \
     install it (Debian/Ubuntu: `apt-get install redis-server`; macOS: `brew install redis`)";

impl RedisServer {
    /// Starts a server with no persistence.
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// Starts a server with extra `redis-server` arguments.
    pub fn start_with(extra: &[&str]) -> Self {
        let mut server = Self::unstarted(extra);
        for _attempt in 0..5 {
            server.port = free_port();
            if server.spawn() {
                return server;
            }
        }
        panic!("redis-server did not start on a free port after 5 tries");
    }

    /// Starts a server on `port`, which the caller found free.
    pub fn start_on(port: u16) -> Self {
        let mut server = Self::unstarted(&[]);
        server.port = port;
        assert!(server.spawn(), "redis-server did not start on port {port}");
        server
    }

    fn unstarted(extra: &[&str]) -> Self {
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "redisutil-test-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("create the server's directory");
        Self {
            child: None,
            port: 0,
            dir,
            args: extra.iter().map(|s| s.to_string()).collect(),
        }
    }

    /// Starts the process on `self.port`; false if it did not come up.
    fn spawn(&mut self) -> bool {
        let port = self.port.to_string();
        let mut command = Command::new("redis-server");
        command
            .args([
                "--port",
                &port,
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .args(["--daemonize", "no", "--loglevel", "warning"])
            .arg("--dir")
            .arg(&self.dir)
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = match command.spawn() {
            Ok(child) => child,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => panic!("{INSTALL_HINT}"),
            Err(err) => panic!("cannot start redis-server: {err}"),
        };
        self.child = Some(child);
        if wait_serve(self.port, Duration::from_secs(5)).is_ok() {
            return true;
        }
        self.kill();
        false
    }

    /// The server's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:<port>`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// A new store (its own pool) for this server.
    pub fn store(&self) -> RedisStore {
        RedisStore::open(self.addr()).expect("open a store")
    }

    /// A raw redis-rs connection, for checks the store does not offer.
    pub fn raw(&self) -> redis::Connection {
        redis::Client::open(format!("redis://{}/", self.addr()))
            .and_then(|client| client.get_connection())
            .expect("raw connection")
    }

    /// Kills the server (SIGKILL) and waits for it to exit.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port with the same arguments.
    pub fn restart(&mut self) {
        self.kill();
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.spawn() {
            assert!(
                Instant::now() < deadline,
                "redis-server did not restart on port {}",
                self.port
            );
            thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A loopback port that nothing listened on a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("find a free port")
}

/// A store to run the conformance scenarios on, and control of its time.
pub trait Backend: Sync {
    /// The store type.
    type Store: ListStore + Clone + Send + Sync + std::fmt::Debug + 'static;

    /// A handle on the backend's store (clones share data).
    fn store(&self) -> Self::Store;

    /// Lets `by` pass, as TTLs see it.
    fn advance(&self, by: Duration);

    /// Runs `call`, which may block on a timeout, with the backend's time
    /// moving: real time for Redis, a fast-forwarding manual clock for the fake.
    fn blocking<R: Send>(&self, call: impl FnOnce() -> R + Send) -> R;

    /// Stores a string at `key` (SET): a key of another type than list.
    fn set_string(&self, key: &str, value: &str);

    /// The string at `key` (GET); `None` when it holds none.
    fn get_string(&self, key: &str) -> Option<String>;

    /// The time left before `key` expires (PTTL); `None` without a TTL or key.
    fn ttl(&self, key: &str) -> Option<Duration>;

    /// Waits until `condition` holds, up to `within` of the backend's time.
    fn eventually(&self, within: Duration, mut condition: impl FnMut() -> bool) -> bool {
        let step = Duration::from_millis(20);
        let mut waited = Duration::ZERO;
        loop {
            if condition() {
                return true;
            }
            if waited >= within {
                return false;
            }
            self.advance(step);
            waited += step;
        }
    }
}

/// The in-memory fake on a manual clock.
pub struct MemoryBackend {
    pub store: MemoryStore,
    pub clock: ManualClock,
}

impl MemoryBackend {
    pub fn new() -> Self {
        let clock = ManualClock::default();
        Self {
            store: MemoryStore::with_clock(clock.clone()),
            clock,
        }
    }
}

impl Backend for MemoryBackend {
    type Store = MemoryStore;

    fn store(&self) -> MemoryStore {
        self.store.clone()
    }

    fn advance(&self, by: Duration) {
        self.clock.advance(by);
    }

    fn set_string(&self, key: &str, value: &str) {
        self.store.set_string(key, value);
    }

    fn get_string(&self, key: &str) -> Option<String> {
        let value = self.store.get_string(key)?;
        Some(String::from_utf8(value).unwrap())
    }

    fn ttl(&self, key: &str) -> Option<Duration> {
        self.store.ttl(key)
    }

    fn blocking<R: Send>(&self, call: impl FnOnce() -> R + Send) -> R {
        let done = AtomicBool::new(false);
        thread::scope(|scope| {
            scope.spawn(|| {
                // Ten manual milliseconds for each real one.
                while !done.load(Ordering::Acquire) {
                    self.clock.advance(Duration::from_millis(10));
                    thread::sleep(Duration::from_millis(1));
                }
            });
            let result = call();
            done.store(true, Ordering::Release);
            result
        })
    }
}

/// A private redis-server.
pub struct RedisBackend {
    pub server: RedisServer,
    pub store: RedisStore,
}

impl RedisBackend {
    pub fn new() -> Self {
        let server = RedisServer::start();
        let store = server.store();
        Self { server, store }
    }
}

impl Backend for RedisBackend {
    type Store = RedisStore;

    fn store(&self) -> RedisStore {
        self.store.clone()
    }

    fn advance(&self, by: Duration) {
        thread::sleep(by);
    }

    fn set_string(&self, key: &str, value: &str) {
        set_string(&mut self.server.raw(), key, value);
    }

    fn get_string(&self, key: &str) -> Option<String> {
        get_string(&mut self.server.raw(), key)
    }

    fn ttl(&self, key: &str) -> Option<Duration> {
        ttl(&mut self.server.raw(), key)
    }

    fn blocking<R: Send>(&self, call: impl FnOnce() -> R + Send) -> R {
        call()
    }
}

/// A channel name no other test in this process uses.
pub fn unique(prefix: &str) -> String {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    format!("{prefix}/{}", SEQ.fetch_add(1, Ordering::Relaxed))
}

/// A TCP forwarder in front of a server that counts round trips: each time
/// the client writes after the server has answered (or first) is one.
pub struct RoundTripCounter {
    port: u16,
    round_trips: std::sync::Arc<AtomicU64>,
    stop: std::sync::Arc<AtomicBool>,
}

impl RoundTripCounter {
    /// Forwards a free loopback port to `127.0.0.1:<upstream>`.
    pub fn start(upstream: u16) -> Self {
        use std::io::{Read, Write};
        use std::net::TcpStream;
        use std::sync::Arc;

        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let round_trips = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (counter, stopping) = (round_trips.clone(), stop.clone());
        thread::spawn(move || {
            while !stopping.load(Ordering::Acquire) {
                let Ok((client, _)) = listener.accept() else {
                    thread::sleep(Duration::from_millis(5));
                    continue;
                };
                client.set_nonblocking(false).unwrap();
                let server = TcpStream::connect(("127.0.0.1", upstream)).unwrap();
                // true while the server spoke last.
                let answered = Arc::new(AtomicBool::new(true));
                let pump = |mut from: TcpStream, mut to: TcpStream, client_side: bool| {
                    let (answered, counter) = (answered.clone(), counter.clone());
                    thread::spawn(move || {
                        let mut buf = vec![0u8; 64 * 1024];
                        loop {
                            let n = match from.read(&mut buf) {
                                Ok(0) | Err(_) => break,
                                Ok(n) => n,
                            };
                            if client_side {
                                if answered.swap(false, Ordering::AcqRel) {
                                    counter.fetch_add(1, Ordering::AcqRel);
                                }
                            } else {
                                answered.store(true, Ordering::Release);
                            }
                            if to.write_all(&buf[..n]).is_err() {
                                break;
                            }
                        }
                        let _ = to.shutdown(std::net::Shutdown::Both);
                    });
                };
                pump(
                    client.try_clone().unwrap(),
                    server.try_clone().unwrap(),
                    true,
                );
                pump(server, client, false);
            }
        });
        Self {
            port,
            round_trips,
            stop,
        }
    }

    /// The port to connect to.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Round trips so far; resets the count.
    pub fn take(&self) -> u64 {
        // Let the last answer reach the pump before reading.
        thread::sleep(Duration::from_millis(20));
        self.round_trips.swap(0, Ordering::AcqRel)
    }
}

impl Drop for RoundTripCounter {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
    }
}

// ---- Redis Cluster --------------------------------------------------------

#[cfg(feature = "cluster")]
#[allow(unused_imports)] // each test binary uses a different part of this module
pub use cluster::{ClusterBackend, RedisCluster};

#[cfg(feature = "cluster")]
mod cluster {
    use std::io::Read;
    use std::path::PathBuf;
    use std::process::{Child, ChildStdin, Command, Stdio};
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::thread;
    use std::time::{Duration, Instant};

    use redis::ConnectionLike;
    use redisutil::{RedisClusterStore, wait_serve};

    use super::{Backend, free_port};

    const CLUSTER_INSTALL_HINT: &str = "redis-server and redis-cli (7.0 or newer) are needed by \
         these tests and one was not found on PATH: install them (Debian/Ubuntu: \
         `apt-get install redis-server redis-tools`; macOS: `brew install redis`)";

    /// Runs `redis-server` under a `sh` guard that SIGKILLs the server and
    /// removes its directory as soon as the guard's stdin closes: when the
    /// node is dropped, and also when the test process exits in any way
    /// (the kernel closes the pipe), so a cluster in a `static` never
    /// outlives the test binary. The guard is the server's parent, so the
    /// pid it kills cannot have been reused.
    const GUARD: &str = "redis-server \"$@\" </dev/null >/dev/null 2>&1 & server=$!; \
         read line; kill -9 $server 2>/dev/null; wait $server; rm -rf \"$NODE_DIR\"";

    /// One redis-server of a [`RedisCluster`].
    struct Node {
        port: u16,
        guard: Option<Child>,
        stdin: Option<ChildStdin>,
    }

    impl Node {
        /// Starts a cluster-enabled server on a free port; `None` if it
        /// did not come up (the port was taken meanwhile).
        fn start(node_timeout: Duration) -> Option<Self> {
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
            let mut command = Command::new("sh");
            command
                .arg("-c")
                .arg(GUARD)
                .arg("sh")
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--cluster-enabled", "yes", "--cluster-config-file"])
                .arg(&config)
                .args(["--cluster-port", &bus_port.to_string()])
                .args([
                    "--cluster-node-timeout",
                    &node_timeout.as_millis().to_string(),
                ])
                // A replica may always take over, however long it was cut off.
                .args(["--cluster-replica-validity-factor", "0"])
                .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
                .args(["--loglevel", "warning", "--dir"])
                .arg(&dir)
                .env("NODE_DIR", &dir)
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            let mut guard = command.spawn().expect("start sh");
            let stdin = guard.stdin.take();
            let mut node = Self {
                port,
                guard: Some(guard),
                stdin,
            };
            match wait_serve(port, Duration::from_secs(5)) {
                Ok(()) => Some(node),
                Err(_) => {
                    node.kill();
                    None
                }
            }
        }

        fn kill(&mut self) {
            drop(self.stdin.take());
            if let Some(mut guard) = self.guard.take() {
                let _ = guard.wait();
            }
        }

        fn raw(&self) -> redis::Connection {
            redis::Client::open(format!("redis://127.0.0.1:{}/", self.port))
                .and_then(|client| client.get_connection_with_timeout(Duration::from_secs(2)))
                .expect("raw connection to a cluster node")
        }
    }

    impl Drop for Node {
        fn drop(&mut self) {
            self.kill();
        }
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
            check_installed();
            let mut nodes = Vec::new();
            let mut failures = 0;
            while nodes.len() < masters * (replicas + 1) {
                match Node::start(node_timeout) {
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

        /// `127.0.0.1:<port>` of every node, masters and replicas.
        pub fn seeds(&self) -> Vec<String> {
            self.nodes
                .iter()
                .filter(|node| node.guard.is_some())
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
                .find(|node| node.port == port && node.guard.is_some())
                .unwrap_or_else(|| panic!("no live node on port {port}"))
        }

        /// A raw connection to some live node.
        fn any_live(&self) -> redis::Connection {
            let node = self
                .nodes
                .iter()
                .find(|node| node.guard.is_some())
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
                .filter(|node| node.guard.is_some())
                .filter(|node| {
                    let role: Vec<redis::Value> = redis::cmd("ROLE")
                        .query(&mut node.raw())
                        .expect("role");
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
            node.kill();
        }

        /// Whether every live node answers `CLUSTER INFO` with
        /// `cluster_state:ok`.
        pub fn is_ok(&self) -> bool {
            self.nodes
                .iter()
                .filter(|node| node.guard.is_some())
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

    fn check_installed() {
        for tool in ["redis-server", "redis-cli"] {
            match Command::new(tool)
                .arg("--version")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
            {
                Ok(status) if status.success() => {}
                Ok(status) => panic!("{tool} --version failed ({status}): {CLUSTER_INSTALL_HINT}"),
                Err(err) => panic!("cannot run {tool} ({err}): {CLUSTER_INSTALL_HINT}"),
            }
        }
    }

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

    impl Backend for ClusterBackend {
        type Store = RedisClusterStore;

        fn store(&self) -> RedisClusterStore {
            self.store.clone()
        }

        fn advance(&self, by: Duration) {
            thread::sleep(by);
        }

        fn set_string(&self, key: &str, value: &str) {
            super::set_string(
                &mut self.cluster.raw(self.cluster.master_of(key)),
                key,
                value,
            );
        }

        fn get_string(&self, key: &str) -> Option<String> {
            super::get_string(&mut self.cluster.raw(self.cluster.master_of(key)), key)
        }

        fn ttl(&self, key: &str) -> Option<Duration> {
            super::ttl(&mut self.cluster.raw(self.cluster.master_of(key)), key)
        }

        fn blocking<R: Send>(&self, call: impl FnOnce() -> R + Send) -> R {
            call()
        }
    }
}

fn set_string(raw: &mut redis::Connection, key: &str, value: &str) {
    redis::cmd("SET").arg(key).arg(value).exec(raw).unwrap();
}

fn get_string(raw: &mut redis::Connection, key: &str) -> Option<String> {
    let kind: String = redis::cmd("TYPE").arg(key).query(raw).unwrap();
    if kind != "string" {
        return None;
    }
    redis::cmd("GET").arg(key).query(raw).unwrap()
}

fn ttl(raw: &mut redis::Connection, key: &str) -> Option<Duration> {
    let millis: i64 = redis::cmd("PTTL").arg(key).query(raw).unwrap();
    u64::try_from(millis).ok().map(Duration::from_millis)
}
