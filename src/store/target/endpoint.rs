//! Where a connection goes ([`Endpoint`]), read from a Redis URL
//! ([`parse_url`]) the way redis-rs reads one:
//!
//! - `redis://[user[:password]@]host[:port][/db][?protocol=…]` (TCP), and
//!   `rediss://` the same over TLS, `#insecure` skipping the certificate
//!   check;
//! - `unix:///path[?db=…&user=…&pass=…&protocol=…]`, or
//!   `unix://[user:password@]localhost/path`, and `redis+unix://` alike.
//!
//! An error says why in words of its own and never quotes the URL, where
//! a piece of a password may sit.

use std::fmt;
use std::path::PathBuf;

use crate::host::split_host_port;
use crate::percent::{decode, decode_query};

/// The port of a server named without one.
const DEFAULT_PORT: u16 = 6379;

/// Where a connection goes.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Place {
    /// A host (a name or an IP address, without brackets) and a port.
    Tcp { host: String, port: u16 },
    /// A Unix socket file.
    Unix(PathBuf),
}

/// Whether a connection speaks TLS, and how it checks the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Tls {
    Off,
    /// The server's certificate is verified.
    Verified,
    /// It is not (`#insecure`, feature `tls-rustls-insecure`).
    Insecure,
}

/// Where to connect, and how.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Endpoint {
    pub(crate) place: Place,
    pub(crate) tls: Tls,
}

impl Endpoint {
    /// `host:port` over TCP, with `tls`.
    pub(crate) fn tcp(host: &str, port: u16, tls: Tls) -> Self {
        Self {
            place: Place::Tcp {
                host: host.to_owned(),
                port,
            },
            tls,
        }
    }
}

impl fmt::Display for Endpoint {
    /// `host:port` (`[v6]:port`), or the socket file's path.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.place {
            Place::Tcp { host, port } if host.contains(':') => write!(f, "[{host}]:{port}"),
            Place::Tcp { host, port } => write!(f, "{host}:{port}"),
            Place::Unix(path) => write!(f, "{}", path.display()),
        }
    }
}

/// A URL, read: where, and the credentials and database it names.
pub(crate) struct ParsedUrl {
    pub(crate) endpoint: Endpoint,
    pub(crate) username: Option<String>,
    pub(crate) password: Option<String>,
    pub(crate) db: i64,
}

impl fmt::Debug for ParsedUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ParsedUrl")
            .field("endpoint", &self.endpoint)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("db", &self.db)
            .finish()
    }
}

/// Reads `url`; the error is a reason that quotes no part of it.
pub(crate) fn parse_url(url: &str) -> Result<ParsedUrl, String> {
    let (scheme, rest) = url.split_once("://").ok_or("not a URL (no scheme://)")?;
    match scheme.to_ascii_lowercase().as_str() {
        "redis" => tcp(rest, false),
        "rediss" => tcp(rest, true),
        "unix" | "redis+unix" => unix(rest),
        _ => Err("the scheme is not redis, rediss, unix or redis+unix".into()),
    }
}

/// Splits `rest` (after `://`) into its authority, path, query and
/// fragment.
fn split(rest: &str) -> (&str, &str, Option<&str>, Option<&str>) {
    let (rest, fragment) = match rest.split_once('#') {
        Some((rest, fragment)) => (rest, Some(fragment)),
        None => (rest, None),
    };
    let (rest, query) = match rest.split_once('?') {
        Some((rest, query)) => (rest, Some(query)),
        None => (rest, None),
    };
    let (authority, path) = match rest.find('/') {
        Some(at) => rest.split_at(at),
        None => (rest, ""),
    };
    (authority, path, query, fragment)
}

/// The user name and password of a userinfo (`user:password`, `:password`,
/// `user`), decoded; empty parts are none.
fn credentials(userinfo: &str) -> Result<(Option<String>, Option<String>), String> {
    let (user, password) = match userinfo.split_once(':') {
        Some((user, password)) => (user, Some(password)),
        None => (userinfo, None),
    };
    let user = Some(user)
        .filter(|user| !user.is_empty())
        .map(|user| decode(user).ok_or("a badly escaped user name"))
        .transpose()?;
    let password = password
        .filter(|password| !password.is_empty())
        .map(|password| decode(password).ok_or("a badly escaped password"))
        .transpose()?;
    Ok((user, password))
}

