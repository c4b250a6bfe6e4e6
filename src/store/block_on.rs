//! [`BlockOn`]: an async store as a sync one, call for call, so the
//! conformance suite runs the async stores through the very scenarios the
//! sync ones pass. Its [`ListStore`](super::ListStore) and
//! [`LeaseStore`](super::LeaseStore) impls sit beside the traits they
//! implement.

use std::fmt;
use std::sync::Arc;

/// A [`ListStore`](super::ListStore) whose every call is the same call of an
/// [`AsyncListStore`](super::AsyncListStore), run to its end on a tokio runtime (from a thread
/// outside it). Clones share the runtime.
pub struct BlockOn<S> {
    pub(super) store: S,
    pub(super) runtime: Arc<tokio::runtime::Runtime>,
}

impl<S> BlockOn<S> {
    /// `store`, called on `runtime`.
    pub fn new(store: S, runtime: Arc<tokio::runtime::Runtime>) -> Self {
        Self { store, runtime }
    }

    /// The async store.
    pub fn store(&self) -> &S {
        &self.store
    }
}

impl<S: Clone> Clone for BlockOn<S> {
    fn clone(&self) -> Self {
        Self::new(self.store.clone(), self.runtime.clone())
    }
}

impl<S: fmt::Debug> fmt::Debug for BlockOn<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("BlockOn").field(&self.store).finish()
    }
}
