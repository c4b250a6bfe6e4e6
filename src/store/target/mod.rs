//! Targets: where a Redis store sends its commands, as plain data and
//! logic with no I/O. A target knows its nodes ([`Target::locate`]), what
//! an error reply means ([`Target::verdict`]), a cluster's layout, and how
//! a connection to a node is opened ([`Target::dial`], as steps the
//! drivers do). Three of them:
//!
//! - [`Server`]: one server (`server.rs`);
//! - `Cluster`: a Redis Cluster and its slot map (`cluster.rs`);
//! - `Sentinel`: the master of a Sentinel service, searched for through
//!   the sentinels on every new connection (`sentinel.rs`).
//!
//! The options the stores are opened with live here too, since a target
//! is built from them.

#[cfg(feature = "cluster")]
mod cluster;
pub(crate) mod endpoint;
pub(crate) mod open;
#[cfg(feature = "sentinel")]
mod sentinel;
#[cfg(feature = "sentinel")]
pub(crate) mod sentinel_url;
mod server;

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[cfg(feature = "cluster")]
pub use cluster::{Cluster, RedisClusterStoreOptions};
use endpoint::{Endpoint, Tls};
#[cfg(feature = "sentinel")]
pub use sentinel::{RedisSentinelStoreOptions, Sentinel};
pub use server::{RedisStoreOptions, Server};

use super::protocol::resp::Reply;
use super::protocol::{Failure, Node, OpenError, Request, Route, TlsConfig};
use super::{StoreError, WAITS_FOREVER};
use crate::tls::TlsOptions;

/// The connections of a store, per node. `Default` gives the documented
/// values.
///
/// Two option sets are equal when every field is; the process-wide
/// registry ([`get_client_with`](crate::get_client_with)) hands out one
/// store per address and options.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PoolOptions {
    /// How many idle connections are kept for reuse. A value above
    /// `max_connections` keeps at most `max_connections`. Default: 16.
    pub max_idle: usize,
    /// How many connections a node may have open at once from the store:
    /// idle ones, ones in use, and ones being opened. Each blocking call
    /// holds one while it runs, and each blocked receive
    /// ([`blocking_pop`](crate::ListStore::blocking_pop), `brecv_msg`, a
    /// blocking leased receive) holds one for as long as it waits, so this
    /// also bounds how many receives can block at once: a call past the
    /// cap waits `pool_timeout` for a connection to come back.
    ///
    /// Default: 64, four times `max_idle`: room for dozens of threads
    /// blocked in receives beside the senders, while a hundred processes
    /// stay well below Redis's default `maxclients` of 10,000. 0 is
    /// refused when the store is opened ([`StoreError::InvalidOptions`]).
    pub max_connections: usize,
    /// How long a call waits for a connection when `max_connections` are
    /// in use, before it fails with [`StoreError::PoolExhausted`] (which
    /// names the cap and this timeout; nothing was sent).
    /// `Duration::ZERO` fails at once; 100 years and more (`Duration::MAX`)
    /// waits without limit. Default: 5 s, the response timeout's default.
    pub pool_timeout: Duration,
    /// Async stores only: whether the calls that cannot block share one
    /// connection per node, their requests pipelined (the default, `true`:
    /// the most throughput for many tasks), or each take a connection of
    /// their own from the pool for as long as they run (`false`: the least
    /// latency for a few tasks that each make one call at a time). The
    /// blocking stores always give each call a connection of its own.
    pub multiplexed: bool,
}

impl Default for PoolOptions {
    fn default() -> Self {
        Self {
            max_idle: 16,
            max_connections: 64,
            pool_timeout: Duration::from_secs(5),
            multiplexed: true,
        }
    }
}

impl PoolOptions {
    /// These options, or the refusal of a pool that cannot work.
    pub(crate) fn checked(self) -> Result<Self, StoreError> {
        if self.max_connections == 0 {
            return Err(StoreError::InvalidOptions {
                message: "pool.max_connections is 0: a store needs at least one connection".into(),
            });
        }
        Ok(self)
    }
}

/// What every target holds, read by the drivers and the exchange.
pub(crate) struct Settings {
    /// The target as errors show it, credentials hidden.
    pub(crate) shown: Arc<str>,
    pub(crate) connect_timeout: Duration,
    pub(crate) response_timeout: Option<Duration>,
    pub(crate) pool: PoolOptions,
    /// The TLS configuration, when the target speaks TLS.
    pub(crate) tls: Option<TlsConfig>,
}

