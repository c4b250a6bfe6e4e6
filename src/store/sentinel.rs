//! [`RedisSentinelStore`]: the [`ListStore`] on the master of a Redis
//! Sentinel service, found by asking the sentinels and followed through a
//! failover.

use std::fmt;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use redis::{
    Cmd, Connection, ConnectionAddr, ConnectionInfo, ConnectionLike, IntoConnectionInfo,
    RedisError, RedisResult, Value,
};

use super::addr::{IntoRedisAddr, RedisAddr, addr_list};
use super::commands::lease::connector_lease_store;
use super::commands::{Connector, connector_list_store_methods};
use super::pool::{Pool, PooledConnection, pool_limits, to_store_error};
use super::redis::{auth, handshake, plain, tls_info};
use super::{ListStore, StoreError};
use crate::tls::TlsOptions;

/// Settings of a [`RedisSentinelStore`]. `Default` gives the documented
/// values: the timeouts and pool size of
/// [`RedisStoreOptions`](crate::RedisStoreOptions), no credentials, db 0.
///
/// `Debug` shows whether a password is set, never the password.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct RedisSentinelStoreOptions {
    /// How long opening a connection may take, as a whole: asking the
    /// sentinels, connecting to the master, AUTH, SELECT and checking its
    /// role. Default: 1 s.
    pub connect_timeout: Duration,
    /// How long a non-blocking command may wait for its answer; `None`
    /// waits without limit. A blocking pop waits its own timeout plus this.
    /// Default: 5 s.
    pub response_timeout: Option<Duration>,
    /// How many idle connections to the master are kept for reuse.
    /// Default: 16.
    pub max_idle: usize,
    /// How many connections to the master the store may have open at
    /// once, blocked receives included (see
    /// [`RedisStoreOptions::max_connections`](crate::RedisStoreOptions::max_connections)).
    /// Default: 64.
    pub max_connections: usize,
    /// How long a call waits for a connection past `max_connections`
    /// before it fails with [`StoreError::PoolExhausted`]. Default: 5 s.
    pub pool_timeout: Duration,
    /// The user name to authenticate to the sentinels with (an ACL user);
    /// `None`: the default user.
    pub sentinel_username: Option<String>,
    /// The password of the sentinels (their `requirepass`). `None`: the one
    /// in a sentinel's URL, if any, else no AUTH.
    pub sentinel_password: Option<String>,
    /// The user name to authenticate to the master with; `None`: the
    /// default user.
    pub username: Option<String>,
    /// The password of the master (and of the replicas that may replace
    /// it); `None`: no AUTH.
    pub password: Option<String>,
    /// The database to SELECT on the master. Default: 0.
    pub db: i64,
    /// The certificates of `rediss://` sentinels (feature `tls-rustls`):
    /// with `rediss://` sentinel addresses, the sentinels and the master
    /// are reached over TLS, with these (your CA, a client certificate);
    /// `None` trusts the system's roots. Given with `redis://` sentinels,
    /// the store refuses to open. Default: `None`.
    pub tls: Option<TlsOptions>,
}

impl Default for RedisSentinelStoreOptions {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(1),
            response_timeout: Some(Duration::from_secs(5)),
            max_idle: 16,
            max_connections: 64,
            pool_timeout: Duration::from_secs(5),
            sentinel_username: None,
            sentinel_password: None,
            username: None,
            password: None,
            db: 0,
            tls: None,
        }
    }
}

/// A password as `Debug` shows it: whether there is one.
struct Hidden<'a>(&'a Option<String>);

impl fmt::Debug for Hidden<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(_) => f.write_str("Some(\"***\")"),
            None => f.write_str("None"),
        }
    }
}

impl fmt::Debug for RedisSentinelStoreOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisSentinelStoreOptions")
            .field("connect_timeout", &self.connect_timeout)
            .field("response_timeout", &self.response_timeout)
            .field("max_idle", &self.max_idle)
            .field("max_connections", &self.max_connections)
            .field("pool_timeout", &self.pool_timeout)
            .field("sentinel_username", &self.sentinel_username)
            .field("sentinel_password", &Hidden(&self.sentinel_password))
            .field("username", &self.username)
            .field("password", &Hidden(&self.password))
            .field("db", &self.db)
            .field("tls", &self.tls)
            .finish()
    }
}

