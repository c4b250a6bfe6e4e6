//! Leased receive: at-least-once delivery with ack, nack, extend, reclaim
//! and dead letters, on any [`LeaseStore`].

use std::time::Duration;

use serde_json::Value;

use super::{Chan, Harness, unique};
use crate::store::DeadReason;
use crate::store::{LeaseKeys, LeasePolicy};
use crate::{
    ChannelError, ChannelOptions, LeaseStore, ListStore, Nacked, Peer, RedisChannel, StoreError,
};

/// The lease the scenarios take: long enough for a few round trips, short
/// enough to wait out on a real server.
const LEASE: Duration = Duration::from_millis(800);

/// More than [`LEASE`]: after this, a lease taken before has expired.
const PAST_LEASE: Duration = Duration::from_millis(900);

/// Both ends of a new channel under `prefix`, the receiving one with
/// `max_deliveries`.
fn lease_pair<B: Harness>(backend: &B, prefix: &str, max_deliveries: u32) -> (Chan<B>, Chan<B>)
where
    B::Store: LeaseStore,
{
    let name = unique(prefix);
    let options = ChannelOptions {
        max_deliveries,
        ..Default::default()
    };
    let client = RedisChannel::new(backend.store(), &name, Peer::Client).unwrap();
    let server = RedisChannel::with_options(backend.store(), &name, Peer::Server, options).unwrap();
    (client, server)
}

/// Nothing is left in flight, waiting or dead.
fn settled<B: Harness>(server: &Chan<B>) -> bool
where
    B::Store: LeaseStore,
{
    let snapshot = server.lease_snapshot().unwrap();
    snapshot.in_flight.is_empty() && snapshot.retrying.is_empty() && snapshot.dead.is_empty()
}

/// Scenario: an acked message is gone for good; one whose lease runs out
/// comes back with its attempt raised, and the stale delivery can no
/// longer settle it.
pub fn leased_messages_are_acked_or_delivered_again<B: Harness>(backend: &B)
where
    B::Store: LeaseStore,
{
    let (client, server) = lease_pair(backend, "/lease", 5);
    assert!(server.lease_msg::<u32>(LEASE).unwrap().is_none());
    client.send_msgs([1, 2]).unwrap();
    let first = server.lease_msg::<u32>(LEASE).unwrap().unwrap();
    assert_eq!((*first.msg(), first.attempt()), (1, 1));
    assert!(server.ack(&first).unwrap());
    assert!(!server.ack(&first).unwrap(), "acked twice");

    let second = server.lease_msg::<u32>(LEASE).unwrap().unwrap();
    assert_eq!((*second.msg(), second.attempt()), (2, 1));
    assert!(
        server.lease_msg::<u32>(LEASE).unwrap().is_none(),
        "2 is leased"
    );
    assert_eq!(server.lease_snapshot().unwrap().in_flight.len(), 1);
    backend.advance(PAST_LEASE);
    let again = server.lease_msg::<u32>(LEASE).unwrap().unwrap();
    assert_eq!((*again.msg(), again.attempt()), (2, 2));
    assert_eq!(again.tag().id(), second.tag().id(), "the same message");
    assert!(again.deadline() > second.deadline());
    assert!(!server.ack(&second).unwrap(), "the stale delivery");
    assert_eq!(server.lease_snapshot().unwrap().in_flight.len(), 1);
    assert!(server.ack(&again).unwrap());
    assert!(server.lease_msg::<u32>(LEASE).unwrap().is_none());
    assert!(settled::<B>(&server));
}