impl Settings {
    /// The settings of a target shown as `shown`, whose addresses speak
    /// `tls`; refuses options that cannot work with them.
    fn new(
        shown: String,
        connect_timeout: Duration,
        response_timeout: Option<Duration>,
        pool: PoolOptions,
        tls: Tls,
        tls_options: Option<&TlsOptions>,
    ) -> Result<Self, StoreError> {
        let pool = pool.checked()?;
        let tls = tls_config(&shown, tls, tls_options)?;
        Ok(Self {
            shown: shown.into(),
            connect_timeout,
            response_timeout,
            pool,
            tls,
        })
    }

    /// The deadline of a connection opened now.
    fn deadline(&self) -> Instant {
        deadline_in(self.connect_timeout)
    }
}

/// `now + timeout`, or 100 years from now when that cannot be told.
pub(crate) fn deadline_in(timeout: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(timeout.min(WAITS_FOREVER))
        .or_else(|| now.checked_add(Duration::from_secs(24 * 60 * 60)))
        .unwrap_or(now)
}

/// The TLS configuration of addresses that speak `tls`, with `options`;
/// the refusal of options that do not fit the addresses.
fn tls_config(
    shown: &str,
    tls: Tls,
    options: Option<&TlsOptions>,
) -> Result<Option<TlsConfig>, StoreError> {
    let refuse = |message: String| StoreError::InvalidAddress {
        addr: shown.to_owned(),
        message,
    };
    match tls {
        Tls::Off => match options {
            Some(_) => Err(refuse(
                "TLS options are for a rediss:// address (TLS); this one is redis://".into(),
            )),
            None => Ok(None),
        },
        #[cfg(not(feature = "tls-rustls-insecure"))]
        Tls::Insecure => Err(refuse(
            "a rediss://…/#insecure address skips verifying the server's certificate, \
             which needs the feature tls-rustls-insecure"
                .into(),
        )),
        #[cfg(feature = "tls-rustls")]
        tls => crate::tls::redis_client_config(options, tls == Tls::Insecure)
            .map(Some)
            .map_err(|why| refuse(format!("unusable TLS certificates: {why}"))),
        #[cfg(not(feature = "tls-rustls"))]
        _ => {
            let _ = options;
            Err(refuse(
                "a rediss:// address needs the feature tls-rustls".into(),
            ))
        }
    }
}

/// Where a call's node is.
pub(crate) enum Located {
    /// Not known yet: the layout is to be learnt first.
    Unknown,
    /// This node (a call on a key, or on one node).
    Node(Node),
    /// These nodes (every master, for a call to every master).
    Nodes(Vec<Node>),
}

/// What an error reply means for the call that got it.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// The server refused the command: the error is the call's result.
    Refused,
    /// The server does not know the script yet: send it with its text.
    NoScript,
    /// A cluster's slot moved to `node` for good.
    Moved { slot: u16, node: Node },
    /// A cluster's slot is being moved: ask `node`, this once.
    Ask { node: Node },
    /// A cluster cannot serve the slot now: try again after a pause.
    TryAgain,
    /// The node is no longer the one to ask (a master turned replica):
    /// the command did not run; find the node again.
    Gone,
    /// The node cannot serve anything now; with `closes`, it closes the
    /// connection too.
    Unavailable { closes: bool },
}

/// The verdicts every target shares: a script unknown, a server full.
fn common_verdict(message: &str) -> Option<Verdict> {
    let code = message.split_whitespace().next().unwrap_or_default();
    match code {
        "NOSCRIPT" => Some(Verdict::NoScript),
        "ERR" if message.contains("max number of clients reached") => {
            Some(Verdict::Unavailable { closes: true })
        }
        // Loading its data after a restart, or a replica without its
        // master: a passing state of the server, not a refusal.
        "LOADING" | "MASTERDOWN" => Some(Verdict::Unavailable { closes: false }),
        _ => None,
    }
}

