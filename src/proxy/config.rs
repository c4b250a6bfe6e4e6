//! Client configuration: [`ProxyConfig`] (with the seed's defaults),
//! [`ProxyHost`], [`Nwr`] and the per-call [`CallOptions`].

use crate::host::split_host_port;
use std::net::Ipv6Addr;
use std::str::FromStr;
use std::time::Duration;

use crate::proxy::error::Error;
use crate::proxy::host::ProxyHost;
use crate::proxy::sign::{Credentials, SignatureVersion};
use crate::proxy::transport::TransportConfig;

/// What makes a [`ProxyHost`] one the client can send to.
impl ProxyHost {
    /// Checks that this is an address the client can send to and nothing
    /// more (see the type's docs).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] naming the host.
    pub fn validate(&self) -> Result<(), Error> {
        let invalid = |why: &str| {
            Err(Error::InvalidArgument(format!(
                "proxy host {:?} port {}: {why}",
                self.host(),
                self.port()
            )))
        };
        if self.port() == 0 {
            return invalid("port must not be 0");
        }
        if self.host().is_empty() {
            return invalid("host must not be empty");
        }
        if self.host().contains(':') {
            return match self.host().parse::<Ipv6Addr>() {
                Ok(_) => Ok(()),
                Err(_) => invalid("not an ipv6 address"),
            };
        }
        if self.host().len() > 253 {
            return invalid("name longer than 253 bytes");
        }
        let label_ok = |label: &str| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_'))
        };
        if !self.host().split('.').all(label_ok) {
            return invalid("not an ip address or a dns name");
        }
        Ok(())
    }
}

impl FromStr for ProxyHost {
    type Err = Error;

    /// Parses `ip:port` (or `[ipv6]:port`) and [validates](Self::validate)
    /// it.
    fn from_str(text: &str) -> Result<Self, Error> {
        let (ip, port) = split_host_port(text).map_err(|why| {
            Error::InvalidArgument(format!("host {text:?} is not ip:port: {why}"))
        })?;
        let host = Self::new(ip, port);
        host.validate()?;
        Ok(host)
    }
}

/// Quorum parameters sent with every request: replicas `n`, writes `w`
/// that must succeed, reads `r`. The default is `(3, 2, 2)`.
///
/// # Example
///
/// ```
/// use redisutil::proxy::Nwr;
///
/// assert_eq!(Nwr::default(), Nwr::new(3, 2, 2));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Nwr {
    /// Count of replicas.
    pub n: u32,
    /// Count of replicas a write must reach.
    pub w: u32,
    /// Count of replicas a read must consult.
    pub r: u32,
}

impl Nwr {
    /// `(n, w, r)`.
    pub fn new(n: u32, w: u32, r: u32) -> Self {
        Self { n, w, r }
    }
}

impl Default for Nwr {
    fn default() -> Self {
        Self::new(3, 2, 2)
    }
}

/// Everything a [`RedisProxyClient`](crate::proxy::RedisProxyClient) needs
/// to know, with the seed's defaults.
///
/// `Debug` never shows the secret key.
///
/// Settings of one HTTP exchange (timeouts, the bound on a response body)
/// belong to the transport: [`UreqConfig`](crate::proxy::UreqConfig) for
/// real HTTP, given with
/// [`RedisProxyClient::connect_with`](crate::proxy::RedisProxyClient::connect_with)
/// (the seed's `timeout`, 2 s by default, is
/// [`UreqConfig::with_timeout`](crate::proxy::UreqConfig::with_timeout)).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use redisutil::proxy::{Credentials, Nwr, ProxyConfig, ProxyHost};
///
/// let config = ProxyConfig {
///     proxy_hosts: vec![
///         vec![ProxyHost::new("127.0.0.1", 2222), ProxyHost::new("192.168.0.100", 222)],
///         vec!["10.0.0.1:2222".parse()?], // a backup cluster
///     ],
///     credentials: Some(Credentials::new("access", "secret")),
///     ..ProxyConfig::default()
/// };
/// assert_eq!(config.nwr, Nwr { n: 3, w: 2, r: 2 });
/// assert_eq!(config.retry, 0);
/// assert_eq!(config.round_backoff, Duration::ZERO);
/// # Ok::<(), redisutil::proxy::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyConfig {
    /// Clusters of proxy servers, the main cluster first, then the backups
    /// in the order they are tried. Each cluster lists its hosts in the
    /// order they are tried. Default: empty (a client needs at least one).
    pub proxy_hosts: Vec<Vec<ProxyHost>>,
    /// Quorum parameters. Default `(3, 2, 2)`.
    pub nwr: Nwr,
    /// Access and secret key to sign with; `None` sends unsigned requests.
    pub credentials: Option<Credentials>,
    /// How requests are signed when there are credentials. Default: V4,
    /// `us-east-1`, `s3`, 60 s.
    pub signature: SignatureVersion,
    /// Extra rounds over a cluster's hosts when none answered (`retry = N`
    /// tries each host up to `N + 1` times). Default 0; a call can override
    /// it with [`CallOptions::retry`].
    pub retry: u32,
    /// Pause between two rounds over a cluster, on the client's clock.
    /// Default zero (no pause).
    pub round_backoff: Duration,
    /// Whether requests go over `https` (TLS) instead of `http`: the
    /// transport must speak it ([`UreqTransport`](crate::proxy::UreqTransport)
    /// with the feature `tls-rustls`). Signatures are the same either way.
    /// Default `false`.
    pub https: bool,
}

