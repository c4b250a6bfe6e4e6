//! The fake against Redis, step by step: random store operations on a few
//! keys, some holding strings, some pushed with TTLs Redis refuses, run on
//! `MemoryStore` and on a private redis-server (and a Redis Cluster); after
//! every step both gave the same answer, or failed with the same error
//! class and the same Redis error code, and hold the same data.

use crate::support;

use std::time::Duration;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use redisutil::conformance::{Harness, MemoryHarness};
use redisutil::{ListStore, StoreError};
use support::{RedisBackend, unique};

#[derive(Debug, Clone)]
enum Op {
    Push(usize, Vec<Vec<u8>>, Option<Duration>),
    Pop(usize),
    PopMany(usize, usize),
    BlockingPop(usize),
    BlockingPopMany(usize, usize),
    Index(usize, i64),
    TakeLast(usize),
    BlockingTakeLast(usize),
    SetString(usize),
    Scan,
}

const KEYS: usize = 3;

fn ttl() -> impl Strategy<Value = Option<Duration>> {
    prop_oneof![
        4 => Just(None),
        2 => Just(Some(Duration::from_secs(600))),
        1 => Just(Some(Duration::from_millis(i64::MAX as u64))),
        1 => Just(Some(Duration::from_millis(u64::MAX))),
        1 => Just(Some(Duration::MAX)),
    ]
}

/// A batch size: small, or beyond anything Redis counts.
fn count() -> impl Strategy<Value = usize> {
    prop_oneof![4 => 0usize..4, 1 => Just(usize::MAX)]
}

fn op() -> impl Strategy<Value = Op> {
    let key = 0..KEYS;
    let values = prop::collection::vec(prop::collection::vec(any::<u8>(), 0..4), 0..4);
    prop_oneof![
        5 => (key.clone(), values, ttl()).prop_map(|(k, v, t)| Op::Push(k, v, t)),
        3 => key.clone().prop_map(Op::Pop),
        2 => (key.clone(), count()).prop_map(|(k, n)| Op::PopMany(k, n)),
        1 => key.clone().prop_map(Op::BlockingPop),
        1 => (key.clone(), count()).prop_map(|(k, n)| Op::BlockingPopMany(k, n)),
        2 => (key.clone(), -3i64..3).prop_map(|(k, i)| Op::Index(k, i)),
        1 => key.clone().prop_map(Op::TakeLast),
        1 => key.clone().prop_map(Op::BlockingTakeLast),
        1 => key.prop_map(Op::SetString),
        1 => Just(Op::Scan),
    ]
}

/// What an operation answered, comparable across backends: a value, or
/// the error's variant and Redis's error code (`WRONGTYPE`, `ERR`).
#[derive(Debug, PartialEq)]
enum Answer {
    Len(u64),
    Element(Option<Vec<u8>>),
    Elements(Vec<Vec<u8>>),
    Keys(Vec<String>),
    Done,
    Refused(String),
    Other(String),
}

fn answer<T>(outcome: Result<T, StoreError>, ok: impl FnOnce(T) -> Answer) -> Answer {
    match outcome {
        Ok(value) => ok(value),
        Err(StoreError::Command { message, .. }) => {
            Answer::Refused(message.split_whitespace().next().unwrap_or("").to_owned())
        }
        Err(other) => Answer::Other(other.to_string()),
    }
}

/// Runs `op` on `backend`, whose keys are `keys`.
fn run<B: Harness>(backend: &B, keys: &[String], op: &Op) -> Answer {
    let store = backend.store();
    let short = Some(Duration::from_millis(1));
    match op {
        Op::Push(k, values, ttl) => {
            let values: Vec<&[u8]> = values.iter().map(Vec::as_slice).collect();
            answer(store.push(&keys[*k], &values, *ttl), Answer::Len)
        }
        Op::Pop(k) => answer(store.pop(&keys[*k]), Answer::Element),
        Op::PopMany(k, count) => answer(store.pop_many(&keys[*k], *count), Answer::Elements),
        Op::BlockingPopMany(k, count) => answer(
            backend.blocking(|| store.blocking_pop_many(&keys[*k], *count, short)),
            Answer::Elements,
        ),
        Op::BlockingPop(k) => answer(
            backend.blocking(|| store.blocking_pop(&keys[*k], short)),
            Answer::Element,
        ),
        Op::Index(k, index) => answer(store.index(&keys[*k], *index), Answer::Element),
        Op::TakeLast(k) => answer(store.take_last(&keys[*k]), Answer::Element),
        Op::BlockingTakeLast(k) => answer(
            backend.blocking(|| store.blocking_take_last(&keys[*k], short)),
            Answer::Element,
        ),
        Op::SetString(k) => {
            backend.set_string(&keys[*k], "a string");
            Answer::Done
        }
        Op::Scan => {
            let prefix = keys[0].trim_end_matches(char::is_numeric);
            answer(store.scan(&format!("{prefix}*")), |found| {
                let mut found: Vec<String> = found
                    .iter()
                    .map(|key| match keys.iter().position(|k| k == key) {
                        Some(k) => k.to_string(),
                        None => key.clone(),
                    })
                    .collect();
                found.sort();
                Answer::Keys(found)
            })
        }
    }
}

/// The data under `keys`: each list's elements, string and whether it has
/// a TTL, with the key's index in place of its name.
fn data<B: Harness>(backend: &B, keys: &[String]) -> Vec<(Vec<Vec<u8>>, Option<String>, bool)> {
    let store = backend.store();
    keys.iter()
        .map(|key| {
            let string = backend.get_string(key);
            let mut elements = Vec::new();
            if string.is_none() {
                while let Some(element) = store.index(key, elements.len() as i64).unwrap() {
                    elements.push(element);
                }
            }
            (elements, string, backend.ttl(key).is_some())
        })
        .collect()
}

fn keys(prefix: &str, backend_name: &str) -> Vec<String> {
    let base = unique(&format!("{prefix}/{backend_name}"));
    (0..KEYS).map(|k| format!("{base}/{k}")).collect()
}

fn check<B: Harness>(real: &B, cases: u32) {
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&prop::collection::vec(op(), 1..30), |ops| {
            let fake = MemoryHarness::new();
            let fake_keys = keys("/diff", "memory");
            let real_keys = keys("/diff", "real");
            for (step, op) in ops.iter().enumerate() {
                let expected = run(&fake, &fake_keys, op);
                let got = run(real, &real_keys, op);
                if expected != got {
                    return Err(TestCaseError::fail(format!(
                        "step {step} {op:?}: fake answered {expected:?}, Redis {got:?}"
                    )));
                }
                if data(&fake, &fake_keys) != data(real, &real_keys) {
                    return Err(TestCaseError::fail(format!(
                        "step {step} {op:?}: the data differ: fake {:?}, Redis {:?}",
                        data(&fake, &fake_keys),
                        data(real, &real_keys)
                    )));
                }
            }
            Ok(())
        })
        .unwrap();
}

#[test]
fn the_fake_answers_and_refuses_like_redis() {
    check(&RedisBackend::new(), 64);
}

#[cfg(feature = "cluster")]
#[test]
fn the_fake_answers_and_refuses_like_a_redis_cluster() {
    check(&support::ClusterBackend::new(), 24);
}