/// A database number.
fn database(text: &str) -> Result<i64, String> {
    text.parse()
        .map_err(|_| "the database is not a number".to_owned())
}

/// Refuses a `protocol` other than RESP2 or RESP3 (RESP2 is spoken either
/// way: the replies this crate reads are the same).
fn protocol(value: &str) -> Result<(), String> {
    match value.to_ascii_lowercase().as_str() {
        "2" | "3" | "resp2" | "resp3" => Ok(()),
        _ => Err("the protocol is not resp2 or resp3".into()),
    }
}

/// `redis://` or, with `tls`, `rediss://`.
fn tcp(rest: &str, tls: bool) -> Result<ParsedUrl, String> {
    let (authority, path, query, fragment) = split(rest);
    let (userinfo, host_port) = match authority.rfind('@') {
        Some(at) => (Some(&authority[..at]), &authority[at + 1..]),
        None => (None, authority),
    };
    let (username, password) = match userinfo {
        Some(userinfo) => credentials(userinfo)?,
        None => (None, None),
    };
    if host_port.is_empty() {
        return Err("the URL names no host".into());
    }
    let with_port = if host_port.ends_with(']') || !host_port.contains(':') {
        format!("{host_port}:{DEFAULT_PORT}")
    } else {
        host_port.to_owned()
    };
    let (host, port) = split_host_port(&with_port).map_err(str::to_owned)?;
    if port == 0 {
        return Err("port 0 is no server's port".into());
    }
    if host.contains(|c: char| c.is_whitespace() || "[]@%".contains(c)) {
        return Err("the host holds a character a host cannot".into());
    }
    if host
        .parse::<std::net::IpAddr>()
        .is_ok_and(|ip| ip.is_unspecified())
    {
        return Err("an unspecified address (0.0.0.0, ::) is no server to connect to".into());
    }
    let db = match path.trim_matches('/') {
        "" => 0,
        db => database(db)?,
    };
    if let Some(query) = query {
        let pairs = decode_query(query).ok_or("a badly escaped query")?;
        for (name, value) in pairs {
            if name == "protocol" {
                protocol(&value)?;
            }
        }
    }
    let tls = match (tls, fragment) {
        (false, _) => Tls::Off,
        (true, Some("insecure")) => Tls::Insecure,
        (true, _) => Tls::Verified,
    };
    Ok(ParsedUrl {
        endpoint: Endpoint::tcp(host, port, tls),
        username,
        password,
        db,
    })
}

