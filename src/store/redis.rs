//! [`RedisStore`]: the [`ListStore`] on a real Redis, via the `redis` crate.

use std::fmt;
use std::io::Read;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::io::tcp::TcpSettings;
use redis::{
    Cmd, Connection, ConnectionAddr, ConnectionInfo, IntoConnectionInfo, RedisConnectionInfo,
    RedisError,
};

use super::addr::{IntoRedisAddr, RedisAddr};
use super::auth::RedisAuth;
use super::commands::lease::connector_lease_store;
use super::commands::{Connector, connector_list_store_methods};
use super::pool::{Pool, PoolLimits, pool_limits, to_store_error};
use super::{ListStore, StoreError};
use crate::tls::TlsOptions;

/// Settings of a [`RedisStore`]. `Default` gives the documented values.
///
/// Two option sets are equal when every field is; [`get_client_with`]
/// hands out one store per address and options.
///
/// [`get_client_with`]: crate::get_client_with
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RedisStoreOptions {
    /// How long opening a connection may take: the TCP connect and the
    /// AUTH/SELECT handshake together. Default: 1 s.
    pub connect_timeout: Duration,
    /// How long a non-blocking command may wait for its answer; `None`
    /// waits without limit. A blocking pop waits its own timeout plus this.
    /// Default: 5 s.
    pub response_timeout: Option<Duration>,
    /// How many idle connections are kept for reuse. A value above
    /// `max_connections` keeps at most `max_connections`. Default: 16.
    pub max_idle: usize,
    /// The certificates of a `rediss://` address (feature `tls-rustls`):
    /// `None` trusts the system's roots and presents no client
    /// certificate. Given for a `redis://` address, the store refuses to
    /// open. Default: `None`.
    pub tls: Option<TlsOptions>,
    /// A username and password to authenticate with, in place of any the
    /// address holds. Default: `None` (the address's, if any).
    pub auth: Option<RedisAuth>,
    /// How many connections the store may have open at once: idle ones,
    /// ones in use, and ones being opened. Each call holds one connection
    /// while it runs, and each blocked receive
    /// ([`blocking_pop`](ListStore::blocking_pop), `brecv_msg`, a blocking
    /// leased receive) holds one for as long as it waits, so this also
    /// bounds how many receives can block at once: a call past the cap
    /// waits `pool_timeout` for a connection to come back.
    ///
    /// Default: 64, four times `max_idle`: room for dozens of threads
    /// blocked in receives beside the senders, while a hundred processes
    /// stay well below Redis's default `maxclients` of 10,000. 0 is
    /// refused by [`RedisStore::open_with`].
    pub max_connections: usize,
    /// How long a call waits for a connection when `max_connections` are
    /// in use, before it fails with [`StoreError::PoolExhausted`] (which
    /// names the cap and this timeout; nothing was sent). `Duration::ZERO`
    /// fails at once; 100 years and more (`Duration::MAX`) waits without
    /// limit. Default: 5 s, the response timeout's default.
    pub pool_timeout: Duration,
}

impl Default for RedisStoreOptions {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(1),
            response_timeout: Some(Duration::from_secs(5)),
            max_idle: 16,
            tls: None,
            auth: None,
            max_connections: 64,
            pool_timeout: Duration::from_secs(5),
        }
    }
}

impl RedisStoreOptions {
    /// The pool's bounds, once `max_connections` is checked.
    fn pool_limits(&self, addr: &RedisAddr) -> Result<PoolLimits, StoreError> {
        pool_limits(
            addr.to_string(),
            self.max_idle,
            self.max_connections,
            self.pool_timeout,
        )
    }
}

