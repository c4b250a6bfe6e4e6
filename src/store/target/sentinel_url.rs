//! The `redis-sentinel://` address form of a Sentinel deployment, as
//! Lettuce (and Spring Data Redis) write it:
//!
//! `redis-sentinel://[[username:]password@]host[:port][,host[:port]…][/db]#service`
//!
//! The hosts are the sentinels (port 26379 when left out); the username
//! and password are the master's; the fragment names the service.

use crate::host::split_host_port;
use crate::percent::decode;
use crate::store::StoreError;

/// The port of a sentinel named without one.
const SENTINEL_PORT: u16 = 26379;

/// A `redis-sentinel://` address, read.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct SentinelUrl {
    pub(crate) sentinels: Vec<(String, u16)>,
    pub(crate) service: String,
    pub(crate) username: Option<String>,
    pub(crate) password: Option<String>,
    pub(crate) db: Option<i64>,
}

/// `url` with its credentials hidden, for errors.
pub(crate) fn shown(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => match rest.rsplit_once('@') {
            Some((_, after)) => format!("{scheme}://***@{after}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

impl SentinelUrl {
    /// Reads `url`; the error says why it is not one, its credentials hidden.
    pub(crate) fn parse(url: &str) -> Result<Self, StoreError> {
        let invalid = |message: &str| StoreError::InvalidAddress {
            addr: shown(url),
            message: format!(
                "{message}; expected redis-sentinel://[[user:]password@]host[:port][,host[:port]…][/db]#service"
            ),
        };
        let rest = url
            .strip_prefix("redis-sentinel://")
            .ok_or_else(|| invalid("not a redis-sentinel:// address"))?;
        let (rest, service) = rest.split_once('#').ok_or_else(|| invalid("no #service"))?;
        let service = decode(service)
            .filter(|service| !service.is_empty())
            .ok_or_else(|| invalid("the service name is empty or badly escaped"))?;
        let (credentials, rest) = match rest.rsplit_once('@') {
            Some((credentials, rest)) => (Some(credentials), rest),
            None => (None, rest),
        };
        let (username, password) = match credentials {
            None => (None, None),
            Some(credentials) => {
                let (username, password) = match credentials.split_once(':') {
                    Some((username, password)) => (Some(username), password),
                    None => (None, credentials),
                };
                let username = username
                    .filter(|username| !username.is_empty())
                    .map(|username| decode(username).ok_or_else(|| invalid("a badly escaped user")))
                    .transpose()?;
                let password =
                    decode(password).ok_or_else(|| invalid("a badly escaped password"))?;
                (username, Some(password))
            }
        };
        let (hosts, db) = match rest.split_once('/') {
            Some((hosts, "")) => (hosts, None),
            Some((hosts, db)) => (
                hosts,
                Some(
                    db.parse()
                        .map_err(|_| invalid("the database is not a number"))?,
                ),
            ),
            None => (rest, None),
        };
        let sentinels = hosts
            .split(',')
            .map(|host| {
                if host.is_empty() {
                    return Err(invalid("an empty sentinel"));
                }
                let with_port = if host.ends_with(']') || !host.contains(':') {
                    format!("{host}:{SENTINEL_PORT}")
                } else {
                    host.to_owned()
                };
                split_host_port(&with_port)
                    .map(|(host, port)| (host.to_owned(), port))
                    .map_err(invalid)
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            sentinels,
            service,
            username,
            password,
            db,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lettuce_forms_are_read() {
        let url = SentinelUrl::parse(
            "redis-sentinel://app:p%40ss@10.0.0.1,10.0.0.2:26380,[::1]:1/2#my%20master",
        )
        .unwrap();
        assert_eq!(
            url,
            SentinelUrl {
                sentinels: vec![
                    ("10.0.0.1".into(), 26379),
                    ("10.0.0.2".into(), 26380),
                    ("::1".into(), 1),
                ],
                service: "my master".into(),
                username: Some("app".into()),
                password: Some("p@ss".into()),
                db: Some(2),
            }
        );
        let plain = SentinelUrl::parse("redis-sentinel://s1#svc").unwrap();
        assert_eq!(plain.sentinels, [("s1".to_owned(), 26379)]);
        assert_eq!(
            (plain.username, plain.password, plain.db),
            (None, None, None)
        );
        let password_only = SentinelUrl::parse("redis-sentinel://pw@s1/#svc").unwrap();
        assert_eq!(password_only.password.as_deref(), Some("pw"));
        assert_eq!(password_only.db, None);
    }

    #[test]
    fn bad_forms_are_refused_with_credentials_hidden() {
        for bad in [
            "redis://s1#svc",
            "redis-sentinel://:secret@s1",
            "redis-sentinel://:secret@s1#",
            "redis-sentinel://:secret@s1/x#svc",
            "redis-sentinel://:secret@s1,,s2#svc",
            "redis-sentinel://:secret@s1:99999#svc",
            "redis-sentinel://:sec%zzret@s1#svc",
        ] {
            let err = SentinelUrl::parse(bad).unwrap_err();
            assert!(!err.to_string().contains("secret"), "{err}");
            assert!(
                err.to_string().contains("expected redis-sentinel://"),
                "{err}"
            );
        }
    }
}
