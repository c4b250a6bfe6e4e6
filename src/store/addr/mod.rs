//! Where a Redis server is: [`RedisAddr`] and the forms it accepts.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use crate::host::split_host_port;
use crate::store::StoreError;

/// The address of a Redis server, as [`get_client`](crate::get_client),
/// [`wait_serve`](crate::wait_serve) and [`RedisStore`](crate::RedisStore)
/// take it.
///
/// It is built, through [`IntoRedisAddr`], from a port (`6379` means
/// `127.0.0.1:6379`), a `(host, port)` pair, a `"host:port"` string or a
/// `redis://`, `rediss://`, `unix://` or `redis+unix://` URL.
///
/// `Display` and `Debug`, and every error about an address, hide its
/// credentials in every form redis-rs reads them: the password of a URL's
/// `user:password@` (shown `user:***@`), a lone `name@` (often a misplaced
/// password, shown `***@`), and the query of a `unix://` URL, where only
/// `db` and `protocol` are shown (`?db=0&pass=***`). When an address is
/// malformed (a `/`, `?` or `#` left unencoded in a password), everything
/// between `://` and the last `@` is hidden, or all of it after `://`.
/// A URL that redis-rs refuses is refused here, with its reason but not
/// the part of the URL the reason quotes.
///
/// # Examples
///
/// ```
/// use redisutil::store::{IntoRedisAddr, RedisAddr};
///
/// assert_eq!(6379.into_redis_addr()?.url(), "redis://127.0.0.1:6379/");
/// assert_eq!(("::1", 7000).into_redis_addr()?.url(), "redis://[::1]:7000/");
/// assert_eq!("cache:6380".into_redis_addr()?.url(), "redis://cache:6380/");
/// let url = "redis://:hunter2@cache:6380/2".into_redis_addr()?;
/// assert_eq!(url.to_string(), "redis://:***@cache:6380/2"); // never the password
/// let unix = "unix:///run/redis.sock?db=1&pass=hunter2".into_redis_addr()?;
/// assert_eq!(unix.to_string(), "unix:///run/redis.sock?db=1&pass=***");
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
            check_url(text)?;
            return Ok(Self {
                url: text.to_owned(),
            });
        }
        let (host, port) = split_host_port(text).map_err(|why| {
            invalid(
                text,
                &format!("{why}, or a redis://, rediss:// or unix:// URL"),
            )
        })?;
        Self::tcp(host, port)
    }
}

/// Refuses a URL that redis-rs refuses, saying why but without the part of
/// the URL its reason quotes: that may be a piece of a password (a raw `&`
/// in `pass=a&protocol=b` makes `b` a protocol version).
#[cfg(feature = "redis")]
fn check_url(url: &str) -> Result<(), StoreError> {
    match crate::store::target::endpoint::parse_url(url) {
        Ok(_) => Ok(()),
        Err(message) => Err(invalid(url, &message)),
    }
}

/// Without the `redis` feature, nothing connects: no URL to check.
#[cfg(not(feature = "redis"))]
fn check_url(_url: &str) -> Result<(), StoreError> {
    Ok(())
}

fn invalid(addr: &str, message: &str) -> StoreError {
    StoreError::InvalidAddress {
        addr: redact(addr),
        message: message.into(),
    }
}

/// `text`, an address as given or a URL, with every credential hidden.
///
/// Redis URLs carry secrets in two places, and `text` may be malformed
/// (then it is shown in an error), so this reads it as a URL parser would
/// and, when it cannot tell, hides more:
///
/// - the userinfo before the last `@` of the authority: `user:password`
///   shows as `user:***`, `:password` as `:***`, and a lone `name` as `***`
///   (redis-rs takes it for a user name, but it is often a misplaced
///   password);
/// - when an `@` comes after the authority (a `/`, `?` or `#` inside a
///   password left unencoded: the URL is malformed), everything from `://`
///   to the last `@`, and all of it when that `@` is in a query or a
///   fragment; a `unix://` path may hold an `@`, so there only when
///   the URL has userinfo or an authority a socket file's URL cannot have
///   (and its fragment, meaningless there, is hidden);
/// - the query (`unix:///path?db=0&pass=secret`, where redis-rs reads `user`
///   and `pass`): see [`hide_query`].
fn redact(text: &str) -> String {
    // Only a real scheme is shown as one: text before a `://` that is not
    // a scheme (`u:pw@h://…`) is read as part of the authority.
    let (prefix, rest) = match text.split_once("://") {
        Some((scheme, _)) if is_scheme(scheme) => text.split_at(scheme.len() + 3),
        _ => ("", text),
    };
    let scheme = prefix.trim_end_matches("://").to_ascii_lowercase();
    let file_scheme = scheme.ends_with("unix");
    // Where the scheme is not a Redis one, the text may not be a URL at
    // all (`user:pass@host:port`, a mistyped URL): no part of it is taken
    // for a user name.
    let redis_scheme = matches!(
        scheme.as_str(),
        "redis" | "rediss" | "valkey" | "valkeys" | "unix" | "redis+unix" | "valkey+unix"
    );
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let userinfo_end = authority.rfind('@');
    let host = userinfo_end.map_or(authority, |at| &authority[at + 1..]);
    // A socket file's URL with no userinfo: an `@` later is in its path.
    // With userinfo, it may be in the password (`:pw@localhost/pw@…`).
    let path_may_hold_at = file_scheme
        && userinfo_end.is_none()
        && (host.is_empty() || host.eq_ignore_ascii_case("localhost"));
    let mut shown = String::from(prefix);
    let tail = match rest.rfind('@') {
        // An `@` after the authority: malformed, hidden up to that `@`.
        Some(last) if last >= authority_end && !path_may_hold_at => {
            shown.push_str("***");
            if rest[..last].contains(['?', '#']) {
                // In a query or a fragment: what follows is no host either.
                return shown;
            }
            &rest[last..]
        }
        _ => match userinfo_end {
            Some(at) => {
                shown.push_str(&hide_userinfo(&rest[..at], redis_scheme));
                &rest[at..]
            }
            None => rest,
        },
    };
    if file_scheme {
        // The path is shown; a fragment means nothing to a socket file's
        // URL and is hidden.
        let end = tail.find(['?', '#']).unwrap_or(tail.len());
        shown.push_str(&tail[..end]);
        match tail[end..].split_at_checked(1) {
            Some(("?", query)) => {
                shown.push('?');
                shown.push_str(&hide_query(query));
            }
            Some(("#", _)) => shown.push_str("#***"),
            _ => {}
        }
    } else {
        match tail.split_once('?') {
            None => shown.push_str(tail),
            Some((before, query)) => {
                shown.push_str(before);
                shown.push('?');
                shown.push_str(&hide_query(query));
            }
        }
    }
    shown
}

