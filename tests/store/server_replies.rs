//! No server reply makes a store or channel operation panic.
//!
//! A tiny fake RESP2 server answers each command with a reply drawn by
//! proptest: error replies of every class, `+QUEUED`, `+OK`, nulls,
//! integers, bulk strings, arrays of any shape, garbage, truncated replies
//! and closed connections. Every `RedisStore` operation, through
//! `ListStore` and through `RedisChannel`, must return `Ok` or an error with
//! a message, and never panic; an error the server gives as its first
//! answer shows in the returned error. Then the same against real
//! `redis-server`s that refuse commands: an ACL user without MULTI and
//! scripting, and a client without the password.

use crate::support;

use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, mpsc};
use std::thread;
use std::time::Duration;

use proptest::collection::vec;
use proptest::prelude::*;
use redisutil::{
    ChannelError, ChannelOptions, ListStore, Peer, RedisChannel, RedisStore, StoreError,
};
use support::RedisServer;

use crate::resp_support;

use resp_support::*;

// ---- running the operations ------------------------------------------------

/// How an operation ended.
#[derive(Debug)]
enum Outcome {
    Ok,
    /// The error's `Display`, its message without the address, and
    /// whether it was a timeout.
    Failed {
        display: String,
        message: String,
        timed_out: bool,
    },
    Panicked(String),
    Hung,
}

fn store_failed(err: &StoreError) -> Outcome {
    let message = match err {
        StoreError::Connection { message, .. }
        | StoreError::Command { message, .. }
        | StoreError::InvalidAddress { message, .. } => message.clone(),
        other => other.to_string(),
    };
    Outcome::Failed {
        display: err.to_string(),
        message,
        timed_out: matches!(err, StoreError::Timeout { .. }),
    }
}

fn channel_failed(err: &ChannelError) -> Outcome {
    match err {
        ChannelError::Store(err) => store_failed(err),
        other => Outcome::Failed {
            display: other.to_string(),
            message: other.to_string(),
            timed_out: false,
        },
    }
}

fn store_outcome<T>(result: Result<T, StoreError>) -> Outcome {
    result.map_or_else(|err| store_failed(&err), |_| Outcome::Ok)
}

fn channel_outcome<T>(result: Result<T, ChannelError>) -> Outcome {
    result.map_or_else(|err| channel_failed(&err), |_| Outcome::Ok)
}

type Operation = Box<dyn FnOnce() -> Outcome + Send>;

/// Every store and channel operation, each with its name.
fn operations(store: &RedisStore) -> Vec<(&'static str, Operation)> {
    let short = Some(Duration::from_millis(50));
    let options = ChannelOptions {
        ttl: Some(Duration::from_secs(60)),
        ..Default::default()
    };
    let chan = RedisChannel::with_options(store.clone(), "/fake/chan", Peer::Client, options)
        .expect("a channel");
    let s = || store.clone();
    let c = || chan.clone();
    let mut ops: Vec<(&'static str, Operation)> = Vec::new();
    macro_rules! op {
        ($name:expr, $handle:expr, $outcome:ident, |$h:ident| $call:expr) => {{
            let $h = $handle;
            ops.push(($name, Box::new(move || $outcome($call))));
        }};
    }
    op!("push", s(), store_outcome, |h| h.push("k", &[b"v"], None));
    op!("push with a TTL", s(), store_outcome, |h| h.push(
        "k",
        &[b"v", b"w"],
        Some(Duration::from_secs(60))
    ));
    op!("pop", s(), store_outcome, |h| h.pop("k"));
    op!("blocking_pop", s(), store_outcome, |h| h
        .blocking_pop("k", short));
    op!("index", s(), store_outcome, |h| h.index("k", -1));
    op!("take_last", s(), store_outcome, |h| h.take_last("k"));
    op!("scan", s(), store_outcome, |h| h.scan("/fake/*"));
    op!("ping", s(), store_outcome, |h| h.ping());
    op!("send_msg with a TTL", c(), channel_outcome, |h| h
        .send_msg(&serde_json::json!({"id": 1})));
    op!("send_msgs with a TTL", c(), channel_outcome, |h| h
        .send_msgs([1, 2]));
    op!("recv_msg", c(), channel_outcome, |h| h
        .recv_msg::<serde_json::Value>());
    op!("brecv_msg", c(), channel_outcome, |h| h
        .brecv_msg::<serde_json::Value>(Duration::from_millis(50)));
    op!("recv_msgs", c(), channel_outcome, |h| h
        .recv_msgs::<serde_json::Value>(3));
    op!("brecv_msgs", c(), channel_outcome, |h| h
        .brecv_msgs::<serde_json::Value>(
            3,
            Duration::from_millis(50)
        ));
    op!("pop_many", s(), store_outcome, |h| h.pop_many("k", 3));
    op!("blocking_pop_many", s(), store_outcome, |h| h
        .blocking_pop_many("k", 3, short));
    op!("recv_last_msg", c(), channel_outcome, |h| h
        .recv_last_msg::<serde_json::Value>(
    ));
    op!("brecv_last_msg", c(), channel_outcome, |h| {
        h.brecv_last_msg::<serde_json::Value>(Duration::from_millis(50))
    });
    op!("peek_msg", c(), channel_outcome, |h| h
        .peek_msg::<serde_json::Value>());
    op!("rpeek_msg", c(), channel_outcome, |h| h
        .rpeek_msg::<serde_json::Value>());
    op!("list_channel", c(), channel_outcome, |h| h
        .list_channel("/"));
    ops
}

/// The name of the threads that run operations.
const OPERATION_THREAD: &str = "operation";

thread_local! {
    /// Where the last panic on this thread happened.
    static PANIC_AT: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
}

/// Keeps panics in operations off stderr (the outcome reports them, with
/// their location), and leaves the test's own panics to the default hook.
fn quiet_operation_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let default = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if thread::current().name() == Some(OPERATION_THREAD) {
                let at = info.location().map(ToString::to_string).unwrap_or_default();
                PANIC_AT.with(|cell| *cell.borrow_mut() = at);
            } else {
                default(info);
            }
        }));
    });
}

