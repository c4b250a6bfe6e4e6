//! The proxy protocol on the wire, known in this one place: the nine
//! [`Command`]s with their verb, HTTP method and path segments, how a path
//! is built and read back, and the `n`, `w`, `r`, `expire` query
//! parameters. The client ([`failover`](super::failover)) builds requests
//! with it and [`MemoryProxy`](crate::proxy::MemoryProxy) parses them with
//! it. Signature parameters are the [signer's](crate::proxy::sign).
//!
//! | command | method | path after the prefix |
//! |---|---|---|
//! | `GET` | GET | `GET/<key>` |
//! | `SET` | PUT | `SET/<key>` |
//! | `HGET` | GET | `HGET/<hashname>/<hashkey>` |
//! | `HSET` | PUT | `HSET/<hashname>/<hashkey>` |
//! | `HKEYS`, `HVALS`, `HGETALL` | GET | `<verb>/<hashname>` |
//! | `DEL` | DELETE | `DEL/<key>` |
//! | `HDEL` | DELETE | `HDEL/<hashname>/<hashkey>` |

use std::fmt::Write as _;

use http::Method;

use crate::percent::{decode, decode_query, encode_into};
use crate::proxy::config::Nwr;

/// The API prefix of every path.
pub(crate) const PATH_PREFIX: &str = "/redisproxy/v1/";

/// One of the proxy's nine commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Command {
    Get,
    Set,
    HGet,
    HSet,
    HKeys,
    HVals,
    HGetAll,
    Del,
    HDel,
}

impl Command {
    /// Every command.
    #[cfg(test)]
    pub(crate) const ALL: [Self; 9] = [
        Self::Get,
        Self::Set,
        Self::HGet,
        Self::HSet,
        Self::HKeys,
        Self::HVals,
        Self::HGetAll,
        Self::Del,
        Self::HDel,
    ];

    /// The verb, the first path segment after the prefix.
    pub(crate) fn verb(self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Set => "SET",
            Self::HGet => "HGET",
            Self::HSet => "HSET",
            Self::HKeys => "HKEYS",
            Self::HVals => "HVALS",
            Self::HGetAll => "HGETALL",
            Self::Del => "DEL",
            Self::HDel => "HDEL",
        }
    }

    /// The command whose verb is `verb` (exact case).
    pub(crate) fn from_verb(verb: &str) -> Option<Self> {
        Some(match verb {
            "GET" => Self::Get,
            "SET" => Self::Set,
            "HGET" => Self::HGet,
            "HSET" => Self::HSet,
            "HKEYS" => Self::HKeys,
            "HVALS" => Self::HVals,
            "HGETALL" => Self::HGetAll,
            "DEL" => Self::Del,
            "HDEL" => Self::HDel,
            _ => return None,
        })
    }

    /// The HTTP method: GET for reads, PUT for `SET`/`HSET` (with a JSON
    /// body), DELETE for `DEL`/`HDEL`.
    pub(crate) fn method(self) -> Method {
        match self {
            Self::Set | Self::HSet => Method::PUT,
            Self::Del | Self::HDel => Method::DELETE,
            Self::Get | Self::HGet | Self::HKeys | Self::HVals | Self::HGetAll => Method::GET,
        }
    }

    /// What each argument after the verb is called, in path order.
    pub(crate) fn arguments(self) -> &'static [&'static str] {
        match self {
            Self::Get | Self::Set | Self::Del => &["key"],
            Self::HKeys | Self::HVals | Self::HGetAll => &["hashname"],
            Self::HGet | Self::HSet | Self::HDel => &["hashname", "hashkey"],
        }
    }

    /// How many path segments follow the verb (1 or 2).
    pub(crate) fn arity(self) -> usize {
        self.arguments().len()
    }

    /// Whether the command changes data (and so goes to every cluster).
    pub(crate) fn is_write(self) -> bool {
        self.method() != Method::GET
    }

    /// Whether the command sends a JSON body, and may take `expire`.
    pub(crate) fn has_body(self) -> bool {
        self.method() == Method::PUT
    }
}

/// The path of `command` on `arguments`: the prefix, the verb, then each
/// argument percent-encoded (only RFC 3986 unreserved characters kept), and
/// an argument `.` or `..` sent as `%2E` or `%2E%2E`, so that no segment
/// sent is a dot segment a server or a proxy in between would resolve.
pub(crate) fn build_path(command: Command, arguments: &[&str]) -> String {
    let verb = command.verb();
    let mut path = String::with_capacity(
        PATH_PREFIX.len() + verb.len() + arguments.iter().map(|a| a.len() + 1).sum::<usize>(),
    );
    path.push_str(PATH_PREFIX);
    path.push_str(verb);
    for argument in arguments {
        path.push('/');
        if matches!(*argument, "." | "..") {
            for _ in 0..argument.len() {
                path.push_str("%2E");
            }
        } else {
            encode_into(argument.as_bytes(), &mut path);
        }
    }
    path
}

/// Why a path is not one of the protocol's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PathError {
    /// Not under [`PATH_PREFIX`].
    UnknownPath,
    /// A segment is not valid percent-encoding of UTF-8.
    BadEncoding,
    /// A segment is empty.
    EmptySegment,
    /// The verb is none of the nine.
    UnknownCommand,
    /// Too few or too many segments for the verb.
    WrongArity,
}

impl PathError {
    /// A short lowercase message.
    pub(crate) fn message(self) -> &'static str {
        match self {
            Self::UnknownPath => "unknown path",
            Self::BadEncoding => "bad path encoding",
            Self::EmptySegment => "empty path segment",
            Self::UnknownCommand => "unknown command",
            Self::WrongArity => "wrong number of path segments",
        }
    }
}