/// A [`ListStore`] on a Redis server.
///
/// - Opening it connects to nothing: connections are opened on first use,
///   kept in a small pool and reused; a thread that needs one while all are
///   busy opens another, so a blocked [`blocking_pop`](ListStore::blocking_pop)
///   never stalls other calls, up to
///   [`max_connections`](RedisStoreOptions::max_connections) (64) in all:
///   past that, a call waits up to
///   [`pool_timeout`](RedisStoreOptions::pool_timeout) (5 s) for another to
///   give its connection back, then fails with
///   [`StoreError::PoolExhausted`]. A connection that breaks, whatever the
///   error (or a panic), frees its place.
/// - Opening a connection is bounded by the connect timeout as a whole:
///   every address of the host in turn and the AUTH/SELECT handshake
///   share one deadline.
/// - Every command has a response timeout; a blocking pop waits its own
///   timeout plus that margin, never cut short.
/// - A push with a TTL and a take of the last element are Lua scripts
///   that check before they write, so a failure changes nothing.
/// - After Redis restarts (or kills the connection) the store reconnects by
///   itself: a pooled connection found closed is replaced and the command
///   sent again on a fresh one, once. A call while Redis is down fails with
///   [`StoreError::Connection`] or [`StoreError::Timeout`].
/// - After `fork()`, the child never uses the parent's sockets: the pool is
///   emptied the first time the child uses the store.
///
/// Clones share one pool. [`get_client`](crate::get_client) hands out one
/// store per address per process.
///
/// # Examples
///
/// ```no_run
/// use redisutil::{ListStore, RedisStore};
///
/// let store = RedisStore::open("127.0.0.1:6379")?;
/// store.push("/jobs/client", &[br#"{"id":1}"#], None)?;
/// # Ok::<(), redisutil::StoreError>(())
/// ```
#[derive(Clone)]
pub struct RedisStore {
    inner: Arc<Inner>,
}

struct Inner {
    /// Where to connect, without credentials or database: the handshake
    /// is ours, so that the connect timeout bounds all of it.
    info: ConnectionInfo,
    /// AUTH and SELECT, as the address asks; each sent alone.
    handshake: Vec<Cmd>,
    /// Whether connections speak TLS (`rediss://`).
    tls: bool,
    addr: RedisAddr,
    options: RedisStoreOptions,
    pool: Pool<Connection>,
}

impl RedisStore {
    /// A store for the Redis at `addr`, with default options. Connects to
    /// nothing yet.
    pub fn open(addr: impl IntoRedisAddr) -> Result<Self, StoreError> {
        Self::open_with(addr, RedisStoreOptions::default())
    }

    /// A store for the Redis at `addr` with `options`. Connects to nothing
    /// yet. A `max_connections` of 0 is refused
    /// ([`StoreError::InvalidAddress`], naming the option).
    pub fn open_with(
        addr: impl IntoRedisAddr,
        options: RedisStoreOptions,
    ) -> Result<Self, StoreError> {
        let addr = addr.into_redis_addr()?;
        let limits = options.pool_limits(&addr)?;
        let invalid = |err: RedisError| StoreError::InvalidAddress {
            addr: addr.to_string(),
            message: err.to_string(),
        };
        let info = addr.url().into_connection_info().map_err(invalid)?;
        let settings = info.redis_settings();
        let handshake = match &options.auth {
            None => handshake(settings.username(), settings.password(), settings.db()),
            Some(auth) => handshake(
                auth.username.as_deref(),
                Some(&auth.password),
                settings.db(),
            ),
        };
        let info = plain(info);
        let tls = matches!(info.addr(), ConnectionAddr::TcpTls { .. });
        let info = tls_info(info, tls, options.tls.as_ref()).map_err(|message| {
            StoreError::InvalidAddress {
                addr: addr.to_string(),
                message,
            }
        })?;
        redis::Client::open(info.clone()).map_err(invalid)?;
        Ok(Self {
            inner: Arc::new(Inner {
                info,
                handshake,
                tls,
                addr,
                pool: Pool::new(limits),
                options,
            }),
        })
    }

    /// The server's address.
    pub fn addr(&self) -> &RedisAddr {
        &self.inner.addr
    }

    /// The options in force.
    pub fn options(&self) -> &RedisStoreOptions {
        &self.inner.options
    }

    /// What opening a connection takes: where (without credentials or
    /// database), the AUTH and SELECT to send, and whether it speaks TLS.
    #[cfg(feature = "tokio")]
    pub(crate) fn connection_parts(&self) -> (&ConnectionInfo, &[Cmd], bool) {
        (&self.inner.info, &self.inner.handshake, self.inner.tls)
    }