/// A [`ListStore`] and [`LeaseStore`](crate::LeaseStore) on the master of a
/// service watched by Redis Sentinel.
///
/// - Opening it connects to nothing. Each new connection asks the sentinels
///   in turn (`SENTINEL GET-MASTER-ADDR-BY-NAME`) where the master is,
///   starting with the one that answered last; connects to it, sends AUTH
///   and SELECT, and checks with `ROLE` that it is a master, asking again
///   when it is not (a master just demoted). The connect timeout bounds all
///   of it.
/// - Connections are pooled and every command and script is the one
///   [`RedisStore`](crate::RedisStore) sends, with the same timeouts.
/// - A failover is followed by itself: a connection to a master that is no
///   longer one fails (closed by Sentinel, or answering `READONLY` once
///   demoted, `NOREPLICAS` when `min-replicas-to-write` is set and its
///   replicas left, `UNBLOCKED` for a pop blocked on it). Such an answer
///   means the command did not run; it counts as a lost connection: the
///   pool is emptied and the command sent once more on a new connection,
///   to the master the sentinels name now. Until they name the new one,
///   calls fail with [`StoreError::Connection`].
/// - Replication is asynchronous: a failover loses the writes the old
///   master acknowledged but had not passed to the replica promoted, and
///   those it took after that replica left it. Set `min-replicas-to-write
///   1` on the masters so that a master left alone refuses writes.
/// - Passwords (options, or a sentinel's URL) never show in `Debug`,
///   `Display` or errors.
///
/// Clones share one pool.
///
/// # Examples
///
/// ```no_run
/// use redisutil::{ListStore, RedisSentinelStore, RedisSentinelStoreOptions};
///
/// let options = RedisSentinelStoreOptions {
///     password: Some("master-secret".into()),
///     ..RedisSentinelStoreOptions::default()
/// };
/// let sentinels = ["10.0.0.1:26379", "10.0.0.2:26379", "10.0.0.3:26379"];
/// let store = RedisSentinelStore::open_with(sentinels, "mymaster", options)?;
/// store.push("/jobs/client", &[br#"{"id":1}"#], None)?;
/// # Ok::<(), redisutil::StoreError>(())
/// ```
#[derive(Clone)]
pub struct RedisSentinelStore {
    inner: Arc<Inner>,
}

struct Inner {
    sentinels: Vec<Sentinel>,
    service: String,
    /// The service and its sentinels as errors show them.
    shown: String,
    /// AUTH and SELECT for the master.
    handshake: Vec<Cmd>,
    options: RedisSentinelStoreOptions,
    /// The sentinel to ask first: the one that answered last.
    first: AtomicUsize,
    /// The master the last connection went to, to tell when it changes.
    master: std::sync::Mutex<Option<(String, u16)>>,
    pool: Pool<MasterConnection>,
}

/// One sentinel: where it is, without credentials, and its AUTH.
struct Sentinel {
    addr: RedisAddr,
    info: ConnectionInfo,
    auth: Option<Cmd>,
}

impl RedisSentinelStore {
    /// A store for the master of `service`, as the `sentinels` name it, with
    /// default options. Connects to nothing yet.
    ///
    /// Each sentinel is anything [`IntoRedisAddr`] takes (a port, `(host,
    /// port)`, `"host:port"`, a `redis://` URL, whose password is the
    /// sentinel's unless the options give one).
    pub fn open<I>(sentinels: I, service: &str) -> Result<Self, StoreError>
    where
        I: IntoIterator,
        I::Item: IntoRedisAddr,
    {
        Self::open_with(sentinels, service, RedisSentinelStoreOptions::default())
    }

    /// A store for the Sentinel deployment `url` names, in the form
    /// Lettuce and Spring Data Redis use:
    /// `redis-sentinel://[[username:]password@]host[:port][,host[:port]…][/db]#service`.
    /// The hosts are the sentinels (port 26379 when left out); the username,
    /// password and database are the master's and take the place of those
    /// in `options`. The sentinels' own password, if any, stays in
    /// [`RedisSentinelStoreOptions::sentinel_password`].
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
    pub fn open_url(url: &str, options: RedisSentinelStoreOptions) -> Result<Self, StoreError> {
        let parsed = super::sentinel_url::SentinelUrl::parse(url)?;
        let options = RedisSentinelStoreOptions {
            username: parsed.username.or(options.username),
            password: parsed.password.or(options.password),
            db: parsed.db.unwrap_or(options.db),
            ..options
        };
        let sentinels: Vec<(&str, u16)> = parsed
            .sentinels
            .iter()
            .map(|(host, port)| (host.as_str(), *port))
            .collect();
        Self::open_with(sentinels, &parsed.service, options)
    }

