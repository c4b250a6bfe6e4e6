//! A leased receive that waits: leases tried, and between tries the list
//! watched for a push or the next lease deadline.

use super::*;

/// The lease script; when it leased nothing, a wait on the list that
/// takes nothing (`BLMOVE` of the head onto itself), bounded by when a
/// pending message is due (and by [`LEASE_POLL`] while anything is
/// pending), then the script again.
pub(crate) struct BlockingLease {
    pub(crate) shown: Arc<str>,
    pub(crate) keys: LeaseKeys,
    pub(crate) count: usize,
    pub(crate) policy: LeasePolicy,
    pub(crate) deadline: Option<Instant>,
    pub(crate) waiting: bool,
}

impl Operation for BlockingLease {
    type Output = Vec<Leased>;

    fn next(&mut self, reply: Option<Reply>) -> Result<Next<Self::Output>, StoreError> {
        if self.count == 0 {
            return Ok(Next::Done(Vec::new()));
        }
        let look = |this: &Self| {
            Ok(Next::Call(lease_call(
                &this.keys,
                &[],
                this.count,
                this.policy,
            )))
        };
        let reply = match reply {
            None => return look(self),
            Some(_) if self.waiting => {
                self.waiting = false;
                return look(self);
            }
            Some(reply) => reading(&self.shown, reply, LeaseReply::read)?,
        };
        if !reply.leased.is_empty() {
            return Ok(Next::Done(reply.leased));
        }
        let left = self
            .deadline
            .map(|deadline| deadline.saturating_duration_since(Instant::now()));
        if left.is_some_and(|left| left.is_zero()) {
            return Ok(Next::Done(Vec::new()));
        }
        self.waiting = true;
        let mut wait =
            lease_wait(left, reply.next_due).map(|wait| wait.max(Duration::from_millis(1)));
        if reply.pending {
            wait = Some(wait.map_or(LEASE_POLL, |wait| wait.min(LEASE_POLL)));
        }
        Ok(Next::Call(wait_for_element(self.keys.list(), "LEFT", wait)))
    }

    fn stop(&mut self) -> Option<Self::Output> {
        Some(Vec::new())
    }
}

pub(crate) fn blocking_lease(
    shown: &Arc<str>,
    keys: &LeaseKeys,
    count: usize,
    policy: LeasePolicy,
    timeout: Option<Duration>,
) -> BlockingLease {
    BlockingLease {
        shown: shown.clone(),
        keys: keys.clone(),
        count,
        policy,
        deadline: wait_limit(timeout).and_then(|timeout| Instant::now().checked_add(timeout)),
        waiting: false,
    }
}
