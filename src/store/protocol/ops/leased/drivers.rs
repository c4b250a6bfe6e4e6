//! The lease operations of both drivers: each trait method runs its
//! operation through the driver's exchange.

use super::*;

impl<T: Target> LeaseStore for BlockingStore<T> {
    fn ack_and_lease(
        &self,
        keys: &LeaseKeys,
        tags: &[DeliveryTag],
        count: usize,
        policy: LeasePolicy,
    ) -> Result<(u64, Vec<Leased>), StoreError> {
        if count == 0 {
            return Ok((self.ack(keys, tags)?, Vec::new()));
        }
        self.run(ack_and_lease(self.shown(), keys, tags, count, policy))
    }

    fn blocking_lease(
        &self,
        keys: &LeaseKeys,
        count: usize,
        policy: LeasePolicy,
        timeout: Option<Duration>,
    ) -> Result<Vec<Leased>, StoreError> {
        self.run(blocking_lease(self.shown(), keys, count, policy, timeout))
    }

    fn ack(&self, keys: &LeaseKeys, tags: &[DeliveryTag]) -> Result<u64, StoreError> {
        self.run(ack(self.shown(), keys, tags))
    }

    fn nack(
        &self,
        keys: &LeaseKeys,
        tag: &DeliveryTag,
        delay: Duration,
        max_deliveries: u32,
    ) -> Result<Nacked, StoreError> {
        self.run(nack(self.shown(), keys, tag, delay, max_deliveries))
    }

    fn extend(
        &self,
        keys: &LeaseKeys,
        tag: &DeliveryTag,
        lease: Duration,
    ) -> Result<Option<SystemTime>, StoreError> {
        self.run(extend(self.shown(), keys, tag, lease))
    }

    fn release(&self, keys: &LeaseKeys, tags: &[DeliveryTag]) -> Result<u64, StoreError> {
        self.run(release(self.shown(), keys, tags))
    }

    fn dead_letter(
        &self,
        keys: &LeaseKeys,
        tag: &DeliveryTag,
        reason: DeadReason,
    ) -> Result<bool, StoreError> {
        self.run(dead_letter(self.shown(), keys, tag, &reason))
    }

    fn reclaim(&self, keys: &LeaseKeys, max_deliveries: u32) -> Result<u64, StoreError> {
        self.run(reclaim(self.shown(), keys, max_deliveries))
    }

    fn dead_letters(&self, keys: &LeaseKeys, max: usize) -> Result<Vec<DeadLetter>, StoreError> {
        self.run(dead_letters(self.shown(), keys, max))
    }

    fn requeue_dead(&self, keys: &LeaseKeys, pick: Pick<'_>) -> Result<u64, StoreError> {
        pick.check()?;
        self.run(requeue_dead(self.shown(), keys, pick))
    }

    fn purge_dead(&self, keys: &LeaseKeys, pick: Pick<'_>) -> Result<u64, StoreError> {
        pick.check()?;
        self.run(purge_dead(self.shown(), keys, pick))
    }

    fn lease_snapshot(&self, keys: &LeaseKeys) -> Result<LeaseSnapshot, StoreError> {
        self.run(snapshot(self.shown(), keys))
    }

    fn lease_stats(&self, keys: &LeaseKeys) -> Result<LeaseStats, StoreError> {
        self.run(stats(self.shown(), keys))
    }
}

/// What a cancelled leased receive leased is handed back at once, without
/// spending a delivery.
#[cfg(feature = "tokio")]
pub(super) fn hand_back<T: Target>(
    keys: &LeaseKeys,
) -> impl FnOnce(AsyncStore<T>, Vec<Leased>) -> std::pin::Pin<Box<dyn Future<Output = ()> + Send>>
+ Send
+ 'static {
    let keys = keys.clone();
    move |store, leased| {
        Box::pin(async move {
            let tags: Vec<DeliveryTag> = leased.into_iter().map(|leased| leased.tag).collect();
            let shown = store.shown().clone();
            let handed_back = store.run(release(&shown, &keys, &tags), None).await;
            crate::trace::event!(
                WARN,
                addr = %shown,
                list = %keys.list(),
                messages = tags.len(),
                handed_back = handed_back.is_ok(),
                "a cancelled leased receive had leased messages; they are handed back"
            );
            let _ = handed_back;
        })
    }
}

