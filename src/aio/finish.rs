//! [`FinishOnDrop`]: a call that, dropped before it ends, ends anyway in a
//! task of its own, and hands what it took to whoever puts it back.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// What to do with the output of a call nobody waits for any more.
type Orphan<T> = Box<dyn FnOnce(T) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send>;

/// Runs `call` when polled; if dropped before `call` is done, spawns the
/// rest of `call` on the current tokio runtime and gives its output to
/// `orphan` (which puts back what the call took). A call never polled is
/// dropped as it is: it has sent nothing.
pub(crate) struct FinishOnDrop<T: Send + 'static> {
    call: Option<Pin<Box<dyn Future<Output = T> + Send>>>,
    started: bool,
    orphan: Option<Orphan<T>>,
}

impl<T: Send + 'static> FinishOnDrop<T> {
    pub(crate) fn new<F, O, R>(call: F, orphan: O) -> Self
    where
        F: Future<Output = T> + Send + 'static,
        O: FnOnce(T) -> R + Send + 'static,
        R: Future<Output = ()> + Send + 'static,
    {
        Self {
            call: Some(Box::pin(call)),
            started: false,
            orphan: Some(Box::new(move |output| Box::pin(orphan(output)))),
        }
    }
}

impl<T: Send + 'static> Future for FinishOnDrop<T> {
    type Output = T;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        self.started = true;
        let call = self
            .call
            .as_mut()
            .expect("FinishOnDrop polled after it completed");
        let output = std::task::ready!(call.as_mut().poll(cx));
        self.call = None;
        Poll::Ready(output)
    }
}

impl<T: Send + 'static> Drop for FinishOnDrop<T> {
    fn drop(&mut self) {
        let (Some(call), Some(orphan)) = (self.call.take(), self.orphan.take()) else {
            return;
        };
        if !self.started {
            return;
        }
        // Outside a runtime (it is shutting down) nothing can finish the
        // call; its connection closes with the runtime.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move { orphan(call.await).await });
        }
    }
}