    /// A store for the master of `service` with `options`.
    pub fn open_with<I>(
        sentinels: I,
        service: &str,
        options: RedisSentinelStoreOptions,
    ) -> Result<Self, StoreError>
    where
        I: IntoIterator,
        I::Item: IntoRedisAddr,
    {
        let (addrs, list) = addr_list(sentinels)?;
        let shown = format!("sentinel service {service:?} via {list}");
        let refuse = |message: &str| StoreError::InvalidAddress {
            addr: shown.clone(),
            message: message.into(),
        };
        if addrs.is_empty() {
            return Err(refuse("at least one sentinel is needed"));
        }
        if service.is_empty() || service.contains(char::is_whitespace) {
            return Err(refuse("the service name is empty or holds white space"));
        }
        // The sentinels and the master: all over TLS, or none.
        let tls = addrs.iter().any(|addr| addr.url().starts_with("rediss:"));
        if addrs
            .iter()
            .any(|addr| addr.url().starts_with("rediss:") != tls)
        {
            return Err(refuse(
                "the sentinels are all rediss:// (TLS) addresses or all redis:// ones",
            ));
        }
        let sentinels = addrs
            .into_iter()
            .map(|addr| {
                let invalid = |err: RedisError| StoreError::InvalidAddress {
                    addr: addr.to_string(),
                    message: err.to_string(),
                };
                let info = addr.url().into_connection_info().map_err(invalid)?;
                let settings = info.redis_settings();
                let password = options.sentinel_password.as_deref().or(settings.password());
                let username = match options.sentinel_password {
                    Some(_) => options.sentinel_username.as_deref(),
                    None => options.sentinel_username.as_deref().or(settings.username()),
                };
                let auth = password.map(|password| auth(username, password));
                let info = tls_info(plain(info), tls, options.tls.as_ref()).map_err(|message| {
                    StoreError::InvalidAddress {
                        addr: addr.to_string(),
                        message,
                    }
                })?;
                redis::Client::open(info.clone()).map_err(invalid)?;
                Ok(Sentinel { addr, info, auth })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        let handshake = handshake(
            options.username.as_deref(),
            options.password.as_deref(),
            options.db,
        );
        let limits = pool_limits(
            shown.clone(),
            options.max_idle,
            options.max_connections,
            options.pool_timeout,
        )?;
        Ok(Self {
            inner: Arc::new(Inner {
                sentinels,
                service: service.to_owned(),
                shown,
                handshake,
                first: AtomicUsize::new(0),
                master: std::sync::Mutex::new(None),
                pool: Pool::new(limits),
                options,
            }),
        })
    }

    /// Where to reach the master at `host:port`: as the sentinels are
    /// reached, over TLS with the same certificates or not; without
    /// credentials (the store sends its own handshake).
    pub(crate) fn master_info(&self, host: &str, port: u16) -> ConnectionInfo {
        let sentinel = &self.inner.sentinels[0].info;
        let addr = match sentinel.addr() {
            ConnectionAddr::TcpTls {
                insecure,
                tls_params,
                ..
            } => ConnectionAddr::TcpTls {
                host: host.to_owned(),
                port,
                insecure: *insecure,
                tls_params: tls_params.clone(),
            },
            _ => ConnectionAddr::Tcp(host.to_owned(), port),
        };
        sentinel.clone().set_addr(addr)
    }

    /// Whether the master is reached over TLS.
    #[cfg(feature = "tokio")]
    pub(crate) fn master_tls(&self) -> bool {
        matches!(
            self.inner.sentinels[0].info.addr(),
            ConnectionAddr::TcpTls { .. }
        )
    }

    /// The sentinels, as given.
    pub fn sentinels(&self) -> Vec<&RedisAddr> {
        self.inner.sentinels.iter().map(|s| &s.addr).collect()
    }

    /// The service name.
    pub fn service(&self) -> &str {
        &self.inner.service
    }

    /// The options in force.
    pub fn options(&self) -> &RedisSentinelStoreOptions {
        &self.inner.options
    }

    /// Whether `self` and `other` are the same handle (clones of one store).
    pub fn ptr_eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    /// Where the sentinels say the master is now (`host`, `port`), asked as
    /// a new connection asks: each sentinel in turn, within the connect
    /// timeout.
    pub fn master_addr(&self) -> Result<(String, u16), StoreError> {
        let deadline = Deadline::new(self);
        self.ask_sentinels(&deadline)
    }

    /// Asks each sentinel in turn, starting with the one that answered
    /// last, for the master's address; each has its share of what is left
    /// of `deadline`.
    pub(crate) fn ask_sentinels(&self, deadline: &Deadline) -> Result<(String, u16), StoreError> {
        let inner = &self.inner;
        let count = inner.sentinels.len();
        let first = inner.first.load(Ordering::Relaxed) % count;
        let mut unknown = Vec::new();
        let mut failures = Vec::new();
        for (asked, at) in (0..count).map(|i| (i, (first + i) % count)) {
            let sentinel = &inner.sentinels[at];
            // Each sentinel gets its share of what is left, so that a silent
            // one leaves time for the others.
            let share = match deadline.left() {
                Ok(left) => left / u32::try_from(count - asked).unwrap_or(u32::MAX),
                Err(err) => {
                    failures.push((sentinel.addr.to_string(), err));
                    break;
                }
            };
            let within = Deadline {
                start: Instant::now(),
                timeout: share,
                shown: String::new(),
            };
            match self.ask(sentinel, &within) {
                Ok(Some(master)) => {
                    inner.first.store(at, Ordering::Relaxed);
                    return Ok(master);
                }
                Ok(None) => unknown.push(sentinel.addr.to_string()),
                Err(err) => failures.push((sentinel.addr.to_string(), err)),
            }
        }
        let mut said: Vec<String> = Vec::new();
        if !unknown.is_empty() {
            let verb = if unknown.len() == 1 { "knows" } else { "know" };
            said.push(format!(
                "{} {verb} no master named {:?}",
                unknown.join(", "),
                inner.service
            ));
        }
        said.extend(
            failures
                .iter()
                .map(|(addr, err)| format!("{addr}: {}", short(err))),
        );
        let said = said.join("; ");
        // Every sentinel that answered refused the question (a password
        // missing or wrong): their words lead, so that `code()` reads them.
        if unknown.is_empty()
            && let Some((_, StoreError::Command { message, .. })) = failures.first()
            && failures
                .iter()
                .all(|(_, err)| matches!(err, StoreError::Command { .. }))
        {
            return Err(StoreError::Command {
                addr: inner.shown.clone(),
                message: format!("{message} (every sentinel refused to name the master: {said})"),
            });
        }
        if failures.is_empty() {
            return Err(StoreError::Connection {
                addr: inner.shown.clone(),
                message: format!(
                    "no sentinel knows a master named {:?} ({said})",
                    inner.service
                ),
                source: None,
            });
        }
        Err(StoreError::Connection {
            addr: inner.shown.clone(),
            message: format!(
                "no sentinel named the master of {:?}: {said}",
                inner.service
            ),
            source: None,
        })
    }

    /// One sentinel's answer: the master's address, or `None` when it knows
    /// no such service.
    fn ask(
        &self,
        sentinel: &Sentinel,
        deadline: &Deadline,
    ) -> Result<Option<(String, u16)>, StoreError> {
        let shown = sentinel.addr.to_string();
        let error = |err: RedisError| to_store_error(err, shown.clone(), deadline.timeout);
        let left = deadline.left_at(&shown)?;
        let mut connection = redis::Client::open(sentinel.info.clone())
            .and_then(|client| client.get_connection_with_timeout(left))
            .map_err(error)?;
        if let Some(auth) = &sentinel.auth {
            send::<()>(&mut connection, auth, deadline, &shown).map_err(error)?;
        }
        let mut ask = redis::cmd("SENTINEL");
        ask.arg("GET-MASTER-ADDR-BY-NAME").arg(&self.inner.service);
        let answer: Option<(String, String)> =
            send(&mut connection, &ask, deadline, &shown).map_err(error)?;
        let Some((host, port)) = answer else {
            return Ok(None);
        };
        let port = port.parse().map_err(|_| StoreError::Command {
            addr: shown.clone(),
            message: format!("the sentinel named a master with no valid port: {port:?}"),
        })?;
        Ok(Some((host, port)))
    }

    /// A connection to the master at `host:port`, set up; `None` when the
    /// server says it is not a master (yet, or any more).
    fn open_master(
        &self,
        host: &str,
        port: u16,
        deadline: &Deadline,
    ) -> Result<Option<MasterConnection>, StoreError> {
        let shown = master_shown(host, port);
        let error = |err: RedisError| master_error(err, &shown, deadline.timeout);
        let info = self.master_info(host, port);
        let left = deadline.left_at(&shown)?;
        let mut connection = redis::Client::open(info)
            .and_then(|client| client.get_connection_with_timeout(left))
            .map_err(error)?;
        for command in &self.inner.handshake {
            send::<()>(&mut connection, command, deadline, &shown).map_err(error)?;
        }
        let reply: Vec<Value> =
            send(&mut connection, &redis::cmd("ROLE"), deadline, &shown).map_err(error)?;
        if !is_master(reply) {
            return Ok(None);
        }
        let response_timeout = self.inner.options.response_timeout;
        connection
            .set_read_timeout(response_timeout)
            .and_then(|()| connection.set_write_timeout(response_timeout))
            .map_err(error)?;
        Ok(Some(MasterConnection {
            connection,
            shown,
            gone: false,
        }))
    }
}

/// The error of the master at `shown`, which may be a refusal of the
/// handshake (a wrong password).
fn master_error(err: RedisError, shown: &str, timeout: Duration) -> StoreError {
    match to_store_error(err, shown.to_owned(), timeout) {
        StoreError::Connection {
            addr,
            message,
            source,
        } => StoreError::Connection {
            message: format!("the master {addr}: {message}"),
            addr,
            source,
        },
        other => other,
    }
}

/// Sends `command` on a connection being set up, with what is left of the
/// connect timeout as its read and write timeouts. A timeout shows as an
/// I/O timeout, which [`to_store_error`] reads as one.
fn send<T: redis::FromRedisValue>(
    connection: &mut Connection,
    command: &Cmd,
    deadline: &Deadline,
    shown: &str,
) -> RedisResult<T> {
    let left = deadline.left_at(shown).map_err(|_| {
        RedisError::from(io::Error::new(
            io::ErrorKind::TimedOut,
            "the connect timeout passed",
        ))
    })?;
    connection.set_read_timeout(Some(left))?;
    connection.set_write_timeout(Some(left))?;
    command.query(connection)
}

/// Whether a `ROLE` reply says the server is a master.
pub(crate) fn is_master(reply: Vec<Value>) -> bool {
    let role: Option<String> = reply
        .into_iter()
        .next()
        .and_then(|first| redis::from_redis_value(first).ok());
    role.as_deref() == Some("master")
}

/// The search for the master within the connect timeout, as the sync and
/// the async store make it: ask the sentinels, connect to the server they
/// name, and when it turns out a replica (a failover under way), ask again
/// after a pause that doubles up to 200 ms.
pub(crate) struct MasterSearch {
    pub(crate) deadline: Deadline,
    pause: Duration,
    /// The last server named that turned out a replica.
    replica: Option<String>,
    service: String,
}

impl MasterSearch {
    pub(crate) fn new(store: &RedisSentinelStore) -> Self {
        Self {
            deadline: Deadline::new(store),
            pause: Duration::from_millis(10),
            replica: None,
            service: store.inner.service.clone(),
        }
    }

    /// The server at `shown` was named the master but is a replica: how
    /// long to pause before asking again, or the error when no time is left.
    pub(crate) fn named_replica(&mut self, shown: String) -> Result<Duration, StoreError> {
        self.replica = Some(shown);
        let Ok(left) = self.deadline.left() else {
            return Err(self.replica_error());
        };
        let pause = self.pause.min(left);
        self.pause = (self.pause * 2).min(Duration::from_millis(200));
        Ok(pause)
    }

    /// The error of a failed step: out of time after a replica was named,
    /// that is the news; else the step's own error.
    pub(crate) fn failed(&self, err: StoreError) -> StoreError {
        match self.replica {
            Some(_) if self.deadline.left().is_err() => self.replica_error(),
            _ => err,
        }
    }

    fn replica_error(&self) -> StoreError {
        StoreError::Connection {
            addr: self.deadline.shown.clone(),
            message: format!(
                "the sentinels name {} as the master of {:?}, but it is a replica; \
                 no master within {:?}",
                self.replica.as_deref().unwrap_or_default(),
                self.service,
                self.deadline.timeout
            ),
            source: None,
        }
    }
}

/// The connect timeout as one deadline.
#[derive(Clone)]
pub(crate) struct Deadline {
    start: Instant,
    timeout: Duration,
    shown: String,
}

impl Deadline {
    fn new(store: &RedisSentinelStore) -> Self {
        Self {
            start: Instant::now(),
            timeout: store.inner.options.connect_timeout,
            shown: store.inner.shown.clone(),
        }
    }

    /// What is left, or a timeout naming the store.
    pub(crate) fn left(&self) -> Result<Duration, StoreError> {
        self.left_at(&self.shown)
    }

    /// What is left, or a timeout naming `addr`.
    fn left_at(&self, addr: &str) -> Result<Duration, StoreError> {
        self.timeout
            .checked_sub(self.start.elapsed())
            .filter(|left| !left.is_zero())
            .ok_or_else(|| StoreError::Timeout {
                addr: addr.to_owned(),
                timeout: self.timeout,
            })
    }
}

impl Connector for RedisSentinelStore {
    type Connection = MasterConnection;

    fn pool(&self) -> &Pool<MasterConnection> {
        &self.inner.pool
    }

    /// Asks the sentinels, connects to the master they name and checks it
    /// is one; when it is not, asks again after a short pause. The connect
    /// timeout bounds the whole of it.
    fn connect(&self) -> Result<MasterConnection, StoreError> {
        let start = std::time::Instant::now();
        let opened = self.open_connection();
        crate::trace::connected("sentinel", &self.inner.shown, start, &opened);
        opened
    }

    fn response_timeout(&self) -> Option<Duration> {
        self.inner.options.response_timeout
    }

    fn shown_addr(&self) -> String {
        self.inner.shown.clone()
    }
}

/// `host:port` as errors show the master.
pub(crate) fn master_shown(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// An error's message without the address it names.
fn short(err: &StoreError) -> String {
    match err {
        StoreError::Connection { message, .. } | StoreError::Command { message, .. } => {
            message.clone()
        }
        StoreError::Timeout { timeout, .. } => format!("no answer within {timeout:?}"),
        other => other.to_string(),
    }
}

/// A connection to the master that turns the answers of a master that is
/// no longer one into a lost connection, so that the pool drops it and
/// sends the command again on a connection to the current master.
pub(super) struct MasterConnection {
    connection: Connection,
    /// The master's `host:port`.
    shown: String,
    /// Whether the server said it is no longer the master.
    gone: bool,
}

/// Whether an error `code` and `detail` say the server is no longer a
/// master that can take the command (which so did not run).
pub(crate) fn demoted(code: &str, detail: Option<&str>) -> bool {
    match code {
        "READONLY" | "NOREPLICAS" => true,
        // A pop blocked on a master when it turned into a replica.
        "UNBLOCKED" => detail.is_some_and(|detail| detail.contains("state changed")),
        _ => false,
    }
}

impl MasterConnection {
    /// `reply`, or a lost connection when it says the server is no longer
    /// a master that can take the command (which so did not run).
    fn check(&mut self, reply: RedisResult<Value>) -> RedisResult<Value> {
        let (code, detail) = match &reply {
            Ok(Value::ServerError(err)) => (err.code(), err.details()),
            Err(err) => (err.code().unwrap_or_default(), err.detail()),
            Ok(_) => return reply,
        };
        if !demoted(code, detail) {
            return reply;
        }
        self.gone = true;
        let said = format!("{code} {}", detail.unwrap_or_default());
        Err(RedisError::from(io::Error::new(
            io::ErrorKind::ConnectionAborted,
            format!(
                "{} is no longer a master that takes writes: {}",
                self.shown,
                said.trim()
            ),
        )))
    }
}

impl ConnectionLike for MasterConnection {
    fn req_packed_command(&mut self, cmd: &[u8]) -> RedisResult<Value> {
        let reply = self.connection.req_packed_command(cmd);
        self.check(reply)
    }

    fn req_command(&mut self, cmd: &Cmd) -> RedisResult<Value> {
        let reply = self.connection.req_command(cmd);
        self.check(reply)
    }

    fn req_packed_commands(
        &mut self,
        cmd: &[u8],
        offset: usize,
        count: usize,
    ) -> RedisResult<Vec<Value>> {
        self.connection.req_packed_commands(cmd, offset, count)
    }

    fn get_db(&self) -> i64 {
        self.connection.get_db()
    }

    fn check_connection(&mut self) -> bool {
        !self.gone && self.connection.check_connection()
    }

    fn is_open(&self) -> bool {
        !self.gone && self.connection.is_open()
    }
}

impl PooledConnection for MasterConnection {
    fn set_read_timeout(&self, timeout: Option<Duration>) -> RedisResult<()> {
        self.connection.set_read_timeout(timeout)
    }
}

impl fmt::Debug for MasterConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MasterConnection")
            .field("master", &self.shown)
            .finish_non_exhaustive()
    }
}

impl RedisSentinelStore {
    /// The AUTH and SELECT of a connection to the master, and the service
    /// as errors show it.
    #[cfg(feature = "tokio")]
    pub(crate) fn master_handshake(&self) -> (&[Cmd], &str) {
        (&self.inner.handshake, &self.inner.shown)
    }