/// Scenario: a nack delivers the message again, at once or after a delay;
/// after `max_deliveries` it is a dead letter, which can be read, sent
/// again, and purged.
pub fn nacked_messages_come_back_then_become_dead_letters<B: Harness>(backend: &B)
where
    B::Store: LeaseStore,
{
    let (client, server) = lease_pair(backend, "/nack", 3);
    client.send_msg("job").unwrap();
    let first = server.lease_msg::<String>(LEASE).unwrap().unwrap();
    assert_eq!(
        server.nack(&first, Duration::ZERO).unwrap(),
        Nacked::Retrying
    );
    assert_eq!(
        server.nack(&first, Duration::ZERO).unwrap(),
        Nacked::NotHeld
    );
    let second = server.lease_msg::<String>(LEASE).unwrap().unwrap();
    assert_eq!(second.attempt(), 2);
    assert_eq!(server.nack(&second, PAST_LEASE).unwrap(), Nacked::Retrying);
    assert!(
        server.lease_msg::<String>(LEASE).unwrap().is_none(),
        "not due before its delay"
    );
    assert_eq!(server.lease_snapshot().unwrap().retrying.len(), 1);
    backend.advance(PAST_LEASE);
    let third = server.lease_msg::<String>(LEASE).unwrap().unwrap();
    assert_eq!((third.msg().as_str(), third.attempt()), ("job", 3));
    assert_eq!(
        server.nack(&third, Duration::ZERO).unwrap(),
        Nacked::DeadLettered
    );
    assert!(server.lease_msg::<String>(LEASE).unwrap().is_none());
    let dead = server.dead_letters(10).unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].body, b"\"job\"");
    assert_eq!(
        (dead[0].deliveries, &dead[0].reason),
        (3, &DeadReason::Nacked)
    );
    assert_eq!(dead[0].message_id, first.tag().id(), "the message's own id");
    assert!(server.dead_letters(0).unwrap().is_empty());

    assert_eq!(server.requeue_dead(10).unwrap(), 1);
    assert!(server.dead_letters(10).unwrap().is_empty());
    assert_eq!(server.peek_msg::<String>().unwrap().as_deref(), Some("job"));
    let requeued = server.lease_msg::<String>(LEASE).unwrap().unwrap();
    assert_eq!(requeued.attempt(), 1, "a requeued dead letter starts over");
    assert_eq!(
        server.nack(&requeued, Duration::ZERO).unwrap(),
        Nacked::Retrying
    );
    for _ in 0..2 {
        let delivery = server.lease_msg::<String>(LEASE).unwrap().unwrap();
        server.nack(&delivery, Duration::ZERO).unwrap();
    }
    assert_eq!(server.dead_letters(10).unwrap().len(), 1);
    assert_eq!(server.purge_dead().unwrap(), 1);
    assert_eq!(server.purge_dead().unwrap(), 0);
    assert!(settled::<B>(&server));
}

/// Scenario: expired leases are reclaimed by the next leased receive or by
/// `reclaim`, and go to the dead letters after `max_deliveries`.
pub fn expired_leases_are_reclaimed_then_dead_lettered<B: Harness>(backend: &B)
where
    B::Store: LeaseStore,
{
    let (client, server) = lease_pair(backend, "/expire", 2);
    client.send_msgs([1, 2, 3]).unwrap();
    assert_eq!(server.lease_msgs::<u32>(3, LEASE).unwrap().len(), 3);
    assert_eq!(server.reclaim().unwrap(), 0, "nothing expired yet");
    backend.advance(PAST_LEASE);
    assert_eq!(server.reclaim().unwrap(), 3);
    let snapshot = server.lease_snapshot().unwrap();
    assert_eq!((snapshot.in_flight.len(), snapshot.retrying.len()), (0, 3));
    assert!(snapshot.retrying.iter().all(|entry| entry.tag.attempt == 1));
    let again = server.lease_msgs::<u32>(10, LEASE).unwrap();
    let attempts: Vec<u32> = again
        .iter()
        .map(|d| d.as_ref().unwrap().attempt())
        .collect();
    assert_eq!(attempts, [2, 2, 2]);
    let mut numbers: Vec<u32> = again.iter().map(|d| *d.as_ref().unwrap().msg()).collect();
    numbers.sort_unstable();
    assert_eq!(numbers, [1, 2, 3]);
    backend.advance(PAST_LEASE);
    // The second lease ran out too: the next receive reclaims them all
    // into the dead letters, and finds nothing to deliver.
    assert!(server.lease_msg::<u32>(LEASE).unwrap().is_none());
    let dead = server.dead_letters(10).unwrap();
    assert!(
        dead.iter()
            .all(|letter| letter.reason == DeadReason::Expired && letter.deliveries == 2),
        "{dead:?}"
    );
    let mut bodies: Vec<Vec<u8>> = dead.into_iter().map(|letter| letter.body).collect();
    bodies.sort();
    assert_eq!(bodies, [b"1".to_vec(), b"2".to_vec(), b"3".to_vec()]);
    assert_eq!(server.purge_dead().unwrap(), 3);
    assert!(settled::<B>(&server));
}

