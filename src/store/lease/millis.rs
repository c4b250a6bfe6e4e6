//! The lease state's numbers: deadlines in whole milliseconds since 1970,
//! the waits computed from them, the largest batch, and unit ids.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::store::{WAITS_FOREVER, ttl_millis};

/// The largest batch one leased receive hands out: a receive asking for
/// more gets this many.
pub(crate) const MAX_LEASE_BATCH: usize = 4000;

/// Milliseconds of a lease, a delay or a deadline as the stores count them:
/// rounded up, at least 1 for a lease, at most 100 years.
pub(crate) fn lease_millis(duration: Duration) -> u64 {
    ttl_millis(duration.min(WAITS_FOREVER))
}

/// How long a blocking leased receive that found nothing waits before it
/// tries again: what is `left` of its timeout (`None`: no limit), but no
/// longer than until the first pending message is due, `next_due`
/// milliseconds from now (at least 1 ms: one due now still waits a moment,
/// never not at all). `None`: no limit, until a message is sent.
pub(crate) fn lease_wait(left: Option<Duration>, next_due: Option<u64>) -> Option<Duration> {
    let due = next_due.map(|due| Duration::from_millis(due.max(1)));
    match (left, due) {
        (Some(left), Some(due)) => Some(left.min(due)),
        (left, due) => left.or(due),
    }
}

/// Milliseconds since 1970 of `time` (0 before it).
pub(crate) fn epoch_millis(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |since| {
        u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
    })
}

/// The time `millis` after 1970.
pub(crate) fn from_epoch_millis(millis: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(millis)
}

/// A fresh id for one leased receive (its unit): 16 characters of
/// `[0-9A-Za-z]`, 95 bits from keyed SipHash over a process-wide counter,
/// the process id and the time, with keys std draws at random per
/// process: they never repeat, across processes too, but with negligible
/// odds. Its messages' ids are this id, `-`, and their place in it.
pub(crate) fn new_unit_id() -> String {
    const DIGITS: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let count = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_nanos());
    let half = |salt: u8| {
        let mut hasher = RandomState::new().build_hasher();
        hasher.write_u8(salt);
        hasher.write_u64(count);
        hasher.write_u32(std::process::id());
        hasher.write_u128(nanos);
        hasher.finish()
    };
    let mut value = (u128::from(half(0)) << 64) | u128::from(half(1));
    (0..16)
        .map(|_| {
            let digit = DIGITS[(value % 62) as usize];
            value /= 62;
            char::from(digit)
        })
        .collect()
}

/// The id of the message in place `index` of `unit` that has none of its
/// own (a first delivery): `unit-index`.
pub(crate) fn place_id(unit: &str, index: u32) -> String {
    format!("{unit}-{index}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::lease::DeliveryTag;

    #[test]
    fn a_leased_receive_waits_for_its_timeout_or_the_next_due_message() {
        let ms = Duration::from_millis;
        assert_eq!(lease_wait(None, None), None);
        assert_eq!(lease_wait(Some(ms(50)), None), Some(ms(50)));
        assert_eq!(lease_wait(None, Some(30)), Some(ms(30)));
        assert_eq!(lease_wait(Some(ms(50)), Some(30)), Some(ms(30)));
        assert_eq!(lease_wait(Some(ms(20)), Some(30)), Some(ms(20)));
        assert_eq!(lease_wait(None, Some(0)), Some(ms(1)), "due now");
        assert_eq!(
            lease_wait(Some(Duration::MAX), Some(u64::MAX)),
            Some(ms(u64::MAX))
        );
    }

    #[test]
    fn unit_ids_do_not_repeat() {
        let ids: std::collections::HashSet<String> = (0..10_000).map(|_| new_unit_id()).collect();
        assert_eq!(ids.len(), 10_000);
        assert!(
            ids.iter()
                .all(|id| id.len() == 16 && id.bytes().all(|b| b.is_ascii_alphanumeric()))
        );
    }

    #[test]
    fn a_first_delivery_is_named_by_its_unit_and_place() {
        for index in [0, 1, 9, 10, 99, 100, 4_000_000_000, u32::MAX] {
            assert_eq!(place_id("Ab3", index), format!("Ab3-{index}"));
        }
        // A tag writes that id when asked, and is the same tag as one
        // given it.
        let lazy = DeliveryTag::new(None, 2, "Ab3".into(), 7);
        let given = DeliveryTag::new(Some("Ab3-7".into()), 2, "Ab3".into(), 7);
        let hasher = RandomState::new();
        assert_eq!(hasher.hash_one(lazy.clone()), hasher.hash_one(&given));
        assert_eq!(lazy, given);
        assert_eq!(lazy.id(), "Ab3-7");
        assert!(format!("{lazy:?}").contains("\"Ab3-7\""));
        let other = DeliveryTag::new(Some("X-1".into()), 2, "Ab3".into(), 7);
        assert_ne!(other, given, "a message of its own id");
    }
}