    /// [`Connector::connect`], without its event.
    fn open_connection(&self) -> Result<MasterConnection, StoreError> {
        let mut search = MasterSearch::new(self);
        loop {
            let (host, port) = self
                .ask_sentinels(&search.deadline)
                .map_err(|err| search.failed(err))?;
            match self
                .open_master(&host, port, &search.deadline)
                .map_err(|err| search.failed(err))?
            {
                Some(connection) => {
                    self.note_master(&host, port);
                    return Ok(connection);
                }
                None => thread::sleep(search.named_replica(master_shown(&host, port))?),
            }
        }
    }

    /// Remembers the master connected to, with an event when it changed.
    pub(crate) fn note_master(&self, host: &str, port: u16) {
        let mut master = self
            .inner
            .master
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = (host.to_owned(), port);
        if master.as_ref() != Some(&now) {
            crate::trace::event!(
                INFO,
                service = %self.inner.service,
                from = ?master.as_ref().map(|(host, port)| format!("{host}:{port}")),
                to = %format!("{host}:{port}"),
                "sentinel master changed"
            );
            *master = Some(now);
        }
    }
}

impl fmt::Debug for RedisSentinelStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisSentinelStore")
            .field("service", &self.inner.service)
            .field("sentinels", &self.sentinels())
            .field("options", &self.inner.options)
            .finish_non_exhaustive()
    }
}

