//! [`ProxyHost`]: one proxy server, a name or address and a port. (Its
//! checks, which give the client's [`Error`](crate::proxy::Error), are in
//! `config.rs`.)

use std::fmt;

/// One proxy server: an IP address or DNS name and a port, shown as `host:port`,
/// which is also the `Host` header sent to it.
///
/// Accepted when a client is built ([`ProxyHost::validate`]): an IPv4
/// address, an IPv6 address (bare `::1` or bracketed `[::1]`, kept bare and
/// shown bracketed), or a DNS name of ASCII letters, digits, `-` and `_`
/// in dot-separated labels (an internationalised name in its `xn--` form);
/// and a port other than 0. Nothing else: no scheme, no user info, no path,
/// query or fragment, no white space.
///
/// # Example
///
/// ```
/// use redisutil::proxy::ProxyHost;
///
/// let host: ProxyHost = "127.0.0.1:2222".parse()?;
/// assert_eq!(host, ProxyHost::new("127.0.0.1", 2222));
/// assert_eq!(host.to_string(), "127.0.0.1:2222");
/// assert_eq!(ProxyHost::from(("10.0.0.1", 80)).port(), 80);
/// assert_eq!(ProxyHost::new("[::1]", 80).to_string(), "[::1]:80");
/// assert!(ProxyHost::new("user@10.0.0.1", 80).validate().is_err());
/// assert!("10.0.0.1:0".parse::<ProxyHost>().is_err());
/// # Ok::<(), redisutil::proxy::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProxyHost {
    host: String,
    port: u16,
}

impl ProxyHost {
    /// The server at `host:port` (brackets around an IPv6 address are
    /// dropped). Checked by [`validate`](Self::validate) when a client is
    /// built, not here.
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        let host = host.into();
        let host = match host
            .strip_prefix('[')
            .and_then(|inner| inner.strip_suffix(']'))
        {
            Some(inner) if inner.contains(':') => inner.to_owned(),
            _ => host,
        };
        Self { host, port }
    }

    /// The IP address or DNS name (an IPv6 address without brackets).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }
}

impl fmt::Display for ProxyHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

impl<S: Into<String>> From<(S, u16)> for ProxyHost {
    fn from((ip, port): (S, u16)) -> Self {
        Self::new(ip, port)
    }
}
