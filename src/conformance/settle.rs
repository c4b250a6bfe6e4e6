//! Settling leased messages other than by ack: handing them back
//! (release), refusing them for good (reject), a nack that wakes a
//! blocked receive; and the operator's side: dead letters picked by id,
//! counts of every state.

use std::time::{Duration, Instant, SystemTime};

use super::{Chan, Harness, ttl_pair, unique, with_a_ttl_long_enough};
use crate::store::{DeadReason, LeaseStats};
use crate::{
    ChannelOptions, Delivery, LeaseStore, ListStore, Nacked, Peer, RedisChannel, StoreError,
};

/// Long enough never to run out while a scenario runs.
const LONG: Duration = Duration::from_secs(600);

fn pair<B: Harness>(backend: &B, prefix: &str, max_deliveries: u32) -> (Chan<B>, Chan<B>)
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

fn lease_all<B: Harness>(server: &Chan<B>, count: usize) -> Vec<Delivery<u32>>
where
    B::Store: LeaseStore,
{
    server
        .lease_msgs::<u32>(count, LONG)
        .unwrap()
        .into_iter()
        .map(Result::unwrap)
        .collect()
}

/// The lists that hold the bodies of `server`'s batches in flight.
fn unit_lists<B: Harness>(backend: &B, server: &Chan<B>) -> Vec<String>
where
    B::Store: LeaseStore,
{
    let stem = server.lease_keys().unwrap().unit_list("");
    let mut found = backend
        .store()
        .scan(&format!("{}*", crate::store::glob::escape(&stem)))
        .unwrap();
    found.sort();
    found
}

/// Scenario: acking a whole batch counts what it still held: a message
/// acked before counts once, and one whose lease was extended alone (held
/// apart from its batch since) is acked with the rest; nothing stays in
/// flight, and the lists that held the batches' bodies are gone.
pub fn acking_a_whole_batch_counts_what_it_still_held<B: Harness>(backend: &B)
where
    B::Store: LeaseStore,
{
    let (client, server) = pair(backend, "/ack-whole", 5);
    client.send_msgs(1..=4u32).unwrap();
    let batch = lease_all::<B>(&server, 4);
    assert_eq!(
        unit_lists(backend, &server),
        [server.lease_keys().unwrap().unit_list(&batch[0].tag().unit)],
        "a batch keeps its bodies in a list of its own"
    );
    assert!(server.ack(&batch[0]).unwrap());
    assert_eq!(server.ack_all(&batch).unwrap(), 3);
    assert_eq!(server.ack_all(&batch).unwrap(), 0);
    assert_eq!(server.lease_stats().unwrap().in_flight, 0);

    client.send_msgs(5..=7u32).unwrap();
    let mut batch = lease_all::<B>(&server, 3);
    assert!(server.extend(&mut batch[1], LONG).unwrap());
    assert_eq!(server.ack_all(&batch).unwrap(), 3);
    assert_eq!(server.ack_all(&batch[1..2]).unwrap(), 0);
    let stats = server.lease_stats().unwrap();
    assert_eq!((stats.in_flight, stats.retrying), (0, 0));
    assert!(server.lease_msgs::<u32>(10, LONG).unwrap().is_empty());
    assert_eq!(unit_lists(backend, &server), [""; 0]);
}

/// Scenario: a batch that takes the whole of a channel's list, which its
/// sender gave a TTL, keeps its messages past that TTL: in flight, handed
/// back and leased again, every body is there.
pub fn a_batch_outlives_the_ttl_of_the_list_it_emptied<B: Harness>(backend: &B)
where
    B::Store: LeaseStore,
{
    // A real store's steps take real time: a batch that came a TTL or more
    // after the send began says nothing (a machine too busy to tell). A
    // send that sets no TTL, or a lease that misses messages, fails the
    // first time.
    let ((server, batch), ttl) =
        with_a_ttl_long_enough(Duration::from_millis(500), Duration::from_secs(4), |ttl| {
            let (client, server) = ttl_pair(backend, "/ttl-batch", ttl);
            let sent = Instant::now();
            client.send_msgs(1..=3u32).unwrap();
            let kept = backend.ttl(client.send_key()).is_some();
            let batch = lease_all::<B>(&server, 10);
            if kept && batch.len() == 3 {
                return Ok((server, batch));
            }
            let took = sent.elapsed();
            server.ack_all(&batch).unwrap();
            Err((
                took,
                format!(
                    "the send set a TTL ({kept}) and the batch took all 3 ({})",
                    batch.len()
                ),
            ))
        });
    for list in unit_lists(backend, &server) {
        assert_eq!(backend.ttl(&list), None, "{list}");
    }
    backend.advance(ttl * 2);
    assert_eq!(server.release_all(&batch).unwrap(), 3);
    let again = lease_all::<B>(&server, 10);
    let got: Vec<u32> = again.iter().map(|delivery| *delivery.msg()).collect();
    assert_eq!(got, [1, 2, 3]);
    assert_eq!(server.ack_all(&again).unwrap(), 3);
    assert_eq!(unit_lists(backend, &server), [""; 0]);
}