/// Scenario: `extend` keeps a lease from running out; it fails, changing
/// nothing, once the lease was reclaimed.
pub fn extend_holds_a_lease_longer<B: Harness>(backend: &B)
where
    B::Store: LeaseStore,
{
    let (client, server) = lease_pair(backend, "/extend", 5);
    client.send_msg(&7).unwrap();
    let mut delivery = server.lease_msg::<u32>(LEASE).unwrap().unwrap();
    let first_deadline = delivery.deadline();
    assert!(
        server
            .extend(&mut delivery, Duration::from_secs(60))
            .unwrap()
    );
    assert!(delivery.deadline() > first_deadline);
    backend.advance(PAST_LEASE);
    assert!(
        server.lease_msg::<u32>(LEASE).unwrap().is_none(),
        "still held"
    );
    assert_eq!(server.reclaim().unwrap(), 0);
    // Shortened, it runs out and is reclaimed: extending it then fails.
    assert!(
        server
            .extend(&mut delivery, Duration::from_millis(1))
            .unwrap()
    );
    backend.advance(Duration::from_millis(100));
    assert_eq!(server.reclaim().unwrap(), 1);
    let held = delivery.deadline();
    assert!(!server.extend(&mut delivery, LEASE).unwrap());
    assert_eq!(delivery.deadline(), held, "unchanged");
    let again = server.lease_msg::<u32>(LEASE).unwrap().unwrap();
    assert_eq!(again.attempt(), 2);
    assert!(server.ack(&again).unwrap());
    assert!(settled::<B>(&server));
}

/// Scenario: a leased batch takes up to `max` in order, and one ack
/// settles them all; an undecodable message of a batch is a dead letter
/// holding its bytes, in its place.
pub fn leased_batches_are_taken_and_acked_at_once<B: Harness>(backend: &B)
where
    B::Store: LeaseStore,
{
    let (client, server) = lease_pair(backend, "/lease-batch", 5);
    assert!(server.lease_msgs::<u32>(0, LEASE).unwrap().is_empty());
    client.send_msgs(1..=5).unwrap();
    let batch: Vec<_> = server
        .lease_msgs::<u32>(3, LEASE)
        .unwrap()
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let numbers: Vec<u32> = batch.iter().map(|delivery| *delivery.msg()).collect();
    assert_eq!(numbers, [1, 2, 3]);
    assert_eq!(server.ack_all(&batch).unwrap(), 3);
    assert_eq!(server.ack_all(&batch).unwrap(), 0);
    assert_eq!(server.ack_all(&[] as &[crate::Delivery<u32>]).unwrap(), 0);
    let rest = server.lease_msgs::<u32>(usize::MAX, LEASE).unwrap();
    assert_eq!(rest.len(), 2);

    let raw: [&[u8]; 3] = [b"8", b"not json", b"9"];
    backend.store().push(client.send_key(), &raw, None).unwrap();
    let batch = server.lease_msgs::<Value>(3, LEASE).unwrap();
    assert_eq!(batch[0].as_ref().unwrap().msg(), &Value::from(8));
    assert_eq!(batch[1].as_ref().unwrap_err().raw(), b"not json");
    assert_eq!(batch[2].as_ref().unwrap().msg(), &Value::from(9));
    let dead = server.dead_letters(10).unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].body, b"not json");
    assert_eq!(
        (dead[0].deliveries, &dead[0].reason),
        (1, &DeadReason::Undecodable)
    );
    let single = server.lease_msg::<Value>(LEASE).unwrap();
    assert!(single.is_none());
    backend
        .store()
        .push(client.send_key(), &[b"{"], None)
        .unwrap();
    match server.lease_msg::<Value>(LEASE) {
        Err(ChannelError::Decode(err)) => assert_eq!(err.raw(), b"{"),
        other => panic!("expected a decode error, got {other:?}"),
    }
    assert_eq!(server.dead_letters(10).unwrap().len(), 2);
    let snapshot = server.lease_snapshot().unwrap();
    assert_eq!(
        snapshot.in_flight.len(),
        4,
        "2, 8 and 9 and the rest: {snapshot:?}"
    );
}