/// A target: see the [module](self).
pub(crate) trait Target: fmt::Debug + Send + Sync + 'static {
    /// Its settings.
    fn settings(&self) -> &Settings;

    /// The node of `route`.
    fn locate(&self, route: &Route) -> Located;

    /// The request that asks for the layout, and the nodes to ask, in
    /// order; `None` for a target with no layout.
    fn map_request(&self) -> Option<(Request, Vec<Node>)> {
        None
    }

    /// Learns the layout from `node`'s reply to the layout request; why
    /// not, when the reply is not one.
    fn learn_map(&self, _node: &Node, _reply: Reply) -> Result<(), String> {
        Err("a reply to a layout request that was never sent".into())
    }

    /// `node` could not be reached, or broke a call.
    fn forget(&self, _node: &Node) {}

    /// How many redirections a call follows.
    fn max_redirects(&self) -> u32 {
        0
    }

    /// What the error reply `message` from `node` means.
    fn verdict(&self, node: &Node, message: &str) -> Verdict;

    /// A cluster's `slot` is served by `node` now.
    fn moved(&self, _slot: u16, _node: &Node) {}

    /// The steps that open a connection to `node`; with `want_id`, it asks
    /// the server for the connection's id (`CLIENT ID`), to unblock it
    /// from another one.
    fn dial(&self, node: &Node, want_id: bool) -> impl Dialing + Send + '_;
}

/// The steps that open a connection, one at a time.
pub(crate) trait Dialing {
    /// The next step, given what the last one came to.
    fn next(&mut self, event: DialEvent) -> DialStep;
}

/// What a driver does to open a connection.
#[derive(Debug)]
pub(crate) enum DialStep {
    /// Drop any connection held, and open one to `endpoint` by `deadline`.
    Connect {
        endpoint: Endpoint,
        deadline: Instant,
    },
    /// Send `request` on it and read one reply, by `deadline`.
    Send { request: Vec<u8>, deadline: Instant },
    /// Drop any connection held, and wait.
    Pause(Duration),
    /// The connection is ready; its id, when asked.
    Ready { client_id: Option<i64> },
    /// No connection.
    Fail(StoreError),
}

/// What the last [`DialStep`] came to.
#[derive(Debug)]
pub(crate) enum DialEvent {
    /// The first step, or a pause.
    Go,
    Connected,
    NotConnected(OpenError),
    Replied(Reply),
    Failed(Failure),
}

/// A request of a connection's set-up, and what its reply is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ask {
    /// AUTH or SELECT: an OK.
    Setting,
    /// `CLIENT ID`: the connection's id.
    ClientId,
    /// `ROLE`: whether the server is a master.
    Role,
    /// The question the connection was opened for (a sentinel's): its
    /// reply is kept.
    Question,
}

/// The set-up requests of a connection: AUTH with a password, SELECT of a
/// database other than 0.
fn handshake(username: Option<&str>, password: Option<&str>, db: i64) -> Vec<(Ask, Vec<u8>)> {
    let mut requests = Vec::new();
    if let Some(password) = password {
        let auth = match username {
            Some(username) => Request::new(&["AUTH", username, password]),
            None => Request::new(&["AUTH", password]),
        };
        requests.push((Ask::Setting, auth.bytes().to_vec()));
    }
    if db != 0 {
        let select = Request::new(&["SELECT", &db.to_string()]);
        requests.push((Ask::Setting, select.bytes().to_vec()));
    }
    requests
}

/// `CLIENT ID`.
fn client_id_request() -> (Ask, Vec<u8>) {
    (
        Ask::ClientId,
        Request::new(&["CLIENT", "ID"]).bytes().to_vec(),
    )
}

/// What a [`Setup`] came to.
enum Progress {
    /// A step for the driver.
    Step(DialStep),
    /// Set up; its id when asked.
    Ready(Option<i64>),
    /// The server answered a set-up request with this error.
    Refused(String),
    /// `ROLE` said the server is no master.
    Replica,
    /// No connection could be opened.
    NotConnected(OpenError),
    /// The connection broke, or a reply did not come in time.
    Broke(Failure),
    /// A reply that is no answer to its request.
    Unexpected(String),
}

/// Opening one connection: connect, then each set-up request in turn.
struct Setup {
    endpoint: Endpoint,
    requests: Vec<(Ask, Vec<u8>)>,
    /// The next request to send.
    next: usize,
    deadline: Instant,
    client_id: Option<i64>,
    /// The reply to the [`Ask::Question`].
    answer: Option<Reply>,
    started: bool,
}

impl Setup {
    fn new(endpoint: Endpoint, requests: Vec<(Ask, Vec<u8>)>, deadline: Instant) -> Self {
        Self {
            endpoint,
            requests,
            next: 0,
            deadline,
            client_id: None,
            answer: None,
            started: false,
        }
    }

