//! The commands of a channel, sent the same way by both real stores
//! ([`RedisStore`](crate::RedisStore) and `RedisClusterStore`): whatever
//! gives the connections, a [`Connector`] runs the same RPUSH, LPOP,
//! BLPOP, LINDEX, BLMOVE and the same scripts through its [`Pool`].

pub(crate) mod build;
pub(super) mod lease;

use std::time::Duration;

use redis::RedisResult;

use super::pool::{Pool, PooledConnection, Wait};
use super::script::{PUSH_WITH_TTL, TAKE_LAST};
use super::{StoreError, ttl_millis, wait_limit};

/// What a store tells the pool about itself, and the commands both real
/// stores send the same way.
pub(super) trait Connector: Sized {
    /// The connection type.
    type Connection: PooledConnection;
    /// The store's pool.
    fn pool(&self) -> &Pool<Self::Connection>;
    /// Opens a connection, with the response timeout set.
    fn connect(&self) -> Result<Self::Connection, StoreError>;
    /// How long a non-blocking command may wait for its answer.
    fn response_timeout(&self) -> Option<Duration>;
    /// The address shown in errors.
    fn shown_addr(&self) -> String;
    /// What the server says when it closes a new connection at once
    /// (`ERR max number of clients reached`), if it does.
    fn refusal(&self) -> Option<String> {
        None
    }

    /// Runs `command` through the pool (see [`Pool::run`]).
    fn run<T>(
        &self,
        wait: Wait,
        command: impl FnMut(&mut Self::Connection) -> RedisResult<T>,
    ) -> Result<T, StoreError> {
        self.pool().run(self, wait, command)
    }

    /// RPUSH, or with a TTL the atomic push-and-expire script.
    fn push(&self, key: &str, values: &[&[u8]], ttl: Option<Duration>) -> Result<u64, StoreError> {
        let Some(ttl) = ttl else {
            let rpush = build::rpush(key, values);
            return self.run(Wait::Response, |c| rpush.query(c));
        };
        let millis = ttl_millis(ttl).to_string();
        let args = build::push_with_ttl_args(&millis, values)
            .ok_or_else(|| build::no_values(self.shown_addr()))?;
        self.run(Wait::Response, |c| PUSH_WITH_TTL.invoke(c, &[key], &args))
    }

    /// LPOP.
    fn lpop(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let lpop = build::lpop(key, None);
        self.run(Wait::Response, |c| lpop.query(c))
    }

    /// BLPOP, on a read timeout stretched by the block time.
    fn blpop(&self, key: &str, timeout: Option<Duration>) -> Result<Option<Vec<u8>>, StoreError> {
        let timeout = wait_limit(timeout);
        let blpop = build::blpop(key, timeout);
        let popped: Option<(Vec<u8>, Vec<u8>)> =
            self.run(Wait::Blocking(timeout), |c| blpop.query(c))?;
        Ok(popped.map(|(_key, value)| value))
    }

    /// LPOP with a count: one round trip.
    fn lpop_many(&self, key: &str, count: usize) -> Result<Vec<Vec<u8>>, StoreError> {
        if count == 0 {
            return Ok(Vec::new());
        }
        let lpop = build::lpop(key, Some(count));
        let popped: Option<Vec<Vec<u8>>> = self.run(Wait::Response, |c| lpop.query(c))?;
        Ok(popped.unwrap_or_default())
    }

    /// BLMPOP (Redis 7 and newer): one round trip. On an older server,
    /// which does not know the command, BLPOP for the first element and LPOP
    /// for the rest.
    fn blmpop(
        &self,
        key: &str,
        count: usize,
        timeout: Option<Duration>,
    ) -> Result<Vec<Vec<u8>>, StoreError> {
        if count == 0 {
            return Ok(Vec::new());
        }
        let timeout = wait_limit(timeout);
        let blmpop = build::blmpop(key, count, timeout);
        match self.run(Wait::Blocking(timeout), |c| {
            blmpop.query::<build::Popped>(c)
        }) {
            Ok(popped) => Ok(popped.map(|(_key, values)| values).unwrap_or_default()),
            Err(err) if build::unknown_command(&err) => {
                let Some(first) = self.blpop(key, timeout)? else {
                    return Ok(Vec::new());
                };
                let mut popped = vec![first];
                popped.extend(self.lpop_many(key, count - 1)?);
                Ok(popped)
            }
            Err(err) => Err(err),
        }
    }

    /// LINDEX.
    fn lindex(&self, key: &str, index: i64) -> Result<Option<Vec<u8>>, StoreError> {
        let lindex = build::lindex(key, index);
        self.run(Wait::Response, |c| lindex.query(c))
    }

    /// The take-last script.
    fn take_last(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.run(Wait::Response, |c| TAKE_LAST.invoke(c, &[key], &[]))
    }