/// `unix://` or `redis+unix://`.
fn unix(rest: &str) -> Result<ParsedUrl, String> {
    let (rest, query) = match rest.split_once('?') {
        Some((rest, query)) => (rest, Some(query)),
        None => (rest, None),
    };
    let rest = rest.split('#').next().unwrap_or_default();
    // `unix:///path`, or `unix://[userinfo@]localhost/path`.
    let (authority, path) = match rest.find('/') {
        Some(at) => rest.split_at(at),
        None => (rest, ""),
    };
    let (userinfo, host) = match authority.rfind('@') {
        Some(at) => (Some(&authority[..at]), &authority[at + 1..]),
        None => (None, authority),
    };
    if !host.is_empty() && !host.eq_ignore_ascii_case("localhost") {
        return Err("a socket file's URL names no host but localhost".into());
    }
    let (mut username, mut password) = match userinfo {
        Some(userinfo) => credentials(userinfo)?,
        None => (None, None),
    };
    let path = decode(path).ok_or("a badly escaped path")?;
    if path.is_empty() || path == "/" {
        return Err("the URL names no socket file".into());
    }
    let mut db = 0;
    if let Some(query) = query {
        let pairs = decode_query(&query.replace('+', " ")).ok_or("a badly escaped query")?;
        for (name, value) in pairs {
            match name.as_str() {
                "db" => db = database(&value)?,
                "user" => username = Some(value).filter(|user| !user.is_empty()),
                "pass" => password = Some(value),
                "protocol" => protocol(&value)?,
                _ => {}
            }
        }
    }
    Ok(ParsedUrl {
        endpoint: Endpoint {
            place: Place::Unix(PathBuf::from(path)),
            tls: Tls::Off,
        },
        username,
        password,
        db,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(url: &str) -> (Endpoint, Option<String>, Option<String>, i64) {
        let url = parse_url(url).unwrap_or_else(|err| panic!("{url}: {err}"));
        (url.endpoint, url.username, url.password, url.db)
    }

    #[test]
    fn tcp_forms_are_read_as_redis_rs_reads_them() {
        let plain = |host: &str, port| Endpoint::tcp(host, port, Tls::Off);
        assert_eq!(parsed("redis://h"), (plain("h", 6379), None, None, 0));
        assert_eq!(
            parsed("redis://u:p%40w@h:1/2"),
            (plain("h", 1), Some("u".into()), Some("p@w".into()), 2)
        );
        assert_eq!(
            parsed("redis://:a@b@h:1/"),
            (plain("h", 1), None, Some("a@b".into()), 0)
        );
        assert_eq!(
            parsed("redis://name@h:1"),
            (plain("h", 1), Some("name".into()), None, 0)
        );
        assert_eq!(
            parsed("redis://[::1]:7000/3?protocol=resp3"),
            (plain("::1", 7000), None, None, 3)
        );
        assert_eq!(parsed("redis://h:1/3/").3, 3, "slashes around the database");
        assert_eq!(parsed("REDIS://h:1").0, plain("h", 1));
        assert_eq!(
            parsed("rediss://h").0,
            Endpoint::tcp("h", 6379, Tls::Verified)
        );
        assert_eq!(
            parsed("rediss://h:1/#insecure").0,
            Endpoint::tcp("h", 1, Tls::Insecure)
        );
        assert_eq!(parsed("redis://h:1/#insecure").0.tls, Tls::Off);
    }

    #[test]
    fn unix_forms_are_read_as_redis_rs_reads_them() {
        let socket = |path: &str| Endpoint {
            place: Place::Unix(path.into()),
            tls: Tls::Off,
        };
        assert_eq!(
            parsed("unix:///run/r.sock"),
            (socket("/run/r.sock"), None, None, 0)
        );
        assert_eq!(
            parsed("redis+unix:///s?db=1&user=u&pass=p%26w+x&protocol=2"),
            (socket("/s"), Some("u".into()), Some("p&w x".into()), 1)
        );
        assert_eq!(
            parsed("unix://u:pw@localhost/s"),
            (socket("/s"), Some("u".into()), Some("pw".into()), 0)
        );
    }

    #[test]
    fn bad_forms_are_refused_without_quoting_them() {
        for (bad, secret) in [
            ("redis://:pa/ss@h:1/", "pa"),
            ("redis://h:1/xsecret", "xsecret"),
            ("redis://0.0.0.0:1/", "0.0.0.0:1"),
            ("redis://[::]:1/", "[::]"),
            ("unix:///s?protocol=pwsecret", "pwsecret"),
            ("unix:///s?db=pwsecret", "pwsecret"),
            ("http://h:1", "http"),
            ("redis://", "redis://"),
            ("redis://h:99999", "99999"),
            ("redis://h:0", "h:0"),
            ("redis://:p%zzsecret@h:1", "zzsecret"),
            ("redis://[", "["),
            ("redis://@", "@"),
            ("redis://h:1/%", "%"),
            ("unix://", "unix"),
            ("unix://secrethost/s", "secrethost"),
            ("nothing-here", "nothing"),
        ] {
            let err = parse_url(bad).map(|_| ()).unwrap_err();
            assert!(!err.contains(secret), "{bad}: {err}");
        }
    }

    #[test]
    fn endpoints_show_as_host_and_port() {
        assert_eq!(Endpoint::tcp("h", 1, Tls::Off).to_string(), "h:1");
        assert_eq!(Endpoint::tcp("::1", 1, Tls::Off).to_string(), "[::1]:1");
        let url = parse_url("redis://:secret@h:1").unwrap();
        assert!(!format!("{url:?}").contains("secret"));
    }
}