    fn step(&mut self, event: DialEvent) -> Progress {
        if !self.started {
            self.started = true;
            return Progress::Step(DialStep::Connect {
                endpoint: self.endpoint.clone(),
                deadline: self.deadline,
            });
        }
        match event {
            DialEvent::Go | DialEvent::Connected => {}
            DialEvent::NotConnected(err) => return Progress::NotConnected(err),
            DialEvent::Failed(failure) => return Progress::Broke(failure),
            DialEvent::Replied(reply) => {
                let Some(&(ask, _)) = self
                    .next
                    .checked_sub(1)
                    .and_then(|at| self.requests.get(at))
                else {
                    return Progress::Unexpected(format!("{reply:?} to no request"));
                };
                if let Reply::Error(message) = reply {
                    return Progress::Refused(message);
                }
                match ask {
                    Ask::Setting => {}
                    Ask::ClientId => match reply {
                        Reply::Int(id) => self.client_id = Some(id),
                        other => {
                            return Progress::Unexpected(format!("{other:?} to CLIENT ID"));
                        }
                    },
                    Ask::Role => {
                        let master = match &reply {
                            Reply::Array(items) => {
                                matches!(items.first(), Some(Reply::Bulk(role)) if role == b"master")
                            }
                            _ => false,
                        };
                        if !master {
                            return Progress::Replica;
                        }
                    }
                    Ask::Question => self.answer = Some(reply),
                }
            }
        }
        match self.requests.get(self.next) {
            Some((_, request)) => {
                self.next += 1;
                Progress::Step(DialStep::Send {
                    request: request.clone(),
                    deadline: self.deadline,
                })
            }
            None => Progress::Ready(self.client_id),
        }
    }
}

/// The opening of a connection to one node (a lone server, a cluster's
/// node): set up, or an error naming the target `shown` and the node.
struct NodeDial {
    setup: Setup,
    shown: Arc<str>,
    node: String,
    timeout: Duration,
}

impl NodeDial {
    /// `message`, after the node when it is not the whole target.
    fn at(&self, message: impl fmt::Display) -> String {
        if self.node == *self.shown {
            message.to_string()
        } else {
            format!("{}: {message}", self.node)
        }
    }
}

impl Dialing for NodeDial {
    fn next(&mut self, event: DialEvent) -> DialStep {
        let addr = self.shown.to_string();
        match self.setup.step(event) {
            Progress::Step(step) => step,
            Progress::Ready(client_id) => DialStep::Ready { client_id },
            Progress::NotConnected(err) => {
                DialStep::Fail(err.into_store_error(&addr, &self.node, self.timeout))
            }
            Progress::Broke(failure) => {
                DialStep::Fail(set_up_broke(addr, failure, self.timeout, |message| {
                    self.at(message)
                }))
            }
            Progress::Refused(message) => DialStep::Fail(refused(addr, message, |message| {
                format!("{message} (from {})", self.node)
            })),
            Progress::Replica => DialStep::Fail(StoreError::Command {
                message: self.at("ERR the server answered ROLE as no master"),
                addr,
            }),
            Progress::Unexpected(what) => DialStep::Fail(StoreError::Command {
                message: self.at(format_args!(
                    "ERR an unexpected reply while the connection was set up: {what}"
                )),
                addr,
            }),
        }
    }
}

/// The error of a connection that broke while it was set up.
fn set_up_broke(
    addr: String,
    failure: Failure,
    timeout: Duration,
    at: impl Fn(String) -> String,
) -> StoreError {
    match failure {
        Failure::TimedOut(_) => StoreError::Timeout { addr, timeout },
        Failure::NotSent(err) | Failure::Lost(err) => StoreError::Connection {
            message: at(format!("the connection broke while it was set up: {err}")),
            addr,
            source: Some(Box::new(err)),
        },
        Failure::Garbled(err) => StoreError::Connection {
            message: at(format!("the server's reply is no RESP: {err}")),
            addr,
            source: Some(Box::new(err)),
        },
    }
}

/// The error of a set-up request the server refused: a full server is a
/// connection error in its own words; any other refusal (a password
/// missing or wrong) the command error it is, its code first.
fn refused(addr: String, message: String, located: impl Fn(&str) -> String) -> StoreError {
    match common_verdict(&message) {
        Some(Verdict::Unavailable { .. }) => StoreError::Connection {
            addr,
            message: format!("the server closed the connection, saying: {message}"),
            source: None,
        },
        _ => StoreError::Command {
            message: located(&message),
            addr,
        },
    }
}