/// Scenario: a blocking leased receive waits for a send, and for a lease
/// to run out, and times out empty.
pub fn blocking_leased_receive_waits_for_sends_and_expiries<B: Harness>(backend: &B)
where
    B::Store: LeaseStore,
{
    let (client, server) = lease_pair(backend, "/blease", 5);
    let nothing = backend.blocking(|| server.blease_msg::<u32>(LEASE, Duration::from_millis(200)));
    assert!(nothing.unwrap().is_none());
    std::thread::scope(|scope| {
        let waiting = scope.spawn(|| {
            backend.blocking(|| server.blease_msg::<u32>(LEASE, Duration::from_secs(10)))
        });
        std::thread::sleep(Duration::from_millis(100));
        client.send_msg(&1).unwrap();
        let delivery = waiting.join().unwrap().unwrap().unwrap();
        assert_eq!((*delivery.msg(), delivery.attempt()), (1, 1));
    });
    // Nobody sends: the wait ends when the lease above runs out.
    let again = backend
        .blocking(|| server.blease_msgs::<u32>(10, LEASE, Duration::from_secs(10)))
        .unwrap();
    assert_eq!(again.len(), 1);
    let again = again.into_iter().next().unwrap().unwrap();
    assert_eq!((*again.msg(), again.attempt()), (1, 2));
    assert!(server.ack(&again).unwrap());
}