    /// Whether `self` and `other` are the same handle (clones of one store).
    pub fn ptr_eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }
}

impl Connector for RedisStore {
    type Connection = Connection;

    fn pool(&self) -> &Pool<Connection> {
        &self.inner.pool
    }

    /// Opens a connection within the connect timeout, which bounds the
    /// whole of it: name resolution aside, every address tried and the
    /// handshake share one deadline.
    fn connect(&self) -> Result<Connection, StoreError> {
        let start = Instant::now();
        let opened = self.open_connection();
        crate::trace::connected("redis", &self.inner.addr, start, &opened);
        opened
    }

    fn refusal(&self) -> Option<String> {
        let ConnectionAddr::Tcp(host, port) = self.inner.info.addr() else {
            return None;
        };
        let timeout = self.inner.options.connect_timeout;
        let addr = (host.as_str(), *port).to_socket_addrs().ok()?.next()?;
        let mut socket = TcpStream::connect_timeout(&addr, timeout).ok()?;
        socket
            .set_read_timeout(Some(timeout.min(Duration::from_millis(500))))
            .ok()?;
        let mut greeting = [0; 256];
        let read = socket.read(&mut greeting).ok()?;
        let line = greeting[..read].strip_prefix(b"-")?;
        let line = line.split(|byte| *byte == b'\r').next()?;
        Some(String::from_utf8_lossy(line).into_owned())
    }

    fn response_timeout(&self) -> Option<Duration> {
        self.inner.options.response_timeout
    }

    fn shown_addr(&self) -> String {
        self.inner.addr.to_string()
    }
}

impl RedisStore {
    /// [`Connector::connect`], without its events.
    fn open_connection(&self) -> Result<Connection, StoreError> {
        let inner = &self.inner;
        let timeout = inner.options.connect_timeout;
        let start = Instant::now();
        let left = || {
            timeout
                .checked_sub(start.elapsed())
                .filter(|left| !left.is_zero())
                .ok_or_else(|| StoreError::Timeout {
                    addr: inner.addr.to_string(),
                    timeout,
                })
        };
        let mut connection = self.open_socket(&left)?;
        for command in &inner.handshake {
            let left = left()?;
            connection
                .set_read_timeout(Some(left))
                .and_then(|()| connection.set_write_timeout(Some(left)))
                .and_then(|()| command.query::<()>(&mut connection))
                .map_err(|err| self.explain(err, timeout))?;
        }
        if inner.tls && inner.handshake.is_empty() {
            // The TLS handshake happens on the first command: a PING makes
            // it happen here, within the connect timeout (a TLS client on a
            // plain port would otherwise wait for an answer that never comes).
            let left = left()?;
            connection
                .set_read_timeout(Some(left))
                .and_then(|()| connection.set_write_timeout(Some(left)))
                .and_then(|()| redis::cmd("PING").query::<()>(&mut connection))
                .map_err(|err| match self.explain(err, timeout) {
                    StoreError::Timeout { addr, timeout } => StoreError::Connection {
                        addr,
                        message: format!(
                            "no answer to the TLS handshake within {timeout:?}: is it a TLS port?"
                        ),
                        source: None,
                    },
                    err => err,
                })?;
        }
        let response_timeout = inner.options.response_timeout;
        connection
            .set_read_timeout(response_timeout)
            .and_then(|()| connection.set_write_timeout(response_timeout))
            .map_err(|err| self.explain(err, timeout))?;
        Ok(connection)
    }
}