/// Scenario: released deliveries come back first, before the list's
/// head, with the same ids and attempts (a delivery nobody processed
/// spends none of `max_deliveries`); a stale release settles nothing.
pub fn released_messages_come_back_first_without_spending_a_delivery<B: Harness>(backend: &B)
where
    B::Store: LeaseStore,
{
    let (client, server) = pair(backend, "/release", 1);
    client.send_msgs(1..=4).unwrap();
    let batch = lease_all::<B>(&server, 3);
    assert!(server.ack(&batch[1]).unwrap());
    // 1 and 3 are still held; 2 was acked: it is not handed back.
    assert_eq!(server.release_all(&batch).unwrap(), 2);
    assert_eq!(server.release_all(&batch).unwrap(), 0, "released twice");
    let stats = server.lease_stats().unwrap();
    assert_eq!((stats.depth, stats.in_flight, stats.retrying), (1, 0, 2));
    let again = lease_all::<B>(&server, 10);
    let got: Vec<(u32, u32)> = again.iter().map(|d| (*d.msg(), d.attempt())).collect();
    assert_eq!(
        got,
        [(1, 1), (3, 1), (4, 1)],
        "released first, then the list"
    );
    assert_eq!(again[0].tag().id(), batch[0].tag().id(), "the same message");
    assert_eq!(again[1].tag().id(), batch[2].tag().id());
    assert!(
        !server.ack(&batch[0]).unwrap(),
        "the released delivery is stale"
    );
    // max_deliveries is 1: released, a message was never spent; a nack
    // of this, its one delivery, buries it.
    assert_eq!(
        server.nack(&again[0], Duration::ZERO).unwrap(),
        Nacked::DeadLettered
    );
    assert_eq!(server.ack_all(&again).unwrap(), 2);
    let dead = server.dead_letters(usize::MAX).unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].body, b"1", "the body a batch of redeliveries held");
    assert_eq!(unit_lists(backend, &server), [""; 0]);
}

/// Scenario: a rejected delivery is a dead letter at once, whatever its
/// deliveries, with the reason `Refused`; a stale or repeated reject
/// does nothing.
pub fn rejected_messages_are_dead_letters_at_once<B: Harness>(backend: &B)
where
    B::Store: LeaseStore,
{
    let (client, server) = pair(backend, "/reject", 5);
    client.send_msgs([7, 8]).unwrap();
    let batch = lease_all::<B>(&server, 2);
    assert!(server.reject(&batch[0]).unwrap());
    assert!(!server.reject(&batch[0]).unwrap(), "rejected twice");
    assert!(!server.ack(&batch[0]).unwrap(), "a dead letter is not held");
    let dead = server.dead_letters(usize::MAX).unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].body, b"7");
    assert_eq!(dead[0].message_id, batch[0].tag().id());
    assert_eq!(
        (dead[0].deliveries, &dead[0].reason),
        (1, &DeadReason::Refused)
    );
    let stats = server.lease_stats().unwrap();
    assert_eq!((stats.in_flight, stats.dead), (1, 1));
    assert!(
        server.ack(&batch[1]).unwrap(),
        "its batch mate is still held"
    );
}

/// Scenario: a nack makes a message due at once for a receive blocked
/// while another consumer held it: the waiting receive takes it long
/// before the first lease would have run out.
pub fn a_nack_wakes_a_blocked_leased_receive<B: Harness>(backend: &B)
where
    B::Store: LeaseStore,
{
    let (client, server) = pair(backend, "/nack-wakes", 5);
    client.send_msg(&5).unwrap();
    let held = server.lease_msg::<u32>(LONG).unwrap().unwrap();
    std::thread::scope(|scope| {
        let waiting = scope.spawn(|| {
            backend.blocking(|| server.blease_msg::<u32>(LONG, Duration::from_secs(3600)))
        });
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(
            server.nack(&held, Duration::ZERO).unwrap(),
            Nacked::Retrying
        );
        let delivery = waiting.join().unwrap().unwrap().unwrap();
        assert_eq!((*delivery.msg(), delivery.attempt()), (5, 2));
        let leased_at = delivery.deadline() - LONG;
        assert!(
            leased_at < held.deadline(),
            "taken at {leased_at:?}, not before the first lease ran out at {:?}",
            held.deadline()
        );
        assert!(server.ack(&delivery).unwrap());
    });
}

