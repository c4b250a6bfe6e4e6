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
use crate::proxy::wire::Command;

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

    fn decoded<W: DeserializeOwned>(answered: Answered<Vec<u8>>) -> Result<Answered<W>, Error> {
        Ok(Answered {
            value: decode(answered.value, answered.host.clone())?,
            host: answered.host,
            attempts: answered.attempts,
        })
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
        let op = Op::new(Command::Get, &[key], None, options)?;
        Answered::<V>::decoded(self.read(&op, options)?)
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
        let op = Op::new(Command::Set, &[key], Some(encode(value)?), options)?;
        self.write(&op, options)
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
        let op = Op::new(Command::HGet, &[hashname, hashkey], None, options)?;
        Answered::<V>::decoded(self.read(&op, options)?)
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
        let body = Some(encode(value)?);
        let op = Op::new(Command::HSet, &[hashname, hashkey], body, options)?;
        self.write(&op, options)
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
        let op = Op::new(Command::HKeys, &[hashname], None, options)?;
        Answered::<Vec<String>>::decoded(self.read(&op, options)?)
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
        let op = Op::new(Command::HVals, &[hashname], None, options)?;
        Answered::<Vec<V>>::decoded(self.read(&op, options)?)
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
        let op = Op::new(Command::HGetAll, &[hashname], None, options)?;
        Answered::<HashMap<String, V>>::decoded(self.read(&op, options)?)
    }

    /// [`delete_with`](Self::delete_with), with who answered.
    ///
    /// # Errors
    ///
    /// As [`set`](Self::set).
    pub fn delete_answered(&self, key: &str, options: &CallOptions) -> Result<Answered<()>, Error> {
        let op = Op::new(Command::Del, &[key], None, options)?;
        self.write(&op, options)
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
        let op = Op::new(Command::HDel, &[hashname, hashkey], None, options)?;
        self.write(&op, options)
    }
}
