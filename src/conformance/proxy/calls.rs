//! [`ProxyCalls`]: the calls the proxy scenarios make, so that one set of
//! scenarios drives the blocking client and, through [`BlockingAsync`],
//! the async one.

use std::collections::HashMap;

use http::{Request, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::proxy::{CallOptions, Error, HttpTransport, RedisProxyClient, TransportError};

/// A proxy client as the scenarios call it: the operations of
/// [`RedisProxyClient`], blocking until each is done, and a raw request
/// through the client's transport.
///
/// Implemented by [`RedisProxyClient`] and, with the feature `tokio`, by
/// [`BlockingAsync`] (an
/// [`AsyncRedisProxyClient`](crate::proxy::aio::AsyncRedisProxyClient) run on a
/// runtime). The provided methods call the `*_with` ones with no options.
pub trait ProxyCalls {
    /// [`RedisProxyClient::get_with`].
    ///
    /// # Errors
    ///
    /// The client's.
    fn get_with<V: DeserializeOwned>(&self, key: &str, options: &CallOptions) -> Result<V, Error>;

    /// [`RedisProxyClient::set_with`].
    ///
    /// # Errors
    ///
    /// The client's.
    fn set_with<V: Serialize + ?Sized>(
        &self,
        key: &str,
        value: &V,
        options: &CallOptions,
    ) -> Result<(), Error>;

    /// [`RedisProxyClient::hget_with`].
    ///
    /// # Errors
    ///
    /// The client's.
    fn hget_with<V: DeserializeOwned>(
        &self,
        hashname: &str,
        hashkey: &str,
        options: &CallOptions,
    ) -> Result<V, Error>;

    /// [`RedisProxyClient::hset_with`].
    ///
    /// # Errors
    ///
    /// The client's.
    fn hset_with<V: Serialize + ?Sized>(
        &self,
        hashname: &str,
        hashkey: &str,
        value: &V,
        options: &CallOptions,
    ) -> Result<(), Error>;

    /// [`RedisProxyClient::hkeys_with`].
    ///
    /// # Errors
    ///
    /// The client's.
    fn hkeys_with(&self, hashname: &str, options: &CallOptions) -> Result<Vec<String>, Error>;

    /// [`RedisProxyClient::hvals_with`].
    ///
    /// # Errors
    ///
    /// The client's.
    fn hvals_with<V: DeserializeOwned>(
        &self,
        hashname: &str,
        options: &CallOptions,
    ) -> Result<Vec<V>, Error>;

    /// [`RedisProxyClient::hgetall_with`].
    ///
    /// # Errors
    ///
    /// The client's.
    fn hgetall_with<V: DeserializeOwned>(
        &self,
        hashname: &str,
        options: &CallOptions,
    ) -> Result<HashMap<String, V>, Error>;

    /// [`RedisProxyClient::delete_with`].
    ///
    /// # Errors
    ///
    /// The client's.
    fn delete_with(&self, key: &str, options: &CallOptions) -> Result<(), Error>;

    /// [`RedisProxyClient::hdel_with`].
    ///
    /// # Errors
    ///
    /// The client's.
    fn hdel_with(&self, hashname: &str, hashkey: &str, options: &CallOptions) -> Result<(), Error>;

    /// Sends `request` as it is through the client's transport.
    ///
    /// # Errors
    ///
    /// The transport's.
    fn send_raw(&self, request: Request<Vec<u8>>) -> Result<Response<Vec<u8>>, TransportError>;

    /// [`get_with`](Self::get_with) with no options.
    ///
    /// # Errors
    ///
    /// The client's.
    fn get<V: DeserializeOwned>(&self, key: &str) -> Result<V, Error> {
        self.get_with(key, &CallOptions::new())
    }

    /// [`set_with`](Self::set_with) with no options.
    ///
    /// # Errors
    ///
    /// The client's.
    fn set<V: Serialize + ?Sized>(&self, key: &str, value: &V) -> Result<(), Error> {
        self.set_with(key, value, &CallOptions::new())
    }

    /// [`hget_with`](Self::hget_with) with no options.
    ///
    /// # Errors
    ///
    /// The client's.
    fn hget<V: DeserializeOwned>(&self, hashname: &str, hashkey: &str) -> Result<V, Error> {
        self.hget_with(hashname, hashkey, &CallOptions::new())
    }

    /// [`hset_with`](Self::hset_with) with no options.
    ///
    /// # Errors
    ///
    /// The client's.
    fn hset<V: Serialize + ?Sized>(
        &self,
        hashname: &str,
        hashkey: &str,
        value: &V,
    ) -> Result<(), Error> {
        self.hset_with(hashname, hashkey, value, &CallOptions::new())
    }

    /// [`hkeys_with`](Self::hkeys_with) with no options.
    ///
    /// # Errors
    ///
    /// The client's.
    fn hkeys(&self, hashname: &str) -> Result<Vec<String>, Error> {
        self.hkeys_with(hashname, &CallOptions::new())
    }

    /// [`hvals_with`](Self::hvals_with) with no options.
    ///
    /// # Errors
    ///
    /// The client's.
    fn hvals<V: DeserializeOwned>(&self, hashname: &str) -> Result<Vec<V>, Error> {
        self.hvals_with(hashname, &CallOptions::new())
    }

    /// [`hgetall_with`](Self::hgetall_with) with no options.
    ///
    /// # Errors
    ///
    /// The client's.
    fn hgetall<V: DeserializeOwned>(&self, hashname: &str) -> Result<HashMap<String, V>, Error> {
        self.hgetall_with(hashname, &CallOptions::new())
    }

    /// [`delete_with`](Self::delete_with) with no options.
    ///
    /// # Errors
    ///
    /// The client's.
    fn delete(&self, key: &str) -> Result<(), Error> {
        self.delete_with(key, &CallOptions::new())
    }

    /// [`hdel_with`](Self::hdel_with) with no options.
    ///
    /// # Errors
    ///
    /// The client's.
    fn hdel(&self, hashname: &str, hashkey: &str) -> Result<(), Error> {
        self.hdel_with(hashname, hashkey, &CallOptions::new())
    }
}

impl<T: HttpTransport> ProxyCalls for RedisProxyClient<T> {
    fn get_with<V: DeserializeOwned>(&self, key: &str, options: &CallOptions) -> Result<V, Error> {
        RedisProxyClient::get_with(self, key, options)
    }

    fn set_with<V: Serialize + ?Sized>(
        &self,
        key: &str,
        value: &V,
        options: &CallOptions,
    ) -> Result<(), Error> {
        RedisProxyClient::set_with(self, key, value, options)
    }

    fn hget_with<V: DeserializeOwned>(
        &self,
        hashname: &str,
        hashkey: &str,
        options: &CallOptions,
    ) -> Result<V, Error> {
        RedisProxyClient::hget_with(self, hashname, hashkey, options)
    }

    fn hset_with<V: Serialize + ?Sized>(
        &self,
        hashname: &str,
        hashkey: &str,
        value: &V,
        options: &CallOptions,
    ) -> Result<(), Error> {
        RedisProxyClient::hset_with(self, hashname, hashkey, value, options)
    }

    fn hkeys_with(&self, hashname: &str, options: &CallOptions) -> Result<Vec<String>, Error> {
        RedisProxyClient::hkeys_with(self, hashname, options)
    }

    fn hvals_with<V: DeserializeOwned>(
        &self,
        hashname: &str,
        options: &CallOptions,
    ) -> Result<Vec<V>, Error> {
        RedisProxyClient::hvals_with(self, hashname, options)
    }

    fn hgetall_with<V: DeserializeOwned>(
        &self,
        hashname: &str,
        options: &CallOptions,
    ) -> Result<HashMap<String, V>, Error> {
        RedisProxyClient::hgetall_with(self, hashname, options)
    }

    fn delete_with(&self, key: &str, options: &CallOptions) -> Result<(), Error> {
        RedisProxyClient::delete_with(self, key, options)
    }

    fn hdel_with(&self, hashname: &str, hashkey: &str, options: &CallOptions) -> Result<(), Error> {
        RedisProxyClient::hdel_with(self, hashname, hashkey, options)
    }

    fn send_raw(&self, request: Request<Vec<u8>>) -> Result<Response<Vec<u8>>, TransportError> {
        self.transport().send(request)
    }
}

#[cfg(feature = "tokio")]
pub use self::blocking::BlockingAsync;

#[cfg(feature = "tokio")]
mod blocking {
    use std::collections::HashMap;
    use std::sync::Arc;

    use http::{Request, Response};
    use serde::Serialize;
    use serde::de::DeserializeOwned;
    use tokio::runtime::Runtime;

    use super::ProxyCalls;
    use crate::proxy::aio::{AsyncHttpTransport, AsyncRedisProxyClient};
    use crate::proxy::{CallOptions, Error, TransportError};

    /// An [`AsyncRedisProxyClient`] whose calls run to completion on a
    /// tokio runtime, one after the other (feature `tokio`): how a
    /// [`ProxyHarness`](crate::conformance::ProxyHarness) puts the async
    /// client through the proxy scenarios.
    ///
    /// # Example
    ///
    /// ```
    /// use std::sync::Arc;
    /// use redisutil::conformance::{BlockingAsync, ProxyCalls};
    /// use redisutil::proxy::{MemoryProxy, ProxyConfig};
    /// use redisutil::proxy::aio::AsyncRedisProxyClient;
    ///
    /// let runtime = Arc::new(tokio::runtime::Builder::new_current_thread().enable_all().build()?);
    /// let config = ProxyConfig::with_hosts([("127.0.0.1", 2222)]);
    /// let client = BlockingAsync::new(AsyncRedisProxyClient::new(MemoryProxy::new(), config)?, runtime);
    /// client.set("k", "v")?;
    /// assert_eq!(client.get::<String>("k")?, "v");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[derive(Debug, Clone)]
    pub struct BlockingAsync<T> {
        client: AsyncRedisProxyClient<T>,
        runtime: Arc<Runtime>,
    }

    impl<T> BlockingAsync<T> {
        /// `client`, its calls run on `runtime` (which needs its timer, and
        /// its I/O for a transport over the network).
        pub fn new(client: AsyncRedisProxyClient<T>, runtime: Arc<Runtime>) -> Self {
            Self { client, runtime }
        }

        /// The async client.
        pub fn client(&self) -> &AsyncRedisProxyClient<T> {
            &self.client
        }
    }

    impl<T: AsyncHttpTransport> ProxyCalls for BlockingAsync<T> {
        fn get_with<V: DeserializeOwned>(
            &self,
            key: &str,
            options: &CallOptions,
        ) -> Result<V, Error> {
            self.runtime.block_on(self.client.get_with(key, options))
        }

        fn set_with<V: Serialize + ?Sized>(
            &self,
            key: &str,
            value: &V,
            options: &CallOptions,
        ) -> Result<(), Error> {
            self.runtime
                .block_on(self.client.set_with(key, value, options))
        }

        fn hget_with<V: DeserializeOwned>(
            &self,
            hashname: &str,
            hashkey: &str,
            options: &CallOptions,
        ) -> Result<V, Error> {
            self.runtime
                .block_on(self.client.hget_with(hashname, hashkey, options))
        }

        fn hset_with<V: Serialize + ?Sized>(
            &self,
            hashname: &str,
            hashkey: &str,
            value: &V,
            options: &CallOptions,
        ) -> Result<(), Error> {
            self.runtime
                .block_on(self.client.hset_with(hashname, hashkey, value, options))
        }

        fn hkeys_with(&self, hashname: &str, options: &CallOptions) -> Result<Vec<String>, Error> {
            self.runtime
                .block_on(self.client.hkeys_with(hashname, options))
        }

        fn hvals_with<V: DeserializeOwned>(
            &self,
            hashname: &str,
            options: &CallOptions,
        ) -> Result<Vec<V>, Error> {
            self.runtime
                .block_on(self.client.hvals_with(hashname, options))
        }

        fn hgetall_with<V: DeserializeOwned>(
            &self,
            hashname: &str,
            options: &CallOptions,
        ) -> Result<HashMap<String, V>, Error> {
            self.runtime
                .block_on(self.client.hgetall_with(hashname, options))
        }

        fn delete_with(&self, key: &str, options: &CallOptions) -> Result<(), Error> {
            self.runtime.block_on(self.client.delete_with(key, options))
        }

        fn hdel_with(
            &self,
            hashname: &str,
            hashkey: &str,
            options: &CallOptions,
        ) -> Result<(), Error> {
            self.runtime
                .block_on(self.client.hdel_with(hashname, hashkey, options))
        }

        fn send_raw(&self, request: Request<Vec<u8>>) -> Result<Response<Vec<u8>>, TransportError> {
            self.runtime.block_on(self.client.transport().send(request))
        }
    }
}
