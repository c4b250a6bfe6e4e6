//! What a call carries: a value encoded to JSON on the way out, and on the
//! way back decoded into an [`Answered`], the value with who answered and
//! after how many attempts.

use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::proxy::error::Error;
use crate::proxy::host::ProxyHost;

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
/// use redisutil::proxy::{FakeTransport, Outcome, ProxyConfig, RedisProxyClient};
///
/// let fake = FakeTransport::new();
/// fake.push("10.0.0.1:80", Outcome::Refused);
/// fake.set_default("10.0.0.2:80", Outcome::json(200, "v"));
/// let client = RedisProxyClient::new(
///     &fake,
///     ProxyConfig::with_hosts([("10.0.0.1", 80), ("10.0.0.2", 80)]),
/// )?;
/// let answered = client.get_answered::<String>("k")?;
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

    /// A write's answer, whose body says nothing (a `Result` like
    /// [`decoded`](Self::decoded)'s, so that both finish a call alike).
    pub(crate) fn written(self) -> Result<Answered<()>, Error> {
        Ok(Answered {
            value: (),
            host: self.host,
            attempts: self.attempts,
        })
    }
}

/// A value's JSON, the body of a write.
pub(crate) fn encode<V: Serialize + ?Sized>(value: &V) -> Result<Vec<u8>, Error> {
    crate::json::to_vec(value).map_err(|error| Error::Encode(error.to_string(), Arc::new(error)))
}

/// A read's body as a `V`; the bytes stay in the error when it is not one.
pub(crate) fn decode<V: DeserializeOwned>(body: Vec<u8>, host: ProxyHost) -> Result<V, Error> {
    crate::json::from_slice(&body).map_err(|error| {
        crate::trace::decode_failed("proxy value", host.to_string().as_str(), body.len(), &error);
        Error::Decode {
            host,
            message: error.to_string(),
            body,
            source: Arc::new(error),
        }
    })
}