/// Scenario: any `Duration` works. A blocking leased receive with a huge
/// timeout (up to `Duration::MAX`, through the channel and the store) takes
/// a message already there at once; a nack with a delay of `Duration::MAX`
/// (the channel's, and the store's own) leaves the message waiting for
/// decades, not deliverable now. Nothing panics or overflows.
pub fn huge_lease_timeouts_and_delays_never_overflow<B: Harness>(backend: &B)
where
    B::Store: LeaseStore,
{
    let (client, server) = lease_pair(backend, "/lease-huge", 5);
    let store = backend.store();
    let keys = server.lease_keys().unwrap().clone();
    let policy = LeasePolicy {
        lease: LEASE,
        max_deliveries: 5,
    };
    for timeout in [
        Duration::MAX,
        Duration::from_secs(u64::MAX / 2),
        Duration::from_secs(99 * 365 * 24 * 60 * 60),
    ] {
        client.send_msgs([1, 2]).unwrap();
        let first = backend
            .blocking(|| server.blease_msg::<u32>(LEASE, timeout))
            .unwrap()
            .unwrap();
        assert_eq!((*first.msg(), first.attempt()), (1, 1), "{timeout:?}");
        let second = backend
            .blocking(|| store.blocking_lease(&keys, 1, policy, Some(timeout)))
            .unwrap();
        assert_eq!(second.len(), 1, "{timeout:?}");
        assert_eq!(second[0].body, b"2", "{timeout:?}");
        assert!(server.ack(&first).unwrap());
        assert_eq!(store.ack(&keys, &[second[0].tag.clone()]).unwrap(), 1);
    }

    // Decades from now: 50 years, well below what either delay asks for.
    let decades = Duration::from_secs(50 * 365 * 24 * 60 * 60);
    client.send_msg(&3).unwrap();
    let delivery = server.lease_msg::<u32>(LEASE).unwrap().unwrap();
    assert_eq!(
        server.nack(&delivery, Duration::MAX).unwrap(),
        Nacked::Retrying
    );
    client.send_msg(&4).unwrap();
    let leased = store.lease(&keys, 1, policy).unwrap();
    assert_eq!(leased.len(), 1);
    assert_eq!(leased[0].body, b"4");
    assert_eq!(
        store
            .nack(&keys, &leased[0].tag, Duration::MAX, policy.max_deliveries)
            .unwrap(),
        Nacked::Retrying
    );
    backend.advance(PAST_LEASE);
    assert!(
        server.lease_msg::<u32>(LEASE).unwrap().is_none(),
        "not due for decades"
    );
    assert!(store.lease(&keys, 1, policy).unwrap().is_empty());
    let snapshot = server.lease_snapshot().unwrap();
    assert!(snapshot.in_flight.is_empty(), "{snapshot:?}");
    assert_eq!(snapshot.retrying.len(), 2, "{snapshot:?}");
    for entry in &snapshot.retrying {
        assert!(entry.at > delivery.deadline() + decades, "{snapshot:?}");
    }
    // Waiting, both are still held by their delivery.
    assert!(server.ack(&delivery).unwrap());
    assert_eq!(store.ack(&keys, &[leased[0].tag.clone()]).unwrap(), 1);
    assert!(settled::<B>(&server));
}

/// Scenario: leased and plain receivers share the list as the Python
/// original writes it; the lease keys are named as documented and are in
/// the list's cluster slot, with or without a hash tag in the name.
pub fn leases_keep_the_wire_format_and_documented_keys<B: Harness>(backend: &B)
where
    B::Store: LeaseStore,
{
    for prefix in ["/wire", "/{tagged}/wire"] {
        let (client, server) = lease_pair(backend, prefix, 5);
        let store = backend.store();
        store
            .push(client.send_key(), &[b"{\"a\": 1}", b"[1, 2]"], None)
            .unwrap();
        let leased = server.lease_msg::<Value>(LEASE).unwrap().unwrap();
        assert_eq!(leased.msg(), &serde_json::json!({"a": 1}));
        assert_eq!(
            server.recv_msg::<Value>().unwrap(),
            Some(serde_json::json!([1, 2])),
            "a plain receiver beside a leased one"
        );
        let keys = LeaseKeys::for_list(server.recv_key()).unwrap();
        assert_eq!(server.lease_keys().unwrap(), &keys);
        let mut found = store
            .scan(&crate::store::glob::escape(keys.pending()))
            .unwrap();
        found.extend(
            store
                .scan(&crate::store::glob::escape(keys.bodies()))
                .unwrap(),
        );
        found.sort();
        let mut expected = vec![keys.pending().to_owned(), keys.bodies().to_owned()];
        expected.sort();
        assert_eq!(found, expected);
        for key in [keys.pending(), keys.bodies(), keys.dead()] {
            assert_eq!(
                crate::ChannelName::from_list_key(key),
                None,
                "{key} is no channel list"
            );
        }
        assert!(server.ack(&leased).unwrap());
        assert!(
            store
                .scan(&crate::store::glob::escape(keys.pending()))
                .unwrap()
                .is_empty()
        );
    }
}