connector_lease_store!(RedisSentinelStore);

impl ListStore for RedisSentinelStore {
    connector_list_store_methods!(single_server);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_show() {
        let options = RedisSentinelStoreOptions {
            sentinel_password: Some("Quokkapw".into()),
            password: Some("Wombatpw".into()),
            connect_timeout: Duration::from_millis(200),
            ..RedisSentinelStoreOptions::default()
        };
        let store = RedisSentinelStore::open_with(
            ["redis://:Numbatpw@127.0.0.1:1/", "127.0.0.1:2"],
            "svc",
            options,
        )
        .expect("valid sentinels");
        let err = store.pop("/k/client").unwrap_err();
        assert!(err.is_connection(), "{err:?}");
        for shown in [
            format!("{store:?}"),
            format!("{:?}", store.options()),
            err.to_string(),
            format!("{err:?}"),
        ] {
            for secret in ["Quokkapw", "Wombatpw", "Numbatpw"] {
                assert!(!shown.contains(secret), "{secret} in {shown}");
            }
        }
        assert!(format!("{store:?}").contains("***"));
    }

    #[test]
    fn sentinels_and_service_are_checked_before_anything_connects() {
        let none: [&str; 0] = [];
        let err = RedisSentinelStore::open(none, "svc").unwrap_err();
        assert!(matches!(err, StoreError::InvalidAddress { .. }), "{err}");
        let err = RedisSentinelStore::open([26379], "").unwrap_err();
        assert!(matches!(err, StoreError::InvalidAddress { .. }), "{err}");
        let err = RedisSentinelStore::open(["nohost"], "svc").unwrap_err();
        assert!(matches!(err, StoreError::InvalidAddress { .. }), "{err}");
        let store = RedisSentinelStore::open([26379, 26380], "svc").unwrap();
        assert_eq!(store.sentinels().len(), 2);
        assert_eq!(store.service(), "svc");
        assert!(store.ptr_eq(&store.clone()));
    }
}
