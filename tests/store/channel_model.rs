//! Model test: random operations from both peers of a channel, checked after
//! every step against two `VecDeque`s, on the fake and on a real Redis.

use crate::support;

use std::collections::VecDeque;
use std::time::Duration;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use redisutil::conformance::{Harness, MemoryHarness};
use redisutil::{Peer, RedisChannel};
use serde_json::Value;
use support::{RedisBackend, unique};

#[derive(Debug, Clone)]
enum Op {
    Send(Peer, Value),
    SendBatch(Peer, Vec<Value>),
    Recv(Peer),
    BRecv(Peer),
    RecvLast(Peer),
    Peek(Peer),
    RPeek(Peer),
}

fn peer() -> impl Strategy<Value = Peer> {
    prop_oneof![Just(Peer::Client), Just(Peer::Server)]
}

fn message() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        "\\PC{0,12}".prop_map(Value::from),
        prop::collection::vec(any::<u8>(), 0..4).prop_map(Value::from),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (peer(), message()).prop_map(|(p, m)| Op::Send(p, m)),
        1 => (peer(), prop::collection::vec(message(), 0..6)).prop_map(|(p, m)| Op::SendBatch(p, m)),
        3 => peer().prop_map(Op::Recv),
        1 => peer().prop_map(Op::BRecv),
        1 => peer().prop_map(Op::RecvLast),
        1 => peer().prop_map(Op::Peek),
        1 => peer().prop_map(Op::RPeek),
    ]
}

/// What each peer has sent and the other has not yet received.
#[derive(Default)]
struct Model {
    sent_by_client: VecDeque<Value>,
    sent_by_server: VecDeque<Value>,
}

impl Model {
    fn outbox(&mut self, peer: Peer) -> &mut VecDeque<Value> {
        match peer {
            Peer::Client => &mut self.sent_by_client,
            Peer::Server => &mut self.sent_by_server,
        }
    }

    fn inbox(&mut self, peer: Peer) -> &mut VecDeque<Value> {
        self.outbox(peer.other())
    }
}

fn run_model<B: Harness>(backend: &B, cases: u32) {
    let config = Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    };
    let mut runner = TestRunner::new(config);
    let strategy = prop::collection::vec(op(), 1..40);
    runner
        .run(&strategy, |ops| check(backend, &ops))
        .unwrap_or_else(|err| panic!("{err}"));
    println!("model: {cases} cases passed");
}

fn check<B: Harness>(backend: &B, ops: &[Op]) -> Result<(), TestCaseError> {
    let name = unique("/model");
    let end = |peer| RedisChannel::new(backend.store(), &name, peer).unwrap();
    let (client, server) = (end(Peer::Client), end(Peer::Server));
    let chan = |peer| {
        if peer == Peer::Client {
            &client
        } else {
            &server
        }
    };
    let mut model = Model::default();
    for op in ops {
        match op {
            Op::Send(peer, msg) => {
                chan(*peer).send_msg(msg).unwrap();
                model.outbox(*peer).push_back(msg.clone());
            }
            Op::SendBatch(peer, msgs) => {
                prop_assert_eq!(chan(*peer).send_msgs(msgs).unwrap(), msgs.len());
                model.outbox(*peer).extend(msgs.iter().cloned());
            }
            Op::Recv(peer) => {
                let got: Option<Value> = chan(*peer).recv_msg().unwrap();
                prop_assert_eq!(got, model.inbox(*peer).pop_front(), "{:?}", op);
            }
            Op::BRecv(peer) => {
                let got: Option<Value> = backend
                    .blocking(|| chan(*peer).brecv_msg(Duration::from_millis(10)))
                    .unwrap();
                prop_assert_eq!(got, model.inbox(*peer).pop_front(), "{:?}", op);
            }
            Op::RecvLast(peer) => {
                let got: Option<Value> = chan(*peer).recv_last_msg().unwrap();
                let inbox = model.inbox(*peer);
                prop_assert_eq!(got, inbox.back().cloned(), "{:?}", op);
                inbox.clear();
            }
            Op::Peek(peer) => {
                let got: Option<Value> = chan(*peer).peek_msg().unwrap();
                prop_assert_eq!(got, model.inbox(*peer).front().cloned(), "{:?}", op);
            }
            Op::RPeek(peer) => {
                let got: Option<Value> = chan(*peer).rpeek_msg().unwrap();
                prop_assert_eq!(got, model.inbox(*peer).back().cloned(), "{:?}", op);
            }
        }
        // After every step, both lists' ends agree with the model.
        for peer in [Peer::Client, Peer::Server] {
            let head: Option<Value> = chan(peer).peek_msg().unwrap();
            let tail: Option<Value> = chan(peer).rpeek_msg().unwrap();
            prop_assert_eq!(head, model.inbox(peer).front().cloned());
            prop_assert_eq!(tail, model.inbox(peer).back().cloned());
        }
    }
    // At the end, each list holds exactly what the model holds, in order.
    for peer in [Peer::Client, Peer::Server] {
        let mut rest = Vec::new();
        while let Some(msg) = chan(peer).recv_msg::<Value>().unwrap() {
            rest.push(msg);
        }
        prop_assert_eq!(rest, Vec::from(model.inbox(peer).clone()));
    }
    Ok(())
}

#[test]
fn memory_model() {
    run_model(&MemoryHarness::new(), 256);
}

#[test]
fn redis_model() {
    run_model(&RedisBackend::new(), 48);
}

#[cfg(feature = "cluster")]
#[test]
fn cluster_model() {
    run_model(&support::ClusterBackend::new(), 24);
}