/// The command and its decoded arguments of a raw path, the inverse of
/// [`build_path`].
pub(crate) fn parse_path(raw: &str) -> Result<(Command, Vec<String>), PathError> {
    let rest = raw
        .strip_prefix(PATH_PREFIX)
        .ok_or(PathError::UnknownPath)?;
    let mut segments: Vec<String> = rest
        .split('/')
        .map(decode)
        .collect::<Option<_>>()
        .ok_or(PathError::BadEncoding)?;
    if segments.iter().any(String::is_empty) {
        return Err(PathError::EmptySegment);
    }
    let command = Command::from_verb(&segments[0]).ok_or(PathError::UnknownCommand)?;
    if segments.len() != 1 + command.arity() {
        return Err(PathError::WrongArity);
    }
    segments.remove(0);
    Ok((command, segments))
}

/// Appends the query the client sends, `?n=<n>&w=<w>&r=<r>`, then
/// `&expire=<ms>` when given, to `target`.
pub(crate) fn write_query(target: &mut String, nwr: Nwr, expire_ms: Option<u128>) {
    // Writing to a String cannot fail.
    let _ = write!(target, "?n={}&w={}&r={}", nwr.n, nwr.w, nwr.r);
    if let Some(ms) = expire_ms {
        let _ = write!(target, "&expire={ms}");
    }
}

/// The protocol's query parameters of a request, as a server reads them
/// (the first of repeated names counts; other parameters are ignored).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Query {
    /// `n`, `w` and `r`.
    pub(crate) nwr: [u64; 3],
    /// `expire`, a positive number of milliseconds.
    pub(crate) expire_ms: Option<u64>,
}

/// Why a query is not the protocol's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum QueryError {
    /// Not valid percent-encoding of UTF-8.
    Encoding,
    /// `n`, `w` or `r` is missing or not a number.
    Quorum(&'static str),
    /// `expire` is not a positive number.
    Expire,
}

impl QueryError {
    /// A short lowercase message.
    pub(crate) fn message(self) -> String {
        match self {
            Self::Encoding => "bad query".to_owned(),
            Self::Quorum(name) => format!("query parameter {name} missing or not a number"),
            Self::Expire => "expire must be a positive number of ms".to_owned(),
        }
    }
}

/// Reads `n`, `w`, `r` and `expire` from a raw query string.
pub(crate) fn parse_query(raw: &str) -> Result<Query, QueryError> {
    let params = decode_query(raw).ok_or(QueryError::Encoding)?;
    let number = |name: &str| {
        params
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.parse::<u64>().ok())
    };
    let mut nwr = [0; 3];
    for (slot, name) in nwr.iter_mut().zip(["n", "w", "r"]) {
        *slot = number(name).flatten().ok_or(QueryError::Quorum(name))?;
    }
    let expire_ms = match number("expire") {
        None => None,
        Some(Some(ms)) if ms > 0 => Some(ms),
        Some(_) => return Err(QueryError::Expire),
    };
    Ok(Query { nwr, expire_ms })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verbs_round_trip_and_methods_match_the_protocol() {
        for command in Command::ALL {
            assert_eq!(Command::from_verb(command.verb()), Some(command));
            assert_eq!(command.is_write(), command.method() != Method::GET);
            assert_eq!(
                command.has_body(),
                matches!(command, Command::Set | Command::HSet)
            );
            let two = matches!(command, Command::HGet | Command::HSet | Command::HDel);
            assert_eq!(command.arity(), if two { 2 } else { 1 });
        }
        assert_eq!(Command::from_verb("get"), None);
    }

    #[test]
    fn paths_round_trip() {
        for command in Command::ALL {
            let arguments: &[&str] = if command.arity() == 1 {
                &["a/b?c #é"]
            } else {
                &["..", "."]
            };
            let path = build_path(command, arguments);
            assert!(!path.contains("/./") && !path.contains("/../"), "{path}");
            assert_eq!(
                parse_path(&path),
                Ok((command, arguments.iter().map(|a| (*a).to_owned()).collect()))
            );
        }
        assert_eq!(
            build_path(Command::HGet, &["h", ".."]),
            "/redisproxy/v1/HGET/h/%2E%2E"
        );
        assert_eq!(parse_path("/other/GET/k"), Err(PathError::UnknownPath));
        assert_eq!(
            parse_path("/redisproxy/v1/GET/%zz"),
            Err(PathError::BadEncoding)
        );
        assert_eq!(
            parse_path("/redisproxy/v1/GET/"),
            Err(PathError::EmptySegment)
        );
        assert_eq!(
            parse_path("/redisproxy/v1/PUT/k"),
            Err(PathError::UnknownCommand)
        );
        assert_eq!(
            parse_path("/redisproxy/v1/HGET/k"),
            Err(PathError::WrongArity)
        );
    }

    #[test]
    fn queries_round_trip() {
        let mut target = String::new();
        write_query(&mut target, Nwr::new(3, 2, 1), Some(1500));
        assert_eq!(target, "?n=3&w=2&r=1&expire=1500");
        let query = parse_query(&target[1..]);
        assert_eq!(
            query,
            Ok(Query {
                nwr: [3, 2, 1],
                expire_ms: Some(1500)
            })
        );
        assert_eq!(parse_query("n=1&w=1"), Err(QueryError::Quorum("r")));
        assert_eq!(parse_query("n=1&w=1&r=x"), Err(QueryError::Quorum("r")));
        assert_eq!(parse_query("n=1&w=1&r=1&expire=0"), Err(QueryError::Expire));
        assert_eq!(parse_query("n=%zz"), Err(QueryError::Encoding));
    }
}
