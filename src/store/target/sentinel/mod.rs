//! `Sentinel`: the master of a service watched by Redis Sentinel, searched
//! for on every new connection, and [`RedisSentinelStoreOptions`].
//!
//! The search asks the sentinels in turn, starting with the one that
//! named a master last; each has its share of what is left of the connect
//! timeout, so a silent one leaves time for the others. The server named
//! is connected to, set up and asked its `ROLE`: a sentinel that cannot be
//! reached, knows no such service, or names a server that cannot be
//! reached or is a replica (a stale sentinel, a failover under way) is
//! passed over for the next one. When a round ends with a replica named
//! and time left, another round follows after a pause.

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::endpoint::{Endpoint, Place, Tls, parse_url};
use super::sentinel_url::SentinelUrl;
use super::{
    Ask, DialEvent, DialStep, Dialing, Located, PoolOptions, Progress, Settings, Setup, Target,
    Verdict, client_id_request, common_verdict, deadline_in, handshake, refused, set_up_broke,
};
use crate::store::StoreError;
use crate::store::addr::{IntoRedisAddr, RedisAddr, addr_list};
use crate::store::auth::RedisAuth;
use crate::store::protocol::resp::Reply;
use crate::store::protocol::{Failure, Node, Request, Route};
use crate::tls::TlsOptions;

mod search;
use search::*;

/// Settings of a [`RedisSentinelStore`](crate::RedisSentinelStore) (and
/// of the async one). `Default` gives the documented values: the timeouts
/// and pool of [`RedisStoreOptions`](crate::RedisStoreOptions), no
/// credentials, database 0.
///
/// `Debug` never shows a password.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RedisSentinelStoreOptions {
    /// How long opening a connection may take, as a whole: asking the
    /// sentinels, connecting to the master, AUTH, SELECT and checking its
    /// role. Default: 1 s.
    pub connect_timeout: Duration,
    /// How long a non-blocking command may wait for its answer; `None`
    /// waits without limit. A blocking receive waits its own timeout plus
    /// this. Default: 5 s.
    pub response_timeout: Option<Duration>,
    /// The connections to the master.
    pub pool: PoolOptions,
    /// The credentials of the sentinels (their `requirepass`, or an ACL
    /// user). `None`: those of a sentinel's URL, if any, else no AUTH.
    pub sentinel_auth: Option<RedisAuth>,
    /// The credentials of the master (and of the replicas that may replace
    /// it). `None`: no AUTH.
    pub auth: Option<RedisAuth>,
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
        // The timeouts and pool of one server's options.
        let server = crate::RedisStoreOptions::default();
        Self {
            connect_timeout: server.connect_timeout,
            response_timeout: server.response_timeout,
            pool: server.pool,
            sentinel_auth: None,
            auth: None,
            db: 0,
            tls: None,
        }
    }
}

/// The master of a Sentinel service: the sentinels, the set-up of the
/// master's connections, and which sentinel to ask first.
pub struct Sentinel {
    sentinels: Vec<SentinelNode>,
    service: String,
    options: RedisSentinelStoreOptions,
    settings: Settings,
    tls: Tls,
    node: Node,
    /// AUTH and SELECT of the master.
    handshake: Vec<(Ask, Vec<u8>)>,
    /// The sentinel to ask first: the one that named a master last.
    first: AtomicUsize,
    /// The master the last connection went to.
    master: Mutex<Option<(String, u16)>>,
}

/// One sentinel: its address, where it is, and its set-up requests
/// (AUTH), then the question.
struct SentinelNode {
    addr: RedisAddr,
    endpoint: Endpoint,
    requests: Vec<(Ask, Vec<u8>)>,
}

