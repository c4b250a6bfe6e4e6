//! Where a Redis server is: [`RedisAddr`] and the forms it accepts.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use crate::store::StoreError;

/// The address of a Redis server, as [`get_client`](crate::get_client),
/// [`wait_serve`](crate::wait_serve) and [`RedisStore`](crate::RedisStore)
/// take it.
///
/// It is built, through [`IntoRedisAddr`], from a port (`6379` means
/// `127.0.0.1:6379`), a `(host, port)` pair, a `"host:port"` string or a
/// `redis://`, `rediss://` or `unix://` URL.
///
/// # Examples
///
/// ```
/// use redisutil::{IntoRedisAddr, RedisAddr};
///
/// assert_eq!(6379.into_redis_addr()?.url(), "redis://127.0.0.1:6379/");
/// assert_eq!(("::1", 7000).into_redis_addr()?.url(), "redis://[::1]:7000/");
/// assert_eq!("cache:6380".into_redis_addr()?.url(), "redis://cache:6380/");
/// let url = "redis://:hunter2@cache:6380/2".into_redis_addr()?;
/// assert_eq!(url.to_string(), "redis://:***@cache:6380/2"); // never the password
/// assert!("cache".into_redis_addr().is_err());
/// # Ok::<(), redisutil::StoreError>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct RedisAddr {
    url: String,
}

impl RedisAddr {
    /// The connection URL, as given (a URL) or built (`redis://host:port/`).
    /// It may hold a password: show the address with `Display` instead.
    pub fn url(&self) -> &str {
        &self.url
    }

    fn tcp(host: &str, port: u16) -> Result<Self, StoreError> {
        let given = || format!("{host}:{port}");
        if host.is_empty() || host.contains(|c: char| c.is_whitespace() || "/@?#".contains(c)) {
            return Err(invalid(
                &given(),
                "the host is empty or holds a character a host cannot",
            ));
        }
        if port == 0 {
            return Err(invalid(&given(), "port 0 is not a server's port"));
        }
        let url = if host.contains(':') && !host.starts_with('[') {
            format!("redis://[{host}]:{port}/")
        } else {
            format!("redis://{host}:{port}/")
        };
        Ok(Self { url })
    }

    fn parse(text: &str) -> Result<Self, StoreError> {
        if let Some((scheme, rest)) = text.split_once("://") {
            if !matches!(scheme, "redis" | "rediss" | "unix" | "redis+unix") {
                return Err(invalid(text, "the scheme must be redis, rediss or unix"));
            }
            if rest.is_empty() {
                return Err(invalid(text, "the URL names no server"));
            }
            return Ok(Self {
                url: text.to_owned(),
            });
        }
        let Some((host, port)) = text.rsplit_once(':') else {
            return Err(invalid(text, "expected \"host:port\" or a redis:// URL"));
        };
        let port = port
            .parse::<u16>()
            .map_err(|_| invalid(text, "the port is not a number from 1 to 65535"))?;
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        Self::tcp(host, port)
    }
}

fn invalid(addr: &str, message: &str) -> StoreError {
    StoreError::InvalidAddress {
        addr: redact(addr),
        message: message.into(),
    }
}

/// `url` with the password of its userinfo, if any, replaced by `***`.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => {
            let userinfo = &rest[..at];
            let user = userinfo.split_once(':').map_or(userinfo, |(user, _)| user);
            format!("{scheme}://{user}:***{}", &rest[at..])
        }
        None => url.to_owned(),
    }
}

impl fmt::Display for RedisAddr {
    /// The URL with any password replaced by `***`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&redact(&self.url))
    }
}

impl fmt::Debug for RedisAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RedisAddr({self})")
    }
}

/// Conversion into a [`RedisAddr`]; see there for the accepted forms.
pub trait IntoRedisAddr {
    /// Converts, refusing malformed addresses with
    /// [`StoreError::InvalidAddress`].
    fn into_redis_addr(self) -> Result<RedisAddr, StoreError>;
}

