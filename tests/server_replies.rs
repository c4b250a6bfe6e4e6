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

mod support;

use std::io::{BufRead, BufReader, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::thread;
use std::time::Duration;

use proptest::collection::vec;
use proptest::prelude::*;
use redisutil::{
    ChannelError, ChannelOptions, ListStore, Peer, RedisChannel, RedisStore, RedisStoreOptions,
    StoreError,
};
use support::RedisServer;

// ---- the fake server -------------------------------------------------------

/// What the fake server does with one command.
#[derive(Clone, Debug)]
enum Reply {
    /// Writes these bytes: one RESP value, or garbage.
    Bytes(Vec<u8>),
    /// Writes the start of a value, then closes the connection.
    Truncated(Vec<u8>),
    /// Closes the connection without answering.
    Close,
}

/// Chooses the reply to a command (its arguments, name first).
type Responder = dyn Fn(&[Vec<u8>]) -> Reply + Send + Sync;

/// A RESP2 server on a free loopback port that answers every command with
/// what its responder says.
struct FakeServer {
    port: u16,
    stop: Arc<AtomicBool>,
}

impl FakeServer {
    fn start(responder: Arc<Responder>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        thread::spawn(move || {
            while !stopping.load(Ordering::Acquire) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let responder = responder.clone();
                        thread::spawn(move || serve(stream, &*responder));
                    }
                    Err(_) => thread::sleep(Duration::from_millis(1)),
                }
            }
        });
        Self { port, stop }
    }

    /// A store on this server with short timeouts, so that a reply that
    /// never completes, or a closed connection (the store may wait for a
    /// greeting on a new one to explain it), costs little.
    fn store(&self) -> RedisStore {
        RedisStore::open_with(self.port, quick()).expect("open a store")
    }

    /// A store on this server for replies that always come at once: a
    /// timeout there would only be a loaded machine, so it is a long one.
    fn patient_store(&self) -> RedisStore {
        RedisStore::open_with(self.port, patient()).expect("open a store")
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
    }
}

fn patient() -> RedisStoreOptions {
    RedisStoreOptions {
        connect_timeout: Duration::from_secs(5),
        response_timeout: Some(Duration::from_secs(5)),
        ..RedisStoreOptions::default()
    }
}

fn quick() -> RedisStoreOptions {
    RedisStoreOptions {
        connect_timeout: Duration::from_millis(100),
        response_timeout: Some(Duration::from_millis(200)),
        ..RedisStoreOptions::default()
    }
}

/// Answers the commands of one connection until either side closes it.
fn serve(stream: TcpStream, responder: &Responder) {
    stream.set_nonblocking(false).unwrap();
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    let Ok(read_half) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(read_half);
    let mut writer = stream;
    while let Some(command) = read_command(&mut reader) {
        match responder(&command) {
            Reply::Bytes(bytes) => {
                if writer.write_all(&bytes).is_err() {
                    return;
                }
            }
            Reply::Truncated(bytes) => {
                let _ = writer.write_all(&bytes);
                let _ = writer.shutdown(Shutdown::Both);
                return;
            }
            Reply::Close => {
                let _ = writer.shutdown(Shutdown::Both);
                return;
            }
        }
    }
}

/// One command, an array of bulk strings, as clients send them; `None` at
/// the end of the stream or on anything else.
fn read_command(reader: &mut impl BufRead) -> Option<Vec<Vec<u8>>> {
    let count: usize = read_header(reader, b'*')?;
    let mut args = Vec::with_capacity(count.min(64));
    for _ in 0..count {
        let len: usize = read_header(reader, b'$')?;
        let mut arg = vec![0; len + 2];
        reader.read_exact(&mut arg).ok()?;
        arg.truncate(len);
        args.push(arg);
    }
    Some(args)
}

/// A `<kind><number>\r\n` line.
fn read_header(reader: &mut impl BufRead, kind: u8) -> Option<usize> {
    let mut line = Vec::new();
    reader.read_until(b'\n', &mut line).ok()?;
    let line = line.strip_suffix(b"\r\n")?.strip_prefix(&[kind])?;
    std::str::from_utf8(line).ok()?.parse().ok()
}

/// Whether a command is one redis-rs sends while setting up a connection.
fn is_setup(command: &[Vec<u8>]) -> bool {
    command.first().is_some_and(|name| {
        ["CLIENT", "HELLO", "AUTH", "SELECT"]
            .iter()
            .any(|setup| name.eq_ignore_ascii_case(setup.as_bytes()))
    })
}

/// The replies of a proptest case, in order, to the commands of one
/// operation (counted from [`reset`](Script::reset)); past its end the
/// server answers an error, so that no operation loops forever (a SCAN
/// cursor that never ends).
#[derive(Debug)]
struct Script {
    replies: Vec<Reply>,
    /// Whether the connection set-up (`CLIENT SETINFO`) takes replies from
    /// the script too; otherwise it gets `+OK`.
    setup_scripted: bool,
    next: AtomicUsize,
}