impl RedisStore {
    /// A TCP connection to the server: each address the host resolves to
    /// in turn, with what is left of the connect timeout.
    fn open_socket(
        &self,
        left: &dyn Fn() -> Result<Duration, StoreError>,
    ) -> Result<Connection, StoreError> {
        let inner = &self.inner;
        let timeout = inner.options.connect_timeout;
        let open = |info: ConnectionInfo| {
            let left = left()?;
            redis::Client::open(info)
                .and_then(|client| client.get_connection_with_timeout(left))
                .map_err(|err| self.explain(err, timeout))
        };
        let ConnectionAddr::Tcp(host, port) = inner.info.addr() else {
            return open(inner.info.clone());
        };
        if host.parse::<std::net::IpAddr>().is_ok() {
            return open(inner.info.clone());
        }
        let addrs: Vec<SocketAddr> = (host.as_str(), *port)
            .to_socket_addrs()
            .map_err(|err| StoreError::Connection {
                addr: inner.addr.to_string(),
                message: format!("cannot resolve {host}: {err}"),
                source: Some(Box::new(err)),
            })?
            .collect();
        let mut last = None;
        for addr in addrs {
            let at = ConnectionAddr::Tcp(addr.ip().to_string(), addr.port());
            match open(inner.info.clone().set_addr(at)) {
                Ok(connection) => return Ok(connection),
                Err(err @ StoreError::Timeout { .. }) => return Err(err),
                Err(err) => last = Some(err),
            }
        }
        Err(last.unwrap_or_else(|| StoreError::Connection {
            addr: inner.addr.to_string(),
            message: format!("{host} resolves to no address"),
            source: None,
        }))
    }

    /// The [`StoreError`] for `err`, with the server's own words when it
    /// closed the connection after saying why (`maxclients` reached).
    fn explain(&self, err: RedisError, timeout: Duration) -> StoreError {
        let lost = !err.is_timeout() && (err.is_io_error() || err.is_connection_dropped());
        match lost.then(|| self.refusal()).flatten() {
            Some(said) => StoreError::Connection {
                addr: self.inner.addr.to_string(),
                message: format!("the server closed the connection, saying: {said}"),
                source: Some(Box::new(err)),
            },
            None => to_store_error(err, self.inner.addr.to_string(), timeout),
        }
    }
}

/// `info` with the certificates of `options` when the address is TLS; why
/// not, when the address and the options disagree or the build has no TLS.
pub(super) fn tls_info(
    info: ConnectionInfo,
    tls: bool,
    options: Option<&TlsOptions>,
) -> Result<ConnectionInfo, String> {
    if !tls {
        return match options {
            Some(_) => Err("TLS options are for a rediss:// address".into()),
            None => Ok(info),
        };
    }
    #[cfg(feature = "tls-rustls")]
    {
        crate::tls::install_crypto_provider();
        match options {
            None => Ok(info),
            Some(options) => redis::Client::build_with_tls(
                info,
                options.check().map(|()| options.certificates())?,
            )
            .map(|client| client.get_connection_info().clone())
            .map_err(|err| format!("unusable TLS certificates: {err}")),
        }
    }
    #[cfg(not(feature = "tls-rustls"))]
    {
        let _ = (info, options);
        Err("a rediss:// address needs the feature tls-rustls".into())
    }
}

/// `info` without credentials or database, which the stores send
/// themselves ([`handshake`]) within the connect timeout: redis-rs's own
/// handshake is one pipeline whose replies each wait the whole timeout; it
/// also names the library (CLIENT SETINFO), a round trip the stores do
/// without. And with Nagle's algorithm off: requests are written whole, so
/// it only adds delay.
pub(super) fn plain(info: ConnectionInfo) -> ConnectionInfo {
    info.set_tcp_settings(TcpSettings::default().set_nodelay(true))
        .set_redis_settings(RedisConnectionInfo::default().set_skip_set_lib_name())
}

/// The commands that set a new connection up: AUTH with the username and
/// password when there is a password, SELECT of the database unless it is
/// 0.
pub(super) fn handshake(username: Option<&str>, password: Option<&str>, db: i64) -> Vec<Cmd> {
    let mut commands = Vec::new();
    if let Some(password) = password {
        commands.push(auth(username, password));
    }
    if db != 0 {
        let mut select = redis::cmd("SELECT");
        select.arg(db);
        commands.push(select);
    }
    commands
}

/// `AUTH [username] password`.
pub(super) fn auth(username: Option<&str>, password: &str) -> Cmd {
    let mut auth = redis::cmd("AUTH");
    if let Some(username) = username {
        auth.arg(username);
    }
    auth.arg(password);
    auth
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("addr", &self.inner.addr)
            .field("options", &self.inner.options)
            .finish_non_exhaustive()
    }
}

connector_lease_store!(RedisStore);

impl ListStore for RedisStore {
    connector_list_store_methods!(single_server);
}
