//! [`Server`]: one Redis server, and [`RedisStoreOptions`].

use std::fmt;
use std::time::Duration;

use super::endpoint::{Endpoint, parse_url};
use super::{
    Ask, Dialing, Located, NodeDial, PoolOptions, Settings, Setup, Target, Verdict,
    client_id_request, common_verdict, handshake,
};
use crate::store::StoreError;
use crate::store::addr::{IntoRedisAddr, RedisAddr};
use crate::store::auth::RedisAuth;
use crate::store::protocol::{Node, Route};
use crate::tls::TlsOptions;

/// Settings of a [`RedisStore`](crate::RedisStore) (and of the async
/// `AsyncRedisStore`). `Default` gives the documented values.
///
/// Two option sets are equal when every field is;
/// [`get_client_with`](crate::get_client_with) hands out one store per
/// address and options. `Debug` never shows a password.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RedisStoreOptions {
    /// How long opening a connection may take, as a whole: every address
    /// of the host in turn, the TLS handshake and AUTH/SELECT. Default: 1 s.
    pub connect_timeout: Duration,
    /// How long a non-blocking command may wait for its answer; `None`
    /// waits without limit. A blocking receive waits its own timeout plus
    /// this. Default: 5 s.
    pub response_timeout: Option<Duration>,
    /// The connections: how many, how many kept idle, how long a call
    /// waits for one.
    pub pool: PoolOptions,
    /// The certificates of a `rediss://` address (feature `tls-rustls`):
    /// `None` trusts the system's roots and presents no client
    /// certificate. Given for a `redis://` address, the store refuses to
    /// open. Default: `None`.
    pub tls: Option<TlsOptions>,
    /// A username and password to authenticate with, in place of any the
    /// address holds. Default: `None` (the address's, if any).
    pub auth: Option<RedisAuth>,
}

impl Default for RedisStoreOptions {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(1),
            response_timeout: Some(Duration::from_secs(5)),
            pool: PoolOptions::default(),
            tls: None,
            auth: None,
        }
    }
}

/// One Redis server: its address, the set-up of its connections and the
/// options.
pub struct Server {
    addr: RedisAddr,
    options: RedisStoreOptions,
    settings: Settings,
    endpoint: Endpoint,
    node: Node,
    /// AUTH and SELECT.
    handshake: Vec<(Ask, Vec<u8>)>,
}

impl Server {
    /// The server at `addr`, with `options` checked.
    pub(crate) fn new(
        addr: impl IntoRedisAddr,
        options: RedisStoreOptions,
    ) -> Result<Self, StoreError> {
        let addr = addr.into_redis_addr()?;
        let parsed = parse_url(addr.url()).map_err(|message| StoreError::InvalidAddress {
            addr: addr.to_string(),
            message,
        })?;
        let settings = Settings::new(
            addr.to_string(),
            options.connect_timeout,
            options.response_timeout,
            options.pool,
            parsed.endpoint.tls,
            options.tls.as_ref(),
        )?;
        let handshake = match &options.auth {
            Some(auth) => handshake(auth.username.as_deref(), Some(&auth.password), parsed.db),
            None => handshake(
                parsed.username.as_deref(),
                parsed.password.as_deref(),
                parsed.db,
            ),
        };
        Ok(Self {
            node: Node::new(settings.shown.clone()),
            addr,
            options,
            settings,
            endpoint: parsed.endpoint,
            handshake,
        })
    }

    /// The server's address.
    pub(crate) fn addr(&self) -> &RedisAddr {
        &self.addr
    }

    /// The options in force.
    pub(crate) fn options(&self) -> &RedisStoreOptions {
        &self.options
    }
}

impl fmt::Debug for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("addr", &self.addr)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl Target for Server {
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
        common_verdict(message).unwrap_or(Verdict::Refused)
    }

    fn dial(&self, node: &Node, want_id: bool) -> impl Dialing + Send + '_ {
        let mut requests = self.handshake.clone();
        if want_id {
            requests.push(client_id_request());
        }
        NodeDial {
            setup: Setup::new(self.endpoint.clone(), requests, self.settings.deadline()),
            shown: self.settings.shown.clone(),
            node: node.name().to_owned(),
            timeout: self.settings.connect_timeout,
        }
    }
}