/// Runs `operation` on a thread, catching a panic; gives up after 10 s.
fn run(operation: Operation) -> Outcome {
    quiet_operation_panics();
    let (tx, rx) = mpsc::channel();
    let spawned = thread::Builder::new()
        .name(OPERATION_THREAD.into())
        .spawn(move || {
            let outcome =
                panic::catch_unwind(AssertUnwindSafe(operation)).unwrap_or_else(|payload| {
                    let text = payload
                        .downcast_ref::<&str>()
                        .map(|s| s.to_string())
                        .or_else(|| payload.downcast_ref::<String>().cloned())
                        .unwrap_or_else(|| "a panic".into());
                    let at = PANIC_AT.with(|cell| cell.borrow().clone());
                    Outcome::Panicked(format!("{text} (at {at})"))
                });
            let _ = tx.send(outcome);
        });
    spawned.expect("spawn an operation thread");
    rx.recv_timeout(Duration::from_secs(10))
        .unwrap_or(Outcome::Hung)
}

/// The code and text of an error reply, when it is a well-formed one that
/// a client shows: a code from [`CODES`] or a redirection, printable text.
fn shown_error(reply: &Reply) -> Option<(String, String)> {
    let Reply::Bytes(bytes) = reply else {
        return None;
    };
    let text = std::str::from_utf8(bytes.strip_prefix(b"-")?.strip_suffix(b"\r\n")?).ok()?;
    if !text.bytes().all(|b| (b' '..=b'~').contains(&b)) {
        return None;
    }
    let (code, detail) = text.split_once(' ').unwrap_or((text, ""));
    let known = CODES.contains(&code) || code == "MOVED" || code == "ASK";
    known.then(|| (code.to_owned(), detail.trim().to_owned()))
}