#[cfg(feature = "tokio")]
impl<T: Target> AsyncLeaseStore for AsyncStore<T> {
    async fn ack_and_lease(
        &self,
        keys: &LeaseKeys,
        tags: &[DeliveryTag],
        count: usize,
        policy: LeasePolicy,
    ) -> Result<(u64, Vec<Leased>), StoreError> {
        if count == 0 {
            return Ok((AsyncLeaseStore::ack(self, keys, tags).await?, Vec::new()));
        }
        let hand_back = hand_back(keys);
        let op = ack_and_lease(self.shown(), keys, tags, count, policy);
        self.receive(op, move |store, (_, leased)| hand_back(store, leased))
            .await
    }

    async fn blocking_lease(
        &self,
        keys: &LeaseKeys,
        count: usize,
        policy: LeasePolicy,
        timeout: Option<Duration>,
    ) -> Result<Vec<Leased>, StoreError> {
        let op = blocking_lease(self.shown(), keys, count, policy, timeout);
        self.receive(op, hand_back(keys)).await
    }

    async fn ack(&self, keys: &LeaseKeys, tags: &[DeliveryTag]) -> Result<u64, StoreError> {
        self.run(ack(self.shown(), keys, tags), None).await
    }

    async fn nack(
        &self,
        keys: &LeaseKeys,
        tag: &DeliveryTag,
        delay: Duration,
        max_deliveries: u32,
    ) -> Result<Nacked, StoreError> {
        self.run(nack(self.shown(), keys, tag, delay, max_deliveries), None)
            .await
    }

    async fn extend(
        &self,
        keys: &LeaseKeys,
        tag: &DeliveryTag,
        lease: Duration,
    ) -> Result<Option<SystemTime>, StoreError> {
        self.run(extend(self.shown(), keys, tag, lease), None).await
    }

    async fn release(&self, keys: &LeaseKeys, tags: &[DeliveryTag]) -> Result<u64, StoreError> {
        self.run(release(self.shown(), keys, tags), None).await
    }

    async fn dead_letter(
        &self,
        keys: &LeaseKeys,
        tag: &DeliveryTag,
        reason: DeadReason,
    ) -> Result<bool, StoreError> {
        self.run(dead_letter(self.shown(), keys, tag, &reason), None)
            .await
    }

    async fn reclaim(&self, keys: &LeaseKeys, max_deliveries: u32) -> Result<u64, StoreError> {
        self.run(reclaim(self.shown(), keys, max_deliveries), None)
            .await
    }

    async fn dead_letters(
        &self,
        keys: &LeaseKeys,
        max: usize,
    ) -> Result<Vec<DeadLetter>, StoreError> {
        self.run(dead_letters(self.shown(), keys, max), None).await
    }

    async fn requeue_dead(&self, keys: &LeaseKeys, pick: Pick<'_>) -> Result<u64, StoreError> {
        pick.check()?;
        self.run(requeue_dead(self.shown(), keys, pick), None).await
    }

    async fn purge_dead(&self, keys: &LeaseKeys, pick: Pick<'_>) -> Result<u64, StoreError> {
        pick.check()?;
        self.run(purge_dead(self.shown(), keys, pick), None).await
    }

    async fn lease_snapshot(&self, keys: &LeaseKeys) -> Result<LeaseSnapshot, StoreError> {
        self.run(snapshot(self.shown(), keys), None).await
    }

    async fn lease_stats(&self, keys: &LeaseKeys) -> Result<LeaseStats, StoreError> {
        self.run(stats(self.shown(), keys), None).await
    }
}
