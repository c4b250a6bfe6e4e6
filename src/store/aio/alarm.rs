//! [`Alarm`]: one timer for every response timeout of a connection of
//! its own.
//!
//! A timer per call (`tokio::time::timeout`) costs the runtime, on every
//! call, an insertion into its timer wheel and a removal. An alarm is a
//! timer kept with its connection that rings **no later** than every
//! deadline it was armed for. It may ring earlier, at a deadline of a call
//! since answered: a deadline not yet passed then moves it. Calls with the
//! same timeout, one after the other, leave it where it is, so it costs
//! the runtime one timer per length of the timeout, not one per call.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::time::{Instant, Sleep};

/// See the [module](self).
#[derive(Default)]
pub(crate) struct Alarm(Option<Pin<Box<Sleep>>>);

impl Alarm {
    /// Makes the alarm ring no later than `deadline`.
    pub(crate) fn arm(&mut self, deadline: Instant) {
        match &mut self.0 {
            Some(sleep) if !sleep.is_elapsed() && sleep.deadline() <= deadline => {}
            Some(sleep) => sleep.as_mut().reset(deadline),
            None => self.0 = Some(Box::pin(tokio::time::sleep_until(deadline))),
        }
    }

    /// Ready once `deadline` has passed; the alarm must have been armed for
    /// it. A ring before it moves the alarm to it.
    pub(crate) fn poll_passed(&mut self, cx: &mut Context<'_>, deadline: Instant) -> Poll<()> {
        let sleep = self
            .0
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        loop {
            ready!(sleep.as_mut().poll(cx));
            if Instant::now() >= deadline {
                return Poll::Ready(());
            }
            sleep.as_mut().reset(deadline);
        }
    }

    /// Where the alarm is set: its deadline while it has not rung.
    #[cfg(test)]
    fn set_for(&self) -> Option<Instant> {
        self.0
            .as_ref()
            .filter(|sleep| !sleep.is_elapsed())
            .map(|sleep| sleep.deadline())
    }
}

#[cfg(test)]
mod tests {
    use std::future::poll_fn;
    use std::time::Duration;

    use super::*;

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap()
    }

    /// A later deadline leaves the alarm where it is; an earlier one, or
    /// one after it has rung, moves it.
    #[test]
    fn the_alarm_moves_only_for_an_earlier_deadline_or_once_rung() {
        runtime().block_on(async {
            let start = Instant::now();
            let mut alarm = Alarm::default();
            alarm.arm(start + Duration::from_secs(50));
            alarm.arm(start + Duration::from_secs(90));
            assert_eq!(alarm.set_for(), Some(start + Duration::from_secs(50)));
            let soon = start + Duration::from_millis(20);
            alarm.arm(soon);
            assert_eq!(alarm.set_for(), Some(soon));
            // The runtime fires every timer due before this sleep ends.
            tokio::time::sleep_until(soon + Duration::from_millis(20)).await;
            let later = Instant::now() + Duration::from_secs(60);
            alarm.arm(later);
            assert_eq!(alarm.set_for(), Some(later));
        });
    }

    /// Waiting for a deadline past an earlier ring ends at that deadline,
    /// not at the ring.
    #[test]
    fn a_ring_before_the_deadline_is_not_the_deadline() {
        runtime().block_on(async {
            let start = Instant::now();
            let mut alarm = Alarm::default();
            alarm.arm(start + Duration::from_millis(10));
            let deadline = start + Duration::from_millis(300);
            alarm.arm(deadline);
            poll_fn(|cx| alarm.poll_passed(cx, deadline)).await;
            assert!(Instant::now() >= deadline);
        });
    }

    /// A deadline already passed is passed at once.
    #[test]
    fn a_deadline_already_passed_is_passed_at_once() {
        runtime().block_on(async {
            let deadline = Instant::now();
            tokio::time::sleep(Duration::from_millis(10)).await;
            let mut alarm = Alarm::default();
            alarm.arm(deadline);
            let mut polled = 0;
            poll_fn(|cx| {
                polled += 1;
                alarm.poll_passed(cx, deadline)
            })
            .await;
            assert_eq!(polled, 1);
        });
    }
}