fn check_case(replies: Vec<Reply>, setup_scripted: bool) -> Result<(), TestCaseError> {
    let script = Arc::new(Script {
        replies,
        setup_scripted,
        next: AtomicUsize::new(0),
    });
    let answering = script.clone();
    let server = FakeServer::start(Arc::new(move |command: &[Vec<u8>]| {
        answering.answer(command)
    }));
    let store = server.store();
    // An error answered to the first command: the final answer of every
    // operation, unless it asks for a fallback (NOSCRIPT: EVAL follows
    // EVALSHA) or the set-up took it.
    let first_error =
        shown_error(&script.replies[0]).filter(|(code, _)| code != "NOSCRIPT" && !setup_scripted);
    for (name, operation) in operations(&store) {
        script.reset();
        match run(operation) {
            Outcome::Ok => {
                if let Some((code, detail)) = &first_error {
                    return Err(TestCaseError::fail(format!(
                        "{name}: Ok although the server answered -{code} {detail}"
                    )));
                }
            }
            Outcome::Failed {
                display,
                message,
                timed_out,
            } => {
                prop_assert!(
                    !message.trim().is_empty(),
                    "{name}: an error with an empty message: {display}"
                );
                // The error is answered at once: a timeout could only be a
                // loaded machine missing the short response timeout.
                if let Some((_code, detail)) = first_error.as_ref().filter(|_| !timed_out) {
                    prop_assert!(
                        display.contains(detail.as_str()),
                        "{name}: the server's error {detail:?} does not show in: {display}"
                    );
                }
            }
            Outcome::Panicked(text) => {
                return Err(TestCaseError::fail(format!("{name} panicked: {text}")));
            }
            Outcome::Hung => {
                return Err(TestCaseError::fail(format!(
                    "{name} did not return within 10 s"
                )));
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 64,
        max_shrink_iters: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// Any replies: no panic, no hang, every error says something, and an
    /// error answered first shows.
    #[test]
    fn no_reply_makes_an_operation_panic(
        first in first_reply(),
        rest in vec(reply(), 0..7),
        setup_scripted in prop::bool::weighted(0.2),
    ) {
        let mut replies = vec![first];
        replies.extend(rest);
        check_case(replies, setup_scripted)?;
    }
}

// ---- refused commands, one by one ----------------------------------------

/// Runs every operation against a server that answers `-<error>` to every
/// command; lists those that did not return an error showing `expect`.
fn not_shown(error: &str, expect: &str) -> Vec<String> {
    let reply = format!("-{error}\r\n").into_bytes();
    let server = FakeServer::start(Arc::new(move |command: &[Vec<u8>]| {
        if is_setup(command) {
            Reply::Bytes(b"+OK\r\n".to_vec())
        } else {
            Reply::Bytes(reply.clone())
        }
    }));
    let store = server.patient_store();
    let mut wrong = Vec::new();
    for (name, operation) in operations(&store) {
        match run(operation) {
            Outcome::Failed { display, .. } if display.contains(expect) => {}
            outcome => wrong.push(format!("-{error}: {name}: {outcome:?}")),
        }
    }
    wrong
}

/// The code of an error reply shows as Redis sent it, so that a search of
/// the logs for `NOPERM` or `READONLY` finds it; and no operation panics.
#[test]
fn every_error_code_shows_as_redis_sent_it() {
    let mut wrong = Vec::new();
    for code in [
        "ERR",
        "NOAUTH",
        "NOPERM",
        "WRONGTYPE",
        "EXECABORT",
        "LOADING",
        "READONLY",
        "OOM",
        "BUSY",
        "TRYAGAIN",
        "MASTERDOWN",
        "WRONGPASS",
    ] {
        wrong.extend(not_shown(&format!("{code} refused by the test"), code));
    }
    wrong.extend(not_shown("MOVED 1 127.0.0.1:1", "MOVED"));
    assert!(
        wrong.is_empty(),
        "{} operations did not return an error showing the code:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}

/// A fake server that refuses MULTI, EXEC and scripts as an ACL would,
/// and serves every other command like an empty Redis.
fn acl_like_server() -> FakeServer {
    FakeServer::start(Arc::new(|command: &[Vec<u8>]| {
        let name = String::from_utf8_lossy(&command[0]).to_ascii_uppercase();
        let reply: &[u8] = match name.as_str() {
            "MULTI" | "EXEC" | "EVAL" | "EVALSHA" | "EVAL_RO" | "EVALSHA_RO" | "SCRIPT"
            | "FCALL" => {
                return Reply::Bytes(
                    format!(
                        "-NOPERM this user has no permissions to run the '{}' command\r\n",
                        name.to_ascii_lowercase()
                    )
                    .into_bytes(),
                );
            }
            "CLIENT" | "SELECT" | "AUTH" => b"+OK\r\n",
            "PING" => b"+PONG\r\n",
            "RPUSH" | "LPUSH" => b":1\r\n",
            "PEXPIRE" | "EXPIRE" | "UNLINK" | "DEL" => b":1\r\n",
            "LPOP" | "RPOP" | "LINDEX" | "BLMOVE" | "LMOVE" => b"$-1\r\n",
            "BLPOP" => b"*-1\r\n",
            "SCAN" => b"*2\r\n$1\r\n0\r\n*0\r\n",
            _ => b"-ERR unknown command\r\n",
        };
        Reply::Bytes(reply.to_vec())
    }))
}

/// Runs `send_msg` with a TTL and `recv_last_msg` on `store`: each must
/// return an error showing `expect`, not panic.
fn assert_refused(store: RedisStore, expect: &str) {
    let options = ChannelOptions {
        ttl: Some(Duration::from_secs(60)),
        ..Default::default()
    };
    let chan = RedisChannel::with_options(store, "/refused", Peer::Client, options).unwrap();
    let sender = chan.clone();
    let send: Operation = Box::new(move || channel_outcome(sender.send_msg(&"hello")));
    let receiver = chan.clone();
    let take: Operation =
        Box::new(move || channel_outcome(receiver.recv_last_msg::<serde_json::Value>()));
    let mut wrong = Vec::new();
    for (name, operation) in [("send_msg with a TTL", send), ("recv_last_msg", take)] {
        match run(operation) {
            Outcome::Failed { display, .. } if display.contains(expect) => {}
            outcome => wrong.push(format!("{name}: {outcome:?}")),
        }
    }
    assert!(
        wrong.is_empty(),
        "expected errors showing {expect:?}:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn refused_multi_and_scripts_are_errors_on_a_fake_server() {
    let server = acl_like_server();
    assert_refused(server.patient_store(), "NOPERM");
}

#[test]
fn refused_multi_and_scripts_are_errors_on_redis() {
    let server = RedisServer::start();
    let mut admin = server.raw();
    redis::cmd("ACL")
        .arg("SETUSER")
        .arg("limited")
        .arg("on")
        .arg(">limited-pw")
        .arg("~*")
        .arg("&*")
        .arg("+@all")
        .arg("-@transaction")
        .arg("-@scripting")
        .query::<()>(&mut admin)
        .expect("ACL SETUSER");
    let url = format!("redis://limited:limited-pw@127.0.0.1:{}/", server.port());
    let store = RedisStore::open_with(url.as_str(), patient()).unwrap();
    store.ping().expect("the limited user may PING");
    assert_refused(store, "NOPERM");
}

#[test]
fn a_missing_password_is_an_error_on_redis() {
    let server = RedisServer::start();
    let mut admin = server.raw();
    // Set after the start: the harness checks the server with a PING that
    // a password would refuse.
    redis::cmd("CONFIG")
        .arg("SET")
        .arg("requirepass")
        .arg("required-pw")
        .query::<()>(&mut admin)
        .expect("CONFIG SET requirepass");
    assert_refused(server.store(), "NOAUTH");
    let err = RedisStore::open_with(server.port(), patient())
        .unwrap()
        .ping()
        .unwrap_err();
    assert!(err.to_string().contains("NOAUTH"), "{err}");
}

/// An error reply with no text at all, or only blanks, is still an error
/// that says something.
#[test]
fn a_blank_error_reply_is_an_error_with_a_message() {
    for reply in ["-\r\n", "- \r\n", "-   \r\n"] {
        let server = FakeServer::start(Arc::new(move |command: &[Vec<u8>]| {
            if is_setup(command) {
                Reply::Bytes(b"+OK\r\n".to_vec())
            } else {
                Reply::Bytes(reply.as_bytes().to_vec())
            }
        }));
        let store = server.patient_store();
        let mut wrong = Vec::new();
        for (name, operation) in operations(&store) {
            match run(operation) {
                Outcome::Failed { message, .. } if message.chars().any(|c| c.is_alphanumeric()) => {
                }
                outcome => wrong.push(format!("{name}: {outcome:?}")),
            }
        }
        assert!(
            wrong.is_empty(),
            "answered {reply:?}:\n{}",
            wrong.join("\n")
        );
    }
}

/// A server older than Redis 7 has no BLMPOP: a blocking batch receive
/// falls back to BLPOP for the first message and LPOP for the rest, and
/// gets the same batch.
#[test]
fn a_blocking_batch_falls_back_without_blmpop() {
    fn encode(value: Value) -> Reply {
        let mut out = Vec::new();
        value.encode(&mut out);
        Reply::Bytes(out)
    }
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    let server = FakeServer::start(Arc::new(move |command: &[Vec<u8>]| {
        let name = String::from_utf8_lossy(&command[0]).to_uppercase();
        log.lock().unwrap().push(name.clone());
        match name.as_str() {
            "BLMPOP" => encode(Value::Error(b"ERR unknown command 'BLMPOP'".to_vec())),
            "BLPOP" => encode(Value::Array(vec![
                Value::Bulk(command[1].clone()),
                Value::Bulk(b"1".to_vec()),
            ])),
            "LPOP" => encode(Value::Array(vec![
                Value::Bulk(b"2".to_vec()),
                Value::Bulk(b"3".to_vec()),
            ])),
            _ => encode(Value::Simple(b"OK".to_vec())),
        }
    }));
    let channel = RedisChannel::new(server.patient_store(), "/old", Peer::Server).unwrap();
    let batch = channel
        .brecv_msgs::<u32>(3, Duration::from_secs(1))
        .unwrap();
    let batch: Vec<u32> = batch.into_iter().map(Result::unwrap).collect();
    assert_eq!(batch, [1, 2, 3]);
    assert_eq!(*seen.lock().unwrap(), ["BLMPOP", "BLPOP", "LPOP"]);
}
