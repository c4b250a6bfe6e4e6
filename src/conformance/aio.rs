//! The channel suite on an [`AsyncListStore`] (features `conformance` and
//! `tokio`): [`BlockOn`] makes an async store a sync one, call for call,
//! and [`AsyncHarness`] runs every scenario of [`scenarios`](super::scenarios)
//! (and of [`lease_scenarios`](super::lease_scenarios), on an
//! [`AsyncLeaseStore`](crate::aio::AsyncLeaseStore)) through it, so the async stores pass the very
//! scenarios the sync ones do.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::{BlockOn, Harness};
use crate::aio::AsyncListStore;

/// The harness of an async store: `harness`'s server, time and keys, with
/// the async store `store` (which reaches that server) under test.
pub struct AsyncHarness<H, S> {
    harness: H,
    store: BlockOn<S>,
}

impl<H, S> AsyncHarness<H, S> {
    /// Runs the scenarios on `store`, which must reach the server of
    /// `harness`, on a runtime of two worker threads.
    ///
    /// # Panics
    ///
    /// When the runtime cannot start.
    pub fn new(harness: H, store: S) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("start a tokio runtime");
        Self {
            harness,
            store: BlockOn::new(store, Arc::new(runtime)),
        }
    }
}

impl<H, S> Harness for AsyncHarness<H, S>
where
    H: Harness,
    S: AsyncListStore + Clone + fmt::Debug + 'static,
{
    type Store = BlockOn<S>;

    fn store(&self) -> BlockOn<S> {
        self.store.clone()
    }
    fn advance(&self, by: Duration) {
        self.harness.advance(by);
    }
    fn blocking<R: Send>(&self, call: impl FnOnce() -> R + Send) -> R {
        self.harness.blocking(call)
    }
    fn set_string(&self, key: &str, value: &str) {
        self.harness.set_string(key, value);
    }
    fn get_string(&self, key: &str) -> Option<String> {
        self.harness.get_string(key)
    }
    fn ttl(&self, key: &str) -> Option<Duration> {
        self.harness.ttl(key)
    }
    fn delete(&self, key: &str) {
        self.harness.delete(key);
    }
}
