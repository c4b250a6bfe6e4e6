//! [`Receive`]: a receive that, dropped before it ends, stops waiting at
//! once and hands what it took to whoever puts it back.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use super::{AsyncStore, Cancel};
use crate::store::StoreError;
use crate::store::protocol::ops::Operation;
use crate::store::target::Target;

type Boxed<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// What to do with the output of a receive nobody waits for any more.
type Orphan<T> = Box<dyn FnOnce(T) -> Boxed<()> + Send>;

/// What unblocks the connection a cancelled receive is blocked on.
type Unblock = Box<dyn FnOnce(Arc<Cancel>) -> Option<Boxed<()>> + Send>;

/// A receive as a future. Dropped after it was first polled and before it
/// ended, it is cancelled: a connection it is blocked on is unblocked
/// (`CLIENT UNBLOCK` from the node's shared connection), the rest of the
/// call runs in a task of its own without starting a new wait, and what it
/// took goes to its orphan handler (which puts it back). A receive never
/// polled has sent nothing and is simply dropped.
pub(crate) struct Receive<T: Send + 'static> {
    call: Option<Boxed<Result<T, StoreError>>>,
    started: bool,
    cancel: Arc<Cancel>,
    orphan: Option<Orphan<T>>,
    unblock: Option<Unblock>,
}

// The bound names a crate-private trait: the method is the crate's own.
#[allow(private_bounds)]
impl<S: Target> AsyncStore<S> {
    /// Runs `op` as a [`Receive`] whose orphaned output `orphan` takes.
    pub(crate) fn receive<O, F, Fut>(&self, op: O, orphan: F) -> Receive<O::Output>
    where
        O: Operation + 'static,
        F: FnOnce(Self, O::Output) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let cancel = Arc::new(Cancel::default());
        let store = self.clone();
        let running = Arc::clone(&cancel);
        let call = Box::pin(async move { store.run(op, Some(&running)).await });
        let store = self.clone();
        let orphaned = self.clone();
        Receive {
            call: Some(call),
            started: false,
            cancel,
            orphan: Some(Box::new(move |output| Box::pin(orphan(orphaned, output)))),
            unblock: Some(Box::new(move |cancel: Arc<Cancel>| {
                let (node, id) = cancel.cancel()?;
                Some(Box::pin(store.unblock(node, id, cancel)) as Boxed<()>)
            })),
        }
    }
}

impl<T: Send + 'static> Future for Receive<T> {
    type Output = Result<T, StoreError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.started = true;
        let call = self.call.as_mut().expect("a receive polled after it ended");
        let output = std::task::ready!(call.as_mut().poll(cx));
        self.call = None;
        Poll::Ready(output)
    }
}

impl<T: Send + 'static> Drop for Receive<T> {
    fn drop(&mut self) {
        let (Some(call), Some(orphan), Some(unblock)) =
            (self.call.take(), self.orphan.take(), self.unblock.take())
        else {
            return;
        };
        if !self.started {
            return;
        }
        let unblocking = unblock(Arc::clone(&self.cancel));
        // Outside a runtime (it is shutting down) nothing can finish the
        // call; its connections close with the runtime.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            if let Some(unblocking) = unblocking {
                runtime.spawn(unblocking);
            }
            runtime.spawn(async move {
                if let Ok(output) = call.await {
                    orphan(output).await;
                }
            });
        }
    }
}
