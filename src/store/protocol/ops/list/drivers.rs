//! The list operations of both drivers: each trait method runs its
//! operation through the driver's exchange.

use super::*;

impl<T: Target> ListStore for BlockingStore<T> {
    fn push(&self, key: &str, values: &[&[u8]], ttl: Option<Duration>) -> Result<u64, StoreError> {
        self.run(push(self.shown(), key, values, ttl)?)
    }

    fn pop(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.run(pop(self.shown(), key))
    }

    fn blocking_pop(
        &self,
        key: &str,
        timeout: Option<Duration>,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        self.run(blocking_pop(self.shown(), key, timeout))
    }

    fn pop_many(&self, key: &str, count: usize) -> Result<Vec<Vec<u8>>, StoreError> {
        self.run(pop_many(self.shown(), key, count))
    }

    fn blocking_pop_many(
        &self,
        key: &str,
        count: usize,
        timeout: Option<Duration>,
    ) -> Result<Vec<Vec<u8>>, StoreError> {
        self.run(blocking_pop_many(self.shown(), key, count, timeout))
    }

    fn index(&self, key: &str, index_: i64) -> Result<Option<Vec<u8>>, StoreError> {
        self.run(index(self.shown(), key, index_))
    }

    fn take_last(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.run(take_last(self.shown(), key))
    }

    fn blocking_take_last(
        &self,
        key: &str,
        timeout: Option<Duration>,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        self.run(blocking_take_last(self.shown(), key, timeout))
    }

    fn scan(&self, pattern: &str) -> Result<Vec<String>, StoreError> {
        self.run(scan(self.shown(), pattern))
    }

    fn ping(&self) -> Result<(), StoreError> {
        self.run(ping(self.shown()))
    }
}

/// What a cancelled receive took goes back to the head of its list.
#[cfg(feature = "tokio")]
pub(super) fn back<T: Target, O: IntoIterator<Item = Vec<u8>>>(
    key: &str,
) -> impl FnOnce(AsyncStore<T>, O) -> std::pin::Pin<Box<dyn Future<Output = ()> + Send>> + Send + 'static
{
    let key = key.to_owned();
    move |store, taken| Box::pin(store.put_back(key, taken.into_iter().collect()))
}

#[cfg(feature = "tokio")]
impl<T: Target> AsyncListStore for AsyncStore<T> {
    async fn push(
        &self,
        key: &str,
        values: &[&[u8]],
        ttl: Option<Duration>,
    ) -> Result<u64, StoreError> {
        self.run(push(self.shown(), key, values, ttl)?, None).await
    }

    fn pop(&self, key: &str) -> impl Future<Output = Result<Option<Vec<u8>>, StoreError>> + Send {
        self.receive(pop(self.shown(), key), back(key))
    }

    fn blocking_pop(
        &self,
        key: &str,
        timeout: Option<Duration>,
    ) -> impl Future<Output = Result<Option<Vec<u8>>, StoreError>> + Send {
        self.receive(blocking_pop(self.shown(), key, timeout), back(key))
    }

    fn pop_many(
        &self,
        key: &str,
        count: usize,
    ) -> impl Future<Output = Result<Vec<Vec<u8>>, StoreError>> + Send {
        self.receive(pop_many(self.shown(), key, count), back(key))
    }

    fn blocking_pop_many(
        &self,
        key: &str,
        count: usize,
        timeout: Option<Duration>,
    ) -> impl Future<Output = Result<Vec<Vec<u8>>, StoreError>> + Send {
        let op = blocking_pop_many(self.shown(), key, count, timeout);
        self.receive(op, back(key))
    }

    async fn index(&self, key: &str, index_: i64) -> Result<Option<Vec<u8>>, StoreError> {
        self.run(index(self.shown(), key, index_), None).await
    }

    fn take_last(
        &self,
        key: &str,
    ) -> impl Future<Output = Result<Option<Vec<u8>>, StoreError>> + Send {
        self.receive(take_last(self.shown(), key), back(key))
    }

    fn blocking_take_last(
        &self,
        key: &str,
        timeout: Option<Duration>,
    ) -> impl Future<Output = Result<Option<Vec<u8>>, StoreError>> + Send {
        self.receive(blocking_take_last(self.shown(), key, timeout), back(key))
    }

    async fn scan(&self, pattern: &str) -> Result<Vec<String>, StoreError> {
        self.run(scan(self.shown(), pattern), None).await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.run(ping(self.shown()), None).await
    }
}
