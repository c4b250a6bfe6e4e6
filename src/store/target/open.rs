//! What every driver has, written once: a handle's `Clone`, `Debug` and
//! identity, and on each target its constructors (`open`, `open_with`, and
//! `open_url` for Sentinel) and what it was opened with.
//! `driver_common!(BlockingStore)` and `driver_common!(AsyncStore)` give
//! them to each driver.

/// Expands to a driver's handle impls and its stores' constructors on the
/// three targets.
macro_rules! driver_common {
    ($store:ident) => {
        // A panic in a caller leaves a store usable: its locks are taken
        // back from a poisoned state, and a connection in the middle of a
        // call is dropped, never reused.
        impl<T> std::panic::UnwindSafe for $store<T> {}
        impl<T> std::panic::RefUnwindSafe for $store<T> {}

        impl<T> Clone for $store<T> {
            fn clone(&self) -> Self {
                Self {
                    inner: std::sync::Arc::clone(&self.inner),
                }
            }
        }

        impl<T: std::fmt::Debug> std::fmt::Debug for $store<T> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.inner.target.fmt(f)
            }
        }

        impl<T> $store<T> {
            /// The target: where the store sends its commands, and its options.
            pub fn target(&self) -> &T {
                &self.inner.target
            }

            /// Whether `self` and `other` are the same handle (clones of one store).
            pub fn ptr_eq(&self, other: &Self) -> bool {
                std::sync::Arc::ptr_eq(&self.inner, &other.inner)
            }
        }

        impl $store<$crate::store::target::Server> {
            /// A store for the Redis at `addr`, with default options. Connects to
            /// nothing yet.
            pub fn open(
                addr: impl $crate::store::IntoRedisAddr,
            ) -> Result<Self, $crate::StoreError> {
                Self::open_with(addr, $crate::RedisStoreOptions::default())
            }

            /// A store for the Redis at `addr` with `options`. Connects to nothing
            /// yet. An address or options that cannot work are refused here
            /// ([`StoreError::InvalidAddress`](crate::StoreError::InvalidAddress), [`StoreError::InvalidOptions`](crate::StoreError::InvalidOptions)).
            pub fn open_with(
                addr: impl $crate::store::IntoRedisAddr,
                options: $crate::RedisStoreOptions,
            ) -> Result<Self, $crate::StoreError> {
                Ok(Self::with_target($crate::store::target::Server::new(
                    addr, options,
                )?))
            }

            /// The server's address.
            pub fn addr(&self) -> &$crate::store::RedisAddr {
                self.target().addr()
            }

            /// The options in force.
            pub fn options(&self) -> &$crate::RedisStoreOptions {
                self.target().options()
            }
        }

        #[cfg(feature = "cluster")]
        impl $store<$crate::store::target::Cluster> {
            /// A store for the cluster the `seeds` belong to, with default options.
            /// Connects to nothing yet.
            ///
            /// Each seed is anything [`IntoRedisAddr`](crate::store::IntoRedisAddr) takes (a port, `(host,
            /// port)`, `"host:port"`, a `redis://` or `rediss://` URL); a few nodes
            /// are enough, the others are learnt from the cluster. A password is
            /// taken from the first seed.
            pub fn open<I>(seeds: I) -> Result<Self, $crate::StoreError>
            where
                I: IntoIterator,
                I::Item: $crate::store::IntoRedisAddr,
            {
                Self::open_with(seeds, $crate::RedisClusterStoreOptions::default())
            }

            /// A store for the cluster of the `seeds` with `options`.
            pub fn open_with<I>(
                seeds: I,
                options: $crate::RedisClusterStoreOptions,
            ) -> Result<Self, $crate::StoreError>
            where
                I: IntoIterator,
                I::Item: $crate::store::IntoRedisAddr,
            {
                Ok(Self::with_target($crate::store::target::Cluster::new(
                    seeds, options,
                )?))
            }

            /// The seed nodes, as given.
            pub fn seeds(&self) -> &[$crate::store::RedisAddr] {
                self.target().seeds()
            }

            /// The options in force.
            pub fn options(&self) -> &$crate::RedisClusterStoreOptions {
                self.target().options()
            }
        }

        #[cfg(feature = "sentinel")]
        impl $store<$crate::store::target::Sentinel> {
            /// A store for the master of `service`, as the `sentinels` name it,
            /// with default options. Connects to nothing yet.
            ///
            /// Each sentinel is anything [`IntoRedisAddr`](crate::store::IntoRedisAddr) takes (a port, `(host,
            /// port)`, `"host:port"`, a `redis://` URL, whose password is the
            /// sentinel's unless the options give one).
            pub fn open<I>(sentinels: I, service: &str) -> Result<Self, $crate::StoreError>
            where
                I: IntoIterator,
                I::Item: $crate::store::IntoRedisAddr,
            {
                Self::open_with(
                    sentinels,
                    service,
                    $crate::RedisSentinelStoreOptions::default(),
                )
            }

            /// A store for the master of `service` with `options`.
            pub fn open_with<I>(
                sentinels: I,
                service: &str,
                options: $crate::RedisSentinelStoreOptions,
            ) -> Result<Self, $crate::StoreError>
            where
                I: IntoIterator,
                I::Item: $crate::store::IntoRedisAddr,
            {
                Ok(Self::with_target($crate::store::target::Sentinel::new(
                    sentinels, service, options,
                )?))
            }

            /// A store for the Sentinel deployment `url` names, in the form
            /// Lettuce and Spring Data Redis use:
            /// `redis-sentinel://[[username:]password@]host[:port][,host[:port]…][/db]#service`.
            /// The hosts are the sentinels (port 26379 when left out); the
            /// username, password and database are the master's and take the place
            /// of those in `options`. The sentinels' own credentials, if any, stay
            /// in [`RedisSentinelStoreOptions::sentinel_auth`](crate::RedisSentinelStoreOptions::sentinel_auth).
            pub fn open_url(
                url: &str,
                options: $crate::RedisSentinelStoreOptions,
            ) -> Result<Self, $crate::StoreError> {
                Ok(Self::with_target(
                    $crate::store::target::Sentinel::from_url(url, options)?,
                ))
            }

            /// The sentinels, as given.
            pub fn sentinels(&self) -> Vec<&$crate::store::RedisAddr> {
                self.target().sentinels()
            }

            /// The service name.
            pub fn service(&self) -> &str {
                self.target().service()
            }

            /// The options in force.
            pub fn options(&self) -> &$crate::RedisSentinelStoreOptions {
                self.target().options()
            }
        }
    };
}

