//! [`SentinelSet`]: a private master, its replicas and the sentinels that
//! watch them as the service `svc`, each under its guard; and
//! [`SentinelBackend`], the conformance harness on it.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use redisutil::{RedisSentinelStore, RedisSentinelStoreOptions};

use super::free_port;
use super::process::Guarded;
use super::server::RedisServer;

/// The service name the sentinels know the master by.
pub const SERVICE: &str = "svc";

/// What to start.
#[derive(Default, Clone, Copy)]
pub struct SentinelSetup {
    /// How many replicas of the master.
    pub replicas: usize,
    /// How many sentinels (quorum: 2, or 1 for a single one).
    pub sentinels: usize,
    /// The sentinels' `requirepass`.
    pub sentinel_password: Option<&'static str>,
    /// The master's `requirepass` (set once it runs; with no replica).
    pub master_password: Option<&'static str>,
}

/// A master (`--appendonly yes --appendfsync always`), its replicas and
/// the sentinels, all killed on drop.
pub struct SentinelSet {
    pub master: RedisServer,
    pub replicas: Vec<RedisServer>,
    sentinels: Vec<(u16, Guarded)>,
    setup: SentinelSetup,
}

const PERSISTENT: [&str; 4] = ["--appendonly", "yes", "--appendfsync", "always"];

impl SentinelSet {
    /// Starts everything and waits until every sentinel knows the master
    /// and its replicas.
    pub fn start(setup: SentinelSetup) -> Self {
        let master = RedisServer::start_with(&PERSISTENT);
        let port = master.port().to_string();
        let replicas = (0..setup.replicas)
            .map(|_| {
                let mut args = PERSISTENT.to_vec();
                args.extend(["--replicaof", "127.0.0.1", &port]);
                RedisServer::start_with(&args)
            })
            .collect();
        let mut set = Self {
            master,
            replicas,
            sentinels: Vec::new(),
            setup,
        };
        set.wait_replicated();
        if let Some(password) = setup.master_password {
            assert_eq!(setup.replicas, 0, "a password master has no replica here");
            redis::cmd("CONFIG")
                .arg("SET")
                .arg("requirepass")
                .arg(password)
                .exec(&mut set.master.raw())
                .expect("set the master's password");
        }
        for _ in 0..setup.sentinels {
            set.start_sentinel();
        }
        set.wait_known();
        set
    }