/// Scenario: dead letters carry ids an operator reads, requeues and
/// purges one by one; an id named twice counts once; an id that is no
/// dead letter's is refused before anything is sent; `usize::MAX` reads
/// them all; the counts follow every step.
pub fn dead_letters_are_picked_by_id<B: Harness>(backend: &B)
where
    B::Store: LeaseStore,
{
    let (client, server) = pair(backend, "/dead-ids", 1);
    assert_eq!(server.lease_stats().unwrap(), LeaseStats::default());
    client.send_msgs(1..=4).unwrap();
    let batch = lease_all::<B>(&server, 3);
    for delivery in &batch {
        assert_eq!(
            server.nack(delivery, Duration::ZERO).unwrap(),
            Nacked::DeadLettered
        );
    }
    let dead = server.dead_letters(usize::MAX).unwrap();
    let bodies: Vec<&[u8]> = dead.iter().map(|letter| letter.body.as_slice()).collect();
    assert_eq!(bodies, [b"1", b"2", b"3"], "oldest first");
    assert!(dead.windows(2).all(|pair| pair[0].id != pair[1].id));
    assert!(
        dead.iter()
            .all(|letter| letter.at <= SystemTime::now() + LONG)
    );
    let stats = server.lease_stats().unwrap();
    assert_eq!(
        (stats.depth, stats.in_flight, stats.retrying, stats.dead),
        (1, 0, 0, 3)
    );
    assert_eq!(stats.next_deadline, None);

    let second = [dead[1].id.clone(), dead[1].id.clone()];
    assert_eq!(
        server.requeue_dead_letters(&second).unwrap(),
        1,
        "named twice, moved once"
    );
    assert_eq!(server.requeue_dead_letters(&second).unwrap(), 0, "gone");
    let list: Vec<u32> = std::iter::from_fn(|| server.recv_msg::<u32>().unwrap()).collect();
    assert_eq!(list, [4, 2], "requeued to the tail, once");

    let unknown = "1-1".to_owned();
    assert_eq!(
        server
            .purge_dead_letters(&[dead[0].id.clone(), unknown])
            .unwrap(),
        1
    );
    let left = server.dead_letters(usize::MAX).unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].id, dead[2].id);
    for bad in ["", "nope", "12", "1-", "-1", "1-2-3", "1 -2", "+1-2"] {
        for result in [
            server.requeue_dead_letters(&[bad.to_owned()]),
            server.purge_dead_letters(&[left[0].id.clone(), bad.to_owned()]),
        ] {
            match result {
                Err(crate::ChannelError::Store(StoreError::InvalidInput { message })) => {
                    assert!(message.contains("not a dead letter id"), "{message}");
                }
                other => panic!("{bad:?} was not refused: {other:?}"),
            }
        }
    }
    assert_eq!(
        server.dead_letters(usize::MAX).unwrap(),
        left,
        "nothing was sent"
    );

    client.send_msg(&9).unwrap();
    let held = server.lease_msg::<u32>(LONG).unwrap().unwrap();
    let stats = server.lease_stats().unwrap();
    assert_eq!((stats.depth, stats.in_flight, stats.dead), (0, 1, 1));
    assert_eq!(stats.next_deadline, Some(held.deadline()));
    assert_eq!(server.purge_dead().unwrap(), 1);
    assert!(server.ack(&held).unwrap());
    assert_eq!(server.lease_stats().unwrap(), LeaseStats::default());
}

/// Scenario: `channel_stats` finds every channel under a prefix (one whose
/// lists are empty but which holds a dead letter too, none outside it)
/// and counts each state of both its lists.
pub fn channel_stats_count_every_state_under_a_prefix<B: Harness>(backend: &B)
where
    B::Store: LeaseStore,
{
    let prefix = format!("{}/", unique("/stats"));
    let open = |name: &str| {
        let options = ChannelOptions::default();
        (
            RedisChannel::new(backend.store(), name, Peer::Client).unwrap(),
            RedisChannel::with_options(backend.store(), name, Peer::Server, options).unwrap(),
        )
    };
    let (client, server) = open(&format!("{prefix}busy"));
    client.send_msgs([1, 2, 3, 4, 5]).unwrap();
    let batch = lease_all::<B>(&server, 3);
    assert_eq!(server.nack(&batch[1], LONG).unwrap(), Nacked::Retrying);
    assert!(server.reject(&batch[2]).unwrap());
    server.send_msg(&"reply").unwrap();
    let (client, server) = open(&format!("{prefix}dead"));
    client.send_msg(&9).unwrap();
    let dead = lease_all::<B>(&server, 1);
    assert!(server.reject(&dead[0]).unwrap());
    let (outside, _) = open(&format!("{}x", prefix.trim_end_matches('/')));
    outside.send_msg(&0).unwrap();

    let store = backend.store();
    let stats = crate::channel_stats(&store, &prefix, 100).unwrap();
    let names: Vec<&str> = stats.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, [format!("{prefix}busy"), format!("{prefix}dead")]);
    let busy = &stats[0];
    let counts = |s: &LeaseStats| (s.depth, s.in_flight, s.retrying, s.dead);
    assert_eq!(counts(&busy.to_server), (2, 1, 1, 1));
    assert_eq!(busy.to_server.next_deadline, Some(batch[0].deadline()));
    assert_eq!(counts(&busy.to_client), (1, 0, 0, 0));
    assert_eq!(counts(&stats[1].to_server), (0, 0, 0, 1));
    assert_eq!(
        crate::channel_stats(&store, &prefix, 1).unwrap().len(),
        1,
        "at most max channels"
    );
    let refused = crate::channel_stats(&store, "no-slash", 10).unwrap_err();
    assert!(refused.to_string().contains("no-slash"), "{refused}");
}