pub(crate) use driver_common;

#[cfg(all(test, feature = "tokio", feature = "sentinel", feature = "cluster"))]
mod tests {
    use crate::aio::{AsyncRedisClusterStore, AsyncRedisSentinelStore, AsyncRedisStore};
    use crate::{RedisClusterStore, RedisSentinelStore, RedisStore};

    /// Both drivers open the same targets, refuse the same input and hide
    /// the same secrets: the constructors are one text.
    #[test]
    fn both_drivers_open_alike() {
        let sentinels = ["redis://:sentinel-pw@10.0.0.1:26379", "10.0.0.2:26380"];
        let sync = RedisSentinelStore::open(sentinels, "svc").unwrap();
        let not_sync = AsyncRedisSentinelStore::open(sentinels, "svc").unwrap();
        assert_eq!(sync.service(), not_sync.service());
        assert_eq!(
            format!("{:?}", sync.sentinels()),
            format!("{:?}", not_sync.sentinels())
        );
        assert!(!format!("{not_sync:?}").contains("sentinel-pw"));
        assert!(AsyncRedisSentinelStore::open(Vec::<&str>::new(), "svc").is_err());
        assert!(AsyncRedisSentinelStore::open(sentinels, "").is_err());

        let url = "redis://:pw@10.0.0.1:6379/2";
        assert_eq!(
            RedisStore::open(url).unwrap().addr(),
            AsyncRedisStore::open(url).unwrap().addr()
        );
        assert!(AsyncRedisStore::open("redis://h:1/x").is_err());
        assert_eq!(
            RedisClusterStore::open([7000, 7001]).unwrap().seeds(),
            AsyncRedisClusterStore::open([7000, 7001]).unwrap().seeds()
        );
        assert!(AsyncRedisClusterStore::open(Vec::<u16>::new()).is_err());
    }
}
