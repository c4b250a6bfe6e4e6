//! Batch receive: up to `max` messages in one round trip, plain and
//! blocking.

use std::time::Duration;

use serde_json::Value;

use super::{Harness, pair, unique};
use crate::ListStore;

/// Scenario: a batch takes up to `max` of the oldest messages, in order;
/// an empty channel or a `max` of 0 gives an empty batch and takes nothing.
pub fn batch_receive_takes_up_to_max_in_order<B: Harness>(backend: &B) {
    let (client, server) = pair(backend, &unique("/batch"));
    assert!(server.recv_msgs::<i32>(3).unwrap().is_empty());
    client.send_msgs(1..=5).unwrap();
    let ok = |batch: Vec<Result<i32, _>>| -> Vec<i32> {
        batch.into_iter().map(|message| message.unwrap()).collect()
    };
    assert!(server.recv_msgs::<i32>(0).unwrap().is_empty());
    assert_eq!(ok(server.recv_msgs(2).unwrap()), [1, 2]);
    assert_eq!(ok(server.recv_msgs(10).unwrap()), [3, 4, 5]);
    assert!(server.recv_msgs::<i32>(10).unwrap().is_empty());
    // A `max` beyond what Redis counts means every message.
    client.send_msgs(6..=7).unwrap();
    assert_eq!(ok(server.recv_msgs(usize::MAX).unwrap()), [6, 7]);
    client.send_msgs(8..=9).unwrap();
    let all = backend.blocking(|| server.brecv_msgs(usize::MAX, Duration::MAX));
    assert_eq!(ok(all.unwrap()), [8, 9]);
    assert_eq!(
        backend.store().pop_many(server.recv_key(), 5).unwrap(),
        Vec::<Vec<u8>>::new(),
        "the emptied list is gone"
    );
}

/// Scenario: a message of a batch that does not decode keeps its bytes in
/// its place; the others arrive.
pub fn batch_receive_keeps_undecodable_messages_in_place<B: Harness>(backend: &B) {
    let (client, server) = pair(backend, &unique("/batch-bad"));
    let raw: [&[u8]; 3] = [b"1", b"not json", b"3"];
    backend.store().push(client.send_key(), &raw, None).unwrap();
    let batch = server.recv_msgs::<Value>(3).unwrap();
    assert_eq!(batch.len(), 3);
    assert_eq!(batch[0].as_ref().unwrap(), &Value::from(1));
    assert_eq!(batch[1].as_ref().unwrap_err().raw(), b"not json");
    assert_eq!(batch[2].as_ref().unwrap(), &Value::from(3));
}

/// Scenario: a blocking batch waits for the first message, then takes up to
/// `max` of what is there; on an empty channel it times out empty.
pub fn blocking_batch_receive_waits_then_takes_what_is_there<B: Harness>(backend: &B) {
    let (client, server) = pair(backend, &unique("/batch-wait"));
    let timeout = Duration::from_millis(300);
    assert!(
        backend
            .blocking(|| server.brecv_msgs::<i32>(4, timeout))
            .unwrap()
            .is_empty()
    );
    client.send_msgs([1, 2, 3]).unwrap();
    let batch = backend
        .blocking(|| server.brecv_msgs::<i32>(2, timeout))
        .unwrap();
    let batch: Vec<i32> = batch.into_iter().map(|message| message.unwrap()).collect();
    assert_eq!(batch, [1, 2]);
    // Taken before the waiter starts, so that it cannot take it first.
    assert_eq!(server.recv_msgs::<i32>(10).unwrap().len(), 1, "the 3 left");
    // Long enough for a sender a busy machine holds up (on a fake's clock,
    // which runs ten times faster than real time here).
    std::thread::scope(|scope| {
        let waiting = scope
            .spawn(|| backend.blocking(|| server.brecv_msgs::<i32>(10, Duration::from_secs(30))));
        std::thread::sleep(Duration::from_millis(100));
        client.send_msgs([4, 5]).unwrap();
        let batch = waiting.join().unwrap().unwrap();
        let batch: Vec<i32> = batch.into_iter().map(|message| message.unwrap()).collect();
        assert_eq!(batch, [4, 5], "one push, taken whole by the waiting batch");
    });
}

/// Scenario: messages of every size around a read's 16 KiB, and one of a
/// mebibyte, arrive whole and in order, by batch and one by one, mixed
/// with small ones (a reply read in many pieces, and what follows it on
/// the same connection).
pub fn messages_of_any_size_arrive_whole<B: Harness>(backend: &B) {
    let (client, server) = pair(backend, &unique("/batch-sizes"));
    let sizes = [0, 1, 16_381, 16_382, 16_383, 16_384, 100_000, 1 << 20];
    let messages: Vec<String> = sizes
        .iter()
        .enumerate()
        .flat_map(|(n, &size)| [format!("{n}"), format!("{n}").repeat(size.max(1))])
        .collect();
    client.send_msgs(&messages).unwrap();
    let batch = server.recv_msgs::<String>(messages.len()).unwrap();
    let batch: Vec<String> = batch.into_iter().map(|message| message.unwrap()).collect();
    assert!(
        batch == messages,
        "a batch of {} messages changed",
        messages.len()
    );
    for message in &messages {
        client.send_msg(message).unwrap();
    }
    for message in &messages {
        assert!(
            server.recv_msg::<String>().unwrap().as_ref() == Some(message),
            "a message of {} bytes changed",
            message.len()
        );
    }
    assert_eq!(server.recv_msg::<String>().unwrap(), None);
}