    /// Waits for the list to have an element without taking it (`BLMOVE`
    /// of the tail onto itself, which leaves the list as it is), then the
    /// take-last script. Nothing leaves Redis before that one atomic step,
    /// so a failure of either step loses nothing. Another consumer may take
    /// the element in between: then it waits again, for what is left of
    /// `timeout`.
    fn blocking_take_last(
        &self,
        key: &str,
        timeout: Option<Duration>,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let timeout = wait_limit(timeout);
        let deadline = timeout.map(|timeout| std::time::Instant::now() + timeout);
        loop {
            let left = deadline
                .map(|deadline| deadline.saturating_duration_since(std::time::Instant::now()));
            let blmove = build::blmove_tail(key, left);
            let moved: Option<Vec<u8>> = self.run(Wait::Blocking(left), |c| blmove.query(c))?;
            if moved.is_none() {
                return Ok(None);
            }
            if let Some(last) = self.take_last(key)? {
                return Ok(Some(last));
            }
            if left.is_some_and(|left| left.is_zero()) {
                return Ok(None);
            }
        }
    }

    /// The keys matching `pattern` on the one server the connections go
    /// to: `SCAN` from cursor 0 to its end.
    fn scan_server(&self, pattern: &str) -> Result<Vec<String>, StoreError> {
        let page = |cursor| {
            let scan = build::scan(cursor, pattern);
            self.run(Wait::Response, |c| scan.query(c))
        };
        let mut keys = Vec::new();
        scan_to_end(&mut keys, page(0)?, page)?;
        Ok(build::sorted_keys(keys))
    }

    /// PING on the one server the connections go to.
    fn ping_server(&self) -> Result<(), StoreError> {
        let ping = redis::cmd("PING");
        self.run(Wait::Response, |c| ping.query::<String>(c))
            .map(drop)
    }
}

/// One page of a `SCAN`: the next cursor (0 at the end) and the keys.
pub(crate) type ScanPage = (u64, Vec<Vec<u8>>);

/// Follows one server's `SCAN` cursor from `page` to its end, `next`
/// giving the page at a cursor, and adds the keys that are UTF-8 to
/// `keys`.
pub(super) fn scan_to_end(
    keys: &mut Vec<String>,
    page: ScanPage,
    mut next: impl FnMut(u64) -> Result<ScanPage, StoreError>,
) -> Result<(), StoreError> {
    let (mut cursor, mut batch) = page;
    loop {
        build::scanned(keys, std::mem::take(&mut batch));
        if cursor == 0 {
            return Ok(());
        }
        (cursor, batch) = next(cursor)?;
    }
}

/// [`scan_to_end`] for the async stores: `next` is a future.
#[cfg(feature = "tokio")]
pub(crate) async fn scan_to_end_async<F, Fut>(
    keys: &mut Vec<String>,
    page: ScanPage,
    mut next: F,
) -> Result<(), StoreError>
where
    F: FnMut(u64) -> Fut,
    Fut: std::future::Future<Output = Result<ScanPage, StoreError>>,
{
    let (mut cursor, mut batch) = page;
    loop {
        build::scanned(keys, std::mem::take(&mut batch));
        if cursor == 0 {
            return Ok(());
        }
        (cursor, batch) = next(cursor).await?;
    }
}

/// The [`ListStore`](super::ListStore) methods that every real store
/// answers the same way, through its [`Connector`]. A store whose
/// connections all go to one server (`single_server`) takes `scan` and
/// `ping` from [`Connector::scan_server`] and [`Connector::ping_server`]
/// too; another adds its own, which depend on its topology.
macro_rules! connector_list_store_methods {
    (single_server) => {
        $crate::store::commands::connector_list_store_methods!();

        fn scan(&self, pattern: &str) -> Result<Vec<String>, $crate::StoreError> {
            $crate::store::commands::Connector::scan_server(self, pattern)
        }

        fn ping(&self) -> Result<(), $crate::StoreError> {
            $crate::store::commands::Connector::ping_server(self)
        }
    };
    () => {
        fn push(
            &self,
            key: &str,
            values: &[&[u8]],
            ttl: Option<std::time::Duration>,
        ) -> Result<u64, $crate::StoreError> {
            $crate::store::commands::Connector::push(self, key, values, ttl)
        }

        fn pop(&self, key: &str) -> Result<Option<Vec<u8>>, $crate::StoreError> {
            self.lpop(key)
        }

        fn blocking_pop(
            &self,
            key: &str,
            timeout: Option<std::time::Duration>,
        ) -> Result<Option<Vec<u8>>, $crate::StoreError> {
            self.blpop(key, timeout)
        }

        fn pop_many(&self, key: &str, count: usize) -> Result<Vec<Vec<u8>>, $crate::StoreError> {
            self.lpop_many(key, count)
        }

        fn blocking_pop_many(
            &self,
            key: &str,
            count: usize,
            timeout: Option<std::time::Duration>,
        ) -> Result<Vec<Vec<u8>>, $crate::StoreError> {
            self.blmpop(key, count, timeout)
        }

        fn index(&self, key: &str, index: i64) -> Result<Option<Vec<u8>>, $crate::StoreError> {
            self.lindex(key, index)
        }

        fn take_last(&self, key: &str) -> Result<Option<Vec<u8>>, $crate::StoreError> {
            $crate::store::commands::Connector::take_last(self, key)
        }

        fn blocking_take_last(
            &self,
            key: &str,
            timeout: Option<std::time::Duration>,
        ) -> Result<Option<Vec<u8>>, $crate::StoreError> {
            $crate::store::commands::Connector::blocking_take_last(self, key, timeout)
        }
    };
}

pub(super) use connector_list_store_methods;
