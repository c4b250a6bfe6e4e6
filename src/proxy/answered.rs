//! [`Answered`]: a successful call with who answered and after how many
//! attempts, and the `*_answered` forms of the client's operations that
//! return it (the plain forms drop it).

use std::collections::HashMap;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::proxy::client::{RedisProxyClient, decode, encode};
use crate::proxy::config::{CallOptions, ProxyHost};
use crate::proxy::error::Error;
use crate::proxy::failover::Op;
use crate::proxy::transport::HttpTransport;

/// The value of a successful call, with the host that answered it and the
/// number of requests it took.
///
/// For a write or delete, which every cluster took, `host` is the host of
/// the main cluster that answered and `attempts` counts the requests sent
/// to every cluster.
///
/// # Example
///
/// ```
/// use redisutil::proxy::{CallOptions, FakeTransport, Outcome, ProxyConfig, RedisProxyClient};
///
/// let fake = FakeTransport::new();
/// fake.push("10.0.0.1:80", Outcome::Refused);
/// fake.set_default("10.0.0.2:80", Outcome::json(200, "v"));
/// let client = RedisProxyClient::new(
///     &fake,
///     ProxyConfig::with_hosts([("10.0.0.1", 80), ("10.0.0.2", 80)]),
/// )?;
/// let answered = client.get_answered::<String>("k", &CallOptions::new())?;
/// assert_eq!(answered.value, "v");
/// assert_eq!(answered.host.to_string(), "10.0.0.2:80");
/// assert_eq!(answered.attempts, 2);
/// # Ok::<(), redisutil::proxy::Error>(())
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answered<V> {
    /// What the call returns.
    pub value: V,
    /// The host whose answer it is.
    pub host: ProxyHost,
    /// Requests sent, over every host, round and cluster tried (at least 1).
    pub attempts: u32,
}

impl<V> Answered<V> {
    /// The value, without the rest.
    pub fn into_value(self) -> V {
        self.value
    }
}

impl Answered<Vec<u8>> {
    /// A read's body decoded as a `W`.
    pub(crate) fn decoded<W: DeserializeOwned>(self) -> Result<Answered<W>, Error> {
        Ok(Answered {
            value: decode(self.value, self.host.clone())?,
            host: self.host,
            attempts: self.attempts,
        })
    }

    /// A write's answer, whose body says nothing.
    pub(crate) fn written(self) -> Answered<()> {
        Answered {
            value: (),
            host: self.host,
            attempts: self.attempts,
        }
    }
}

impl<T: HttpTransport> RedisProxyClient<T> {
    /// [`get_with`](Self::get_with), with who answered.
    ///
    /// # Errors
    ///
    /// As [`get`](Self::get).
    pub fn get_answered<V: DeserializeOwned>(
        &self,
        key: &str,
        options: &CallOptions,
    ) -> Result<Answered<V>, Error> {
        self.walk(&Op::get(key, options)?, options)?.decoded()
    }

    /// [`set_with`](Self::set_with), with who answered.
    ///
    /// # Errors
    ///
    /// As [`set`](Self::set).
    pub fn set_answered<V: Serialize + ?Sized>(
        &self,
        key: &str,
        value: &V,
        options: &CallOptions,
    ) -> Result<Answered<()>, Error> {
        let op = Op::set(key, encode(value)?, options)?;
        Ok(self.walk(&op, options)?.written())
    }

    /// [`hget_with`](Self::hget_with), with who answered.
    ///
    /// # Errors
    ///
    /// As [`get`](Self::get).
    pub fn hget_answered<V: DeserializeOwned>(
        &self,
        hashname: &str,
        hashkey: &str,
        options: &CallOptions,
    ) -> Result<Answered<V>, Error> {
        self.walk(&Op::hget(hashname, hashkey, options)?, options)?
            .decoded()
    }

    /// [`hset_with`](Self::hset_with), with who answered.
    ///
    /// # Errors
    ///
    /// As [`set`](Self::set).
    pub fn hset_answered<V: Serialize + ?Sized>(
        &self,
        hashname: &str,
        hashkey: &str,
        value: &V,
        options: &CallOptions,
    ) -> Result<Answered<()>, Error> {
        let op = Op::hset(hashname, hashkey, encode(value)?, options)?;
        Ok(self.walk(&op, options)?.written())
    }

    /// [`hkeys_with`](Self::hkeys_with), with who answered.
    ///
    /// # Errors
    ///
    /// As [`get`](Self::get).
    pub fn hkeys_answered(
        &self,
        hashname: &str,
        options: &CallOptions,
    ) -> Result<Answered<Vec<String>>, Error> {
        self.walk(&Op::hkeys(hashname, options)?, options)?
            .decoded()
    }

    /// [`hvals_with`](Self::hvals_with), with who answered.
    ///
    /// # Errors
    ///
    /// As [`get`](Self::get).
    pub fn hvals_answered<V: DeserializeOwned>(
        &self,
        hashname: &str,
        options: &CallOptions,
    ) -> Result<Answered<Vec<V>>, Error> {
        self.walk(&Op::hvals(hashname, options)?, options)?
            .decoded()
    }

    /// [`hgetall_with`](Self::hgetall_with), with who answered.
    ///
    /// # Errors
    ///
    /// As [`get`](Self::get).
    pub fn hgetall_answered<V: DeserializeOwned>(
        &self,
        hashname: &str,
        options: &CallOptions,
    ) -> Result<Answered<HashMap<String, V>>, Error> {
        self.walk(&Op::hgetall(hashname, options)?, options)?
            .decoded()
    }

    /// [`delete_with`](Self::delete_with), with who answered.
    ///
    /// # Errors
    ///
    /// As [`set`](Self::set).
    pub fn delete_answered(&self, key: &str, options: &CallOptions) -> Result<Answered<()>, Error> {
        Ok(self.walk(&Op::delete(key, options)?, options)?.written())
    }

    /// [`hdel_with`](Self::hdel_with), with who answered.
    ///
    /// # Errors
    ///
    /// As [`set`](Self::set).
    pub fn hdel_answered(
        &self,
        hashname: &str,
        hashkey: &str,
        options: &CallOptions,
    ) -> Result<Answered<()>, Error> {
        let op = Op::hdel(hashname, hashkey, options)?;
        Ok(self.walk(&op, options)?.written())
    }
}