impl Sentinel {
    /// The master of `service` through the `sentinels`, with `options`
    /// checked.
    pub(crate) fn new<I>(
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
        let question = Request::new(&["SENTINEL", "GET-MASTER-ADDR-BY-NAME", service]);
        let mut sentinels = Vec::with_capacity(addrs.len());
        for addr in addrs {
            let url = parse_url(addr.url()).map_err(|message| StoreError::InvalidAddress {
                addr: addr.to_string(),
                message,
            })?;
            if matches!(url.endpoint.place, Place::Unix(_)) {
                return Err(refuse("the sentinels are reached over TCP"));
            }
            let mut requests = match &options.sentinel_auth {
                Some(auth) => handshake(auth.username.as_deref(), Some(&auth.password), 0),
                None => handshake(url.username.as_deref(), url.password.as_deref(), 0),
            };
            requests.push((Ask::Question, question.bytes().to_vec()));
            sentinels.push(SentinelNode {
                addr,
                endpoint: url.endpoint,
                requests,
            });
        }
        let tls = sentinels[0].endpoint.tls;
        if sentinels
            .iter()
            .any(|sentinel| sentinel.endpoint.tls != tls)
        {
            return Err(refuse(
                "the sentinels are all rediss:// (TLS) addresses or all redis:// ones",
            ));
        }
        let settings = Settings::new(
            shown,
            options.connect_timeout,
            options.response_timeout,
            options.pool,
            tls,
            options.tls.as_ref(),
        )?;
        let handshake = match &options.auth {
            Some(auth) => handshake(auth.username.as_deref(), Some(&auth.password), options.db),
            None => handshake(None, None, options.db),
        };
        Ok(Self {
            node: Node::new(settings.shown.clone()),
            sentinels,
            service: service.to_owned(),
            options,
            settings,
            tls,
            handshake,
            first: AtomicUsize::new(0),
            master: Mutex::new(None),
        })
    }

    /// The deployment a `redis-sentinel://` URL names; its credentials and
    /// database are the master's and take the place of those in `options`.
    pub(crate) fn from_url(
        url: &str,
        options: RedisSentinelStoreOptions,
    ) -> Result<Self, StoreError> {
        let parsed = SentinelUrl::parse(url)?;
        let auth = match parsed.password {
            Some(password) => Some(RedisAuth {
                username: parsed.username,
                password,
            }),
            None => options.auth.clone(),
        };
        let options = RedisSentinelStoreOptions {
            auth,
            db: parsed.db.unwrap_or(options.db),
            ..options
        };
        let sentinels: Vec<(&str, u16)> = parsed
            .sentinels
            .iter()
            .map(|(host, port)| (host.as_str(), *port))
            .collect();
        Self::new(sentinels, &parsed.service, options)
    }

    /// The sentinels, as given.
    pub(crate) fn sentinels(&self) -> Vec<&RedisAddr> {
        self.sentinels
            .iter()
            .map(|sentinel| &sentinel.addr)
            .collect()
    }

    /// The service's name.
    pub(crate) fn service(&self) -> &str {
        &self.service
    }

    /// The options in force.
    pub(crate) fn options(&self) -> &RedisSentinelStoreOptions {
        &self.options
    }