impl Script {
    fn reset(&self) {
        self.next.store(0, Ordering::SeqCst);
    }

    fn answer(&self, command: &[Vec<u8>]) -> Reply {
        if !self.setup_scripted && is_setup(command) {
            return Reply::Bytes(b"+OK\r\n".to_vec());
        }
        let n = self.next.fetch_add(1, Ordering::SeqCst);
        self.replies
            .get(n)
            .cloned()
            .unwrap_or_else(|| Reply::Bytes(b"-ERR the test's script is over\r\n".to_vec()))
    }
}

// ---- replies ---------------------------------------------------------------

/// A RESP2 value.
#[derive(Clone, Debug)]
enum Value {
    Simple(Vec<u8>),
    Error(Vec<u8>),
    Int(i64),
    Bulk(Vec<u8>),
    NullBulk,
    NullArray,
    Array(Vec<Value>),
}

impl Value {
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Value::Simple(text) => line(out, b'+', text),
            Value::Error(text) => line(out, b'-', text),
            Value::Int(int) => line(out, b':', int.to_string().as_bytes()),
            Value::Bulk(bytes) => {
                line(out, b'$', bytes.len().to_string().as_bytes());
                out.extend_from_slice(bytes);
                out.extend_from_slice(b"\r\n");
            }
            Value::NullBulk => out.extend_from_slice(b"$-1\r\n"),
            Value::NullArray => out.extend_from_slice(b"*-1\r\n"),
            Value::Array(items) => {
                line(out, b'*', items.len().to_string().as_bytes());
                for item in items {
                    item.encode(out);
                }
            }
        }
    }

    fn bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(&mut out);
        out
    }
}

fn line(out: &mut Vec<u8>, kind: u8, text: &[u8]) {
    out.push(kind);
    out.extend_from_slice(text);
    out.extend_from_slice(b"\r\n");
}

/// Error codes Redis sends, and a few it does not.
const CODES: &[&str] = &[
    "ERR",
    "NOAUTH",
    "NOPERM",
    "WRONGTYPE",
    "NOSCRIPT",
    "EXECABORT",
    "LOADING",
    "BUSY",
    "OOM",
    "READONLY",
    "TRYAGAIN",
    "CLUSTERDOWN",
    "MASTERDOWN",
    "CROSSSLOT",
    "WRONGPASS",
    "UNKNOWNCODE",
];

/// Bytes of a line: anything but CR and LF.
fn line_bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    vec(
        any::<u8>().prop_filter("no CR or LF", |b| *b != b'\r' && *b != b'\n'),
        0..max,
    )
}

/// An error line: a known code and printable text, a redirection, or any
/// bytes after the `-`.
fn error_text() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => (prop::sample::select(CODES), "[ -~]{0,40}")
            .prop_map(|(code, text)| format!("{code} {text}").into_bytes()),
        1 => prop::sample::select(CODES).prop_map(|code| code.as_bytes().to_vec()),
        1 => Just(b"MOVED 1 127.0.0.1:1".to_vec()),
        1 => Just(b"ASK 1 127.0.0.1:1".to_vec()),
        1 => line_bytes(24),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        3 => error_text().prop_map(Value::Error),
        1 => Just(Value::Simple(b"QUEUED".to_vec())),
        1 => Just(Value::Simple(b"OK".to_vec())),
        1 => line_bytes(16).prop_map(Value::Simple),
        1 => Just(Value::NullBulk),
        1 => Just(Value::NullArray),
        2 => any::<i64>().prop_map(Value::Int),
        1 => (-2i64..3).prop_map(Value::Int),
        2 => vec(any::<u8>(), 0..24).prop_map(Value::Bulk),
        1 => "[0-9]{1,3}".prop_map(|digits| Value::Bulk(digits.into_bytes())),
        1 => Just(Value::Bulk(b"[1,\"x\"]".to_vec())),
    ];
    leaf.prop_recursive(3, 24, 5, |inner| vec(inner, 0..5).prop_map(Value::Array))
}

fn reply() -> impl Strategy<Value = Reply> {
    prop_oneof![
        8 => value().prop_map(|value| Reply::Bytes(value.bytes())),
        1 => (value(), any::<prop::sample::Index>()).prop_map(|(value, cut)| {
            let bytes = value.bytes();
            Reply::Truncated(bytes[..cut.index(bytes.len())].to_vec())
        }),
        1 => Just(Reply::Close),
        1 => line_bytes(24).prop_map(|mut garbage| {
            garbage.extend_from_slice(b"\r\n");
            Reply::Bytes(garbage)
        }),
    ]
}

/// The answer to an operation's first command: an error reply half the
/// time, since that is where a client must not lose its way (a refused
/// MULTI, an unknown script).
fn first_reply() -> impl Strategy<Value = Reply> {
    prop_oneof![
        1 => error_text().prop_map(|text| Reply::Bytes(Value::Error(text).bytes())),
        1 => reply(),
    ]
}

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