/// Whether `text` is a URL scheme: a letter, then letters, digits, `+`,
/// `-` or `.`.
fn is_scheme(text: &str) -> bool {
    let mut chars = text.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
}

/// `user:***`, `:***` or `***` for the userinfo of a URL: the user name
/// shows only when it is one for sure (a Redis URL, a password after it).
fn hide_userinfo(userinfo: &str, show_user: bool) -> String {
    match userinfo.split_once(':') {
        Some((user, password)) if show_user && !user.is_empty() && !password.is_empty() => {
            format!("{user}:***")
        }
        Some(("", _password)) => ":***".into(),
        _ => "***".into(),
    }
}

/// A query with its credentials hidden: `db` and `protocol` are shown
/// (when their values are numbers, `resp2` or `resp3`; else `name=***`),
/// `pass`, `password`, `user` and `username` as `name=***`, any other part
/// as `***`; and after a credential every part is `***`, since it may be
/// the rest of a password that holds a raw `&` (`pass=pw&db=1` shows
/// `pass=***&***`).
fn hide_query(query: &str) -> String {
    let mut after_credential = false;
    let parts: Vec<String> = query
        .split('&')
        .map(|part| {
            let name = part.split_once('=').map_or(part, |(name, _)| name);
            match form_decode(name).trim().to_ascii_lowercase().as_str() {
                "db" | "protocol" if !after_credential && is_plain_setting(part) => part.into(),
                "db" | "protocol" if !after_credential => format!("{name}=***"),
                "pass" | "password" | "user" | "username" if !after_credential => {
                    after_credential = true;
                    format!("{name}=***")
                }
                _ => "***".into(),
            }
        })
        .collect();
    parts.join("&")
}

/// Whether a `db=…` or `protocol=…` part holds a value that can be one
/// (a number, `resp2`, `resp3`), not text that may be a password's.
fn is_plain_setting(part: &str) -> bool {
    let value = part.split_once('=').map_or("", |(_, value)| value);
    matches!(value, "resp2" | "resp3")
        || (!value.is_empty() && value.len() <= 20 && value.bytes().all(|b| b.is_ascii_digit()))
}

/// A query name as a URL parser decodes it: `+` is a space, `%XX` a byte.
fn form_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| char::from(b).to_digit(16);
        match bytes[i] {
            b'+' => decoded.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(high), Some(low)) => {
                    decoded.push((high * 16 + low) as u8);
                    i += 2;
                }
                _ => decoded.push(b'%'),
            },
            byte => decoded.push(byte),
        }
        i += 1;
    }
    String::from_utf8_lossy(&decoded).into_owned()
}

impl fmt::Display for RedisAddr {
    /// The URL with its credentials hidden (see [`RedisAddr`]).
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

/// Each of `addrs` as a [`RedisAddr`], in order, and the list as errors
/// show it: comma-separated, credentials hidden.
#[cfg(any(feature = "cluster", feature = "sentinel"))]
pub(crate) fn addr_list<I>(addrs: I) -> Result<(Vec<RedisAddr>, String), StoreError>
where
    I: IntoIterator,
    I::Item: IntoRedisAddr,
{
    let addrs = into_addrs(addrs)?;
    let shown = addrs
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",");
    Ok((addrs, shown))
}

/// Each of `addrs` as a [`RedisAddr`], sorted by URL and each once: the
/// same set of servers named in any order gives the same list.
#[cfg(any(feature = "cluster", feature = "sentinel"))]
pub(crate) fn addr_set<I>(addrs: I) -> Result<Vec<RedisAddr>, StoreError>
where
    I: IntoIterator,
    I::Item: IntoRedisAddr,
{
    let mut addrs = into_addrs(addrs)?;
    addrs.sort_unstable_by(|a, b| a.url().cmp(b.url()));
    addrs.dedup();
    Ok(addrs)
}

/// Each of `addrs` as a [`RedisAddr`], in order.
#[cfg(any(feature = "cluster", feature = "sentinel"))]
fn into_addrs<I>(addrs: I) -> Result<Vec<RedisAddr>, StoreError>
where
    I: IntoIterator,
    I::Item: IntoRedisAddr,
{
    addrs
        .into_iter()
        .map(IntoRedisAddr::into_redis_addr)
        .collect()
}

#[cfg(test)]
mod tests;