impl IntoRedisAddr for RedisAddr {
    fn into_redis_addr(self) -> Result<RedisAddr, StoreError> {
        Ok(self)
    }
}

impl IntoRedisAddr for &RedisAddr {
    fn into_redis_addr(self) -> Result<RedisAddr, StoreError> {
        Ok(self.clone())
    }
}

impl IntoRedisAddr for u16 {
    fn into_redis_addr(self) -> Result<RedisAddr, StoreError> {
        RedisAddr::tcp("127.0.0.1", self)
    }
}

/// So that a bare literal (`get_client(6379)`, an `i32`) is a port.
impl IntoRedisAddr for i32 {
    fn into_redis_addr(self) -> Result<RedisAddr, StoreError> {
        let port = u16::try_from(self)
            .map_err(|_| invalid(&self.to_string(), "a port is a number from 1 to 65535"))?;
        port.into_redis_addr()
    }
}

impl IntoRedisAddr for &str {
    fn into_redis_addr(self) -> Result<RedisAddr, StoreError> {
        RedisAddr::parse(self)
    }
}

impl IntoRedisAddr for String {
    fn into_redis_addr(self) -> Result<RedisAddr, StoreError> {
        RedisAddr::parse(&self)
    }
}

impl IntoRedisAddr for &String {
    fn into_redis_addr(self) -> Result<RedisAddr, StoreError> {
        RedisAddr::parse(self)
    }
}

impl IntoRedisAddr for (&str, u16) {
    fn into_redis_addr(self) -> Result<RedisAddr, StoreError> {
        RedisAddr::tcp(self.0, self.1)
    }
}

impl IntoRedisAddr for (String, u16) {
    fn into_redis_addr(self) -> Result<RedisAddr, StoreError> {
        RedisAddr::tcp(&self.0, self.1)
    }
}

impl IntoRedisAddr for (IpAddr, u16) {
    fn into_redis_addr(self) -> Result<RedisAddr, StoreError> {
        RedisAddr::tcp(&self.0.to_string(), self.1)
    }
}

impl IntoRedisAddr for SocketAddr {
    fn into_redis_addr(self) -> Result<RedisAddr, StoreError> {
        (self.ip(), self.port()).into_redis_addr()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepted_forms() {
        let url = |a: RedisAddr| a.url().to_owned();
        assert_eq!(
            url(7000u16.into_redis_addr().unwrap()),
            "redis://127.0.0.1:7000/"
        );
        assert_eq!(
            url(("10.0.0.1", 1).into_redis_addr().unwrap()),
            "redis://10.0.0.1:1/"
        );
        assert_eq!(
            url("[::1]:6379".into_redis_addr().unwrap()),
            "redis://[::1]:6379/"
        );
        let sock: SocketAddr = "127.0.0.1:9".parse().unwrap();
        assert_eq!(url(sock.into_redis_addr().unwrap()), "redis://127.0.0.1:9/");
        assert_eq!(
            url("unix:///tmp/r.sock".into_redis_addr().unwrap()),
            "unix:///tmp/r.sock"
        );
    }

    #[test]
    fn refused_forms_say_why() {
        for bad in [
            "",
            "host",
            "host:",
            "host:99999",
            ":6379",
            "http://x:1",
            "redis://",
            "a b:1",
        ] {
            let err = bad.into_redis_addr().unwrap_err();
            assert!(
                matches!(err, StoreError::InvalidAddress { .. }),
                "{bad:?}: {err}"
            );
        }
        assert!(0.into_redis_addr().is_err());
        assert!(70_000.into_redis_addr().is_err());
        assert!((-1).into_redis_addr().is_err());
    }

    #[test]
    fn passwords_never_shown() {
        let addr = "redis://user:s3cret@h:1/0".into_redis_addr().unwrap();
        assert_eq!(addr.to_string(), "redis://user:***@h:1/0");
        assert!(!format!("{addr:?}").contains("s3cret"));
        let err = "redis2://u:s3cret@h".into_redis_addr().unwrap_err();
        assert!(!err.to_string().contains("s3cret"), "{err}");
    }
}