impl Default for ProxyConfig {
    fn default() -> Self {
        Self {
            proxy_hosts: Vec::new(),
            nwr: Nwr::default(),
            credentials: None,
            signature: SignatureVersion::default(),
            retry: 0,
            round_backoff: Duration::ZERO,
            https: false,
        }
    }
}

impl ProxyConfig {
    /// A default config with one cluster of `hosts` (the seed's
    /// `RedisProxyClient(hosts)`).
    ///
    /// # Example
    ///
    /// ```
    /// use redisutil::proxy::ProxyConfig;
    ///
    /// let config = ProxyConfig::with_hosts([("127.0.0.1", 2222), ("192.168.0.100", 222)]);
    /// assert_eq!(config.proxy_hosts.len(), 1);
    /// assert_eq!(config.proxy_hosts[0][1].to_string(), "192.168.0.100:222");
    /// ```
    pub fn with_hosts<H: Into<ProxyHost>>(hosts: impl IntoIterator<Item = H>) -> Self {
        Self {
            proxy_hosts: vec![hosts.into_iter().map(Into::into).collect()],
            ..Self::default()
        }
    }

    /// Checks that there is at least one cluster, no empty one, and that
    /// every host is [valid](ProxyHost::validate).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] saying what is missing.
    pub fn validate(&self) -> Result<(), Error> {
        if self.proxy_hosts.is_empty() {
            return Err(Error::InvalidArgument("no proxy hosts configured".into()));
        }
        if let Some(index) = self.proxy_hosts.iter().position(Vec::is_empty) {
            return Err(Error::InvalidArgument(format!(
                "cluster {index} has no hosts"
            )));
        }
        for host in self.proxy_hosts.iter().flatten() {
            host.validate()?;
        }
        Ok(())
    }
}

/// Per-call options, growing as fields rather than parameters
/// (`get_with(key, &CallOptions::new().retry(2))`).
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use redisutil::proxy::CallOptions;
///
/// let options = CallOptions::new().retry(1).expire(Duration::from_millis(1000));
/// assert_eq!(options.retry, Some(1));
/// assert_eq!(options.expire, Some(Duration::from_millis(1000)));
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CallOptions {
    /// Extra rounds over a cluster's hosts; `None` uses the client's
    /// [`ProxyConfig::retry`].
    pub retry: Option<u32>,
    /// Time to live of the key or hash field written (milliseconds on the
    /// wire, at least 1 ms). Only `set` and `hset` accept it.
    pub expire: Option<Duration>,
}

impl CallOptions {
    /// No overrides.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets [`retry`](Self::retry).
    #[must_use]
    pub fn retry(mut self, retry: u32) -> Self {
        self.retry = Some(retry);
        self
    }

    /// Sets [`expire`](Self::expire).
    #[must_use]
    pub fn expire(mut self, expire: Duration) -> Self {
        self.expire = Some(expire);
        self
    }
}

/// What makes a [`TransportConfig`] one a transport can use.
impl TransportConfig {
    /// Checks that neither timeout is zero.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] naming the timeout.
    ///
    /// # Example
    ///
    /// ```
    /// use std::time::Duration;
    /// use redisutil::proxy::TransportConfig;
    ///
    /// assert!(TransportConfig::default().validate().is_ok());
    /// assert!(TransportConfig::with_timeout(Duration::ZERO).validate().is_err());
    /// ```
    pub fn validate(&self) -> Result<(), Error> {
        if self.timeout.is_zero() {
            return Err(Error::InvalidArgument("timeout must not be zero".into()));
        }
        if self.connect_timeout.is_zero() {
            return Err(Error::InvalidArgument(
                "connect timeout must not be zero".into(),
            ));
        }
        Ok(())
    }
}