    /// The master the last connection went to.
    pub(crate) fn last_master(&self) -> Option<(String, u16)> {
        self.master
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Remembers the master connected to, with an event when it changed.
    fn note_master(&self, host: &str, port: u16) {
        let mut master = self.master.lock().unwrap_or_else(PoisonError::into_inner);
        if master
            .as_ref()
            .is_some_and(|(known, at)| known == host && *at == port)
        {
            return;
        }
        crate::trace::event!(
            INFO,
            service = %self.service,
            from = ?master.as_ref().map(|(host, port)| shown_at(host, *port)),
            to = %shown_at(host, port),
            "sentinel master changed"
        );
        *master = Some((host.to_owned(), port));
    }
}

impl fmt::Debug for Sentinel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisSentinelStore")
            .field("service", &self.service)
            .field("sentinels", &self.sentinels())
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

/// `host:port` as errors show a server.
fn shown_at(host: &str, port: u16) -> String {
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

impl Target for Sentinel {
    fn settings(&self) -> &Settings {
        &self.settings
    }

    fn locate(&self, route: &Route) -> Located {
        match route {
            Route::Node(node) => Located::Node(node.clone()),
            Route::Key(_) => Located::Node(self.node.clone()),
            Route::EveryMaster => Located::Nodes(vec![self.node.clone()]),
        }
    }

    fn verdict(&self, _node: &Node, message: &str) -> Verdict {
        if let Some(verdict) = common_verdict(message) {
            return verdict;
        }
        match message.split_whitespace().next().unwrap_or_default() {
            "READONLY" | "NOREPLICAS" => Verdict::Gone,
            // A receive blocked on a master when it turned replica.
            "UNBLOCKED" if message.contains("state changed") => Verdict::Gone,
            _ => Verdict::Refused,
        }
    }

    fn dial(&self, _node: &Node, want_id: bool) -> impl Dialing + Send + '_ {
        let count = self.sentinels.len();
        let first = self.first.load(Ordering::Relaxed) % count;
        Search {
            target: self,
            want_id,
            deadline: deadline_in(self.settings.connect_timeout),
            order: (0..count).map(|i| (first + i) % count).collect(),
            at: 0,
            phase: Phase::Start,
            unknown: Vec::new(),
            failures: Vec::new(),
            replica: None,
            pause: Duration::from_millis(10),
        }
    }
}

/// `err` of the master at `master`, said so.
fn the_master(err: StoreError, master: &str) -> StoreError {
    match err {
        StoreError::Connection {
            addr,
            message,
            source,
        } => StoreError::Connection {
            message: format!("the master {master}: {message}"),
            addr,
            source,
        },
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_show() {
        let options = RedisSentinelStoreOptions {
            sentinel_auth: Some(RedisAuth::password("Quokkapw")),
            auth: Some(RedisAuth::password("Wombatpw")),
            ..RedisSentinelStoreOptions::default()
        };
        let target = Sentinel::new(
            ["redis://:Numbatpw@127.0.0.1:1/", "127.0.0.1:2"],
            "svc",
            options,
        )
        .unwrap();
        let shown = format!("{target:?}");
        for secret in ["Quokkapw", "Wombatpw", "Numbatpw"] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
    }

    #[test]
    fn sentinels_and_service_are_checked_before_anything_connects() {
        let none: [&str; 0] = [];
        let options = RedisSentinelStoreOptions::default;
        for err in [
            Sentinel::new(none, "svc", options()).unwrap_err(),
            Sentinel::new([26379], "", options()).unwrap_err(),
            Sentinel::new([26379], "my svc", options()).unwrap_err(),
            Sentinel::new(["nohost"], "svc", options()).unwrap_err(),
            Sentinel::new(["redis://h:1", "rediss://h:2"], "svc", options()).unwrap_err(),
        ] {
            assert!(matches!(err, StoreError::InvalidAddress { .. }), "{err}");
        }
        let target = Sentinel::new([26379, 26380], "svc", options()).unwrap();
        assert_eq!(target.sentinels().len(), 2);
        assert_eq!(target.service(), "svc");
    }

    #[test]
    fn a_url_gives_the_masters_credentials_and_database() {
        let options = RedisSentinelStoreOptions {
            auth: Some(RedisAuth::password("from-options")),
            ..RedisSentinelStoreOptions::default()
        };
        let target =
            Sentinel::from_url("redis-sentinel://u:from-url@s1,s2:1/3#svc", options.clone())
                .unwrap();
        assert_eq!(
            target.options().auth,
            Some(RedisAuth::user("u", "from-url"))
        );
        assert_eq!(target.options().db, 3);
        let target = Sentinel::from_url("redis-sentinel://s1#svc", options).unwrap();
        assert_eq!(
            target.options().auth,
            Some(RedisAuth::password("from-options"))
        );
    }
}