    fn start_sentinel(&mut self) {
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let quorum = self.setup.sentinels.min(2);
        for _attempt in 0..5 {
            let port = free_port();
            let dir = std::env::temp_dir().join(format!(
                "redisutil-sentinel-{}-{}",
                std::process::id(),
                SEQ.fetch_add(1, Ordering::Relaxed)
            ));
            std::fs::create_dir_all(&dir).expect("create the sentinel's directory");
            let mut conf = format!(
                "port {port}\nbind 127.0.0.1\ndaemonize no\ndir {dir}\nlogfile \"\"\n\
                 sentinel monitor {SERVICE} 127.0.0.1 {master} {quorum}\n\
                 sentinel down-after-milliseconds {SERVICE} 1000\n\
                 sentinel failover-timeout {SERVICE} 5000\n",
                dir = dir.display(),
                master = self.master.port(),
            );
            if let Some(password) = self.setup.sentinel_password {
                conf.push_str(&format!("requirepass {password}\n"));
            }
            if let Some(password) = self.setup.master_password {
                conf.push_str(&format!("sentinel auth-pass {SERVICE} {password}\n"));
            }
            let path: PathBuf = dir.join("sentinel.conf");
            std::fs::write(&path, conf).expect("write the sentinel's config");
            let args = [path.display().to_string(), "--sentinel".to_string()];
            let process = Guarded::spawn(&args, Some(&dir));
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if let Ok(mut raw) = self.raw_sentinel_at(port)
                    && redis::cmd("PING").query::<String>(&mut raw).is_ok()
                {
                    self.sentinels.push((port, process));
                    return;
                }
                thread::sleep(Duration::from_millis(20));
            }
        }
        panic!("redis-server --sentinel did not start on a free port after 5 tries");
    }

    /// Waits until every replica has synced with the master.
    fn wait_replicated(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        for replica in &self.replicas {
            loop {
                let info: String = redis::cmd("INFO")
                    .arg("replication")
                    .query(&mut replica.raw())
                    .expect("INFO of a replica");
                if info.contains("master_link_status:up") {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "the replica on {} did not sync within 10 s: {info}",
                    replica.port()
                );
                thread::sleep(Duration::from_millis(20));
            }
        }
    }

    /// Waits until every sentinel names the master and knows each replica
    /// as a healthy one (so that a failover can pick it).
    fn wait_known(&self) {
        let deadline = Instant::now() + Duration::from_secs(15);
        for (port, _) in &self.sentinels {
            loop {
                let mut raw = self.raw_sentinel_at(*port).expect("connect to a sentinel");
                let replicas: Vec<HashMap<String, String>> = redis::cmd("SENTINEL")
                    .arg("REPLICAS")
                    .arg(SERVICE)
                    .query(&mut raw)
                    .unwrap_or_default();
                let healthy = replicas
                    .iter()
                    .filter(|replica| {
                        replica.get("flags").map(String::as_str) == Some("slave")
                            && replica.get("master-link-status").map(String::as_str) == Some("ok")
                    })
                    .count();
                if healthy >= self.replicas.len() {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "the sentinel on {port} did not see the replicas within 15 s: {replicas:?}"
                );
                thread::sleep(Duration::from_millis(50));
            }
        }
    }

    /// The sentinels' addresses, `127.0.0.1:<port>`.
    pub fn sentinel_addrs(&self) -> Vec<String> {
        self.sentinels
            .iter()
            .map(|(port, _)| format!("127.0.0.1:{port}"))
            .collect()
    }

    /// A raw connection to the sentinel on `port`, authenticated.
    fn raw_sentinel_at(&self, port: u16) -> redis::RedisResult<redis::Connection> {
        let mut raw = redis::Client::open(format!("redis://127.0.0.1:{port}/"))?
            .get_connection_with_timeout(Duration::from_secs(1))?;
        raw.set_read_timeout(Some(Duration::from_secs(5)))?;
        if let Some(password) = self.setup.sentinel_password {
            redis::cmd("AUTH").arg(password).exec(&mut raw)?;
        }
        Ok(raw)
    }

    /// A raw connection to the `i`th sentinel.
    pub fn raw_sentinel(&self, i: usize) -> redis::Connection {
        self.raw_sentinel_at(self.sentinels[i].0)
            .expect("connect to a sentinel")
    }

    /// Where the `i`th sentinel says the master is.
    pub fn master_port(&self, i: usize) -> u16 {
        let (_host, port): (String, u16) = redis::cmd("SENTINEL")
            .arg("GET-MASTER-ADDR-BY-NAME")
            .arg(SERVICE)
            .query(&mut self.raw_sentinel(i))
            .expect("the sentinel names the master");
        port
    }

    /// A raw connection to the current master (as the first sentinel
    /// names it), authenticated.
    pub fn raw_master(&self) -> redis::Connection {
        let port = self.master_port(0);
        let mut raw = redis::Client::open(format!("redis://127.0.0.1:{port}/"))
            .and_then(|client| client.get_connection())
            .expect("connect to the master");
        if let Some(password) = self.setup.master_password {
            redis::cmd("AUTH").arg(password).exec(&mut raw).unwrap();
        }
        raw
    }

    /// A new store for the service, with `options`.
    pub fn store_with(&self, options: RedisSentinelStoreOptions) -> RedisSentinelStore {
        RedisSentinelStore::open_with(self.sentinel_addrs(), SERVICE, options)
            .expect("open a sentinel store")
    }
}

#[cfg(feature = "conformance")]
pub use harness::SentinelBackend;

#[cfg(feature = "conformance")]
mod harness {
    use std::thread;
    use std::time::Duration;

    use redisutil::RedisSentinelStore;
    use redisutil::conformance::Harness;

    use super::super::backend::{delete, get_string, set_string, ttl};
    use super::SentinelSet;

    /// The conformance harness: the store, and raw connections to the
    /// master the sentinels name for what the store does not offer.
    pub struct SentinelBackend {
        pub set: SentinelSet,
        pub store: RedisSentinelStore,
    }

    impl Harness for SentinelBackend {
        type Store = RedisSentinelStore;

        fn store(&self) -> RedisSentinelStore {
            self.store.clone()
        }

        fn advance(&self, by: Duration) {
            thread::sleep(by);
        }

        fn set_string(&self, key: &str, value: &str) {
            set_string(&mut self.set.raw_master(), key, value);
        }

        fn get_string(&self, key: &str) -> Option<String> {
            get_string(&mut self.set.raw_master(), key)
        }

        fn ttl(&self, key: &str) -> Option<Duration> {
            ttl(&mut self.set.raw_master(), key)
        }

        fn delete(&self, key: &str) {
            delete(&mut self.set.raw_master(), key);
        }

        fn blocking<R: Send>(&self, call: impl FnOnce() -> R + Send) -> R {
            call()
        }
    }
}