/// Scenario: lease operations refuse keys of another type with WRONGTYPE
/// and change nothing; bad leases, counts and names are refused before
/// anything is sent.
pub fn lease_operations_refuse_bad_input_and_foreign_keys<B: Harness>(backend: &B)
where
    B::Store: LeaseStore,
{
    let (client, server) = lease_pair(backend, "/lease-hostile", 5);
    client.send_msg(&1).unwrap();
    let keys = server.lease_keys().unwrap().clone();
    for foreign in [keys.list(), keys.pending(), keys.bodies(), keys.dead()] {
        backend.set_string(foreign, "theirs");
        let err = server.lease_msg::<u32>(LEASE).unwrap_err();
        assert!(
            matches!(&err, ChannelError::Store(err @ StoreError::Command { .. }) if err.is_wrong_type()),
            "{foreign}: {err}"
        );
        // A batch (on Redis, a transaction whose script refuses): the same.
        let err = server.lease_msgs::<u32>(2, LEASE).unwrap_err();
        assert!(
            matches!(&err, ChannelError::Store(err @ StoreError::Command { .. }) if err.is_wrong_type()),
            "{foreign}, a batch: {err}"
        );
        assert_eq!(backend.get_string(foreign).as_deref(), Some("theirs"));
        backend.delete(foreign);
        if foreign == keys.list() {
            client.send_msg(&1).unwrap();
        }
        assert_eq!(server.peek_msg::<u32>().unwrap(), Some(1), "nothing taken");
    }
    let delivery = server.lease_msg::<u32>(LEASE).unwrap().unwrap();
    // The dead letters' stream in the way: what could write it is refused.
    backend.set_string(keys.dead(), "theirs");
    let wrong = |err: ChannelError| err.to_string().contains("WRONGTYPE");
    assert!(wrong(server.nack(&delivery, Duration::ZERO).unwrap_err()));
    assert!(wrong(server.reject(&delivery).unwrap_err()));
    assert!(wrong(server.requeue_dead(1).unwrap_err()));
    assert!(wrong(server.dead_letters(1).unwrap_err()));
    backend.delete(keys.dead());
    let mut held = delivery.clone();
    assert!(
        server.extend(&mut held, LEASE).unwrap(),
        "still in flight after the refusals"
    );
    // The records' hash overwritten (SET replaces it, records and all):
    // refused while it is a string; once deleted, the delivery is gone
    // and its orphaned entry in pending is dropped by the next lease.
    backend.set_string(keys.bodies(), "theirs");
    assert!(wrong(server.ack(&delivery).unwrap_err()));
    assert!(wrong(server.lease_msg::<u32>(LEASE).unwrap_err()));
    backend.delete(keys.bodies());
    assert!(
        !server.ack(&delivery).unwrap(),
        "its record went with the hash"
    );
    client.send_msg(&2).unwrap();
    let next = server.lease_msg::<u32>(LEASE).unwrap().unwrap();
    assert_eq!(*next.msg(), 2);
    assert!(server.ack(&next).unwrap());
    assert_eq!(
        server.lease_stats().unwrap(),
        crate::store::LeaseStats::default()
    );

    let invalid =
        |result: Result<_, ChannelError>| matches!(result, Err(ChannelError::InvalidOption(_)));
    assert!(invalid(server.lease_msg::<u32>(Duration::ZERO).map(drop)));
    assert!(invalid(server.lease_msg::<u32>(Duration::MAX).map(drop)));
    assert!(invalid(
        server.lease_msgs::<u32>(3, Duration::ZERO).map(drop)
    ));
    let options = ChannelOptions {
        max_deliveries: 0,
        ..Default::default()
    };
    assert!(RedisChannel::with_options(backend.store(), "/x", Peer::Server, options).is_err());
    // A name whose lease keys could not share its cluster slot: plain
    // receives work, leased ones are refused before anything is sent.
    let odd = RedisChannel::new(backend.store(), unique("/odd}name"), Peer::Server).unwrap();
    assert!(odd.recv_msg::<u32>().unwrap().is_none());
    assert!(matches!(
        odd.lease_msg::<u32>(LEASE),
        Err(ChannelError::InvalidName { .. })
    ));
}
