//! A fake RESP2 server that answers each command as a script says, and the
//! replies it can give, with their proptest strategies: the test support
//! of `tests/store/server_replies.rs`.
#![allow(dead_code)] // the test uses what it needs

use std::io::{BufRead, BufReader, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

use proptest::collection::vec;
use proptest::prelude::*;
use redisutil::{RedisStore, RedisStoreOptions};

// ---- the fake server -------------------------------------------------------

/// What the fake server does with one command.
#[derive(Clone, Debug)]
pub(crate) enum Reply {
    /// Writes these bytes: one RESP value, or garbage.
    Bytes(Vec<u8>),
    /// Writes the start of a value, then closes the connection.
    Truncated(Vec<u8>),
    /// Closes the connection without answering.
    Close,
}

/// Chooses the reply to a command (its arguments, name first).
pub(crate) type Responder = dyn Fn(&[Vec<u8>]) -> Reply + Send + Sync;

/// A RESP2 server on a free loopback port that answers every command with
/// what its responder says.
pub(crate) struct FakeServer {
    pub(crate) port: u16,
    pub(crate) stop: Arc<AtomicBool>,
}

impl FakeServer {
    pub(crate) fn start(responder: Arc<Responder>) -> Self {
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
    pub(crate) fn store(&self) -> RedisStore {
        RedisStore::open_with(self.port, quick()).expect("open a store")
    }

    /// A store on this server for replies that always come at once: a
    /// timeout there would only be a loaded machine, so it is a long one.
    pub(crate) fn patient_store(&self) -> RedisStore {
        RedisStore::open_with(self.port, patient()).expect("open a store")
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
    }
}

pub(crate) fn patient() -> RedisStoreOptions {
    RedisStoreOptions {
        connect_timeout: Duration::from_secs(5),
        response_timeout: Some(Duration::from_secs(5)),
        ..RedisStoreOptions::default()
    }
}

pub(crate) fn quick() -> RedisStoreOptions {
    RedisStoreOptions {
        connect_timeout: Duration::from_millis(100),
        response_timeout: Some(Duration::from_millis(200)),
        ..RedisStoreOptions::default()
    }
}

/// Answers the commands of one connection until either side closes it.
pub(crate) fn serve(stream: TcpStream, responder: &Responder) {
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
pub(crate) fn read_command(reader: &mut impl BufRead) -> Option<Vec<Vec<u8>>> {
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
pub(crate) fn read_header(reader: &mut impl BufRead, kind: u8) -> Option<usize> {
    let mut line = Vec::new();
    reader.read_until(b'\n', &mut line).ok()?;
    let line = line.strip_suffix(b"\r\n")?.strip_prefix(&[kind])?;
    std::str::from_utf8(line).ok()?.parse().ok()
}

/// Whether a command is one redis-rs sends while setting up a connection.
pub(crate) fn is_setup(command: &[Vec<u8>]) -> bool {
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
pub(crate) struct Script {
    pub(crate) replies: Vec<Reply>,
    /// Whether the connection set-up (`CLIENT SETINFO`) takes replies from
    /// the script too; otherwise it gets `+OK`.
    pub(crate) setup_scripted: bool,
    pub(crate) next: AtomicUsize,
}

impl Script {
    pub(crate) fn reset(&self) {
        self.next.store(0, Ordering::SeqCst);
    }

    pub(crate) fn answer(&self, command: &[Vec<u8>]) -> Reply {
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
pub(crate) enum Value {
    Simple(Vec<u8>),
    Error(Vec<u8>),
    Int(i64),
    Bulk(Vec<u8>),
    NullBulk,
    NullArray,
    Array(Vec<Value>),
}

impl Value {
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
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

    pub(crate) fn bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(&mut out);
        out
    }
}

pub(crate) fn line(out: &mut Vec<u8>, kind: u8, text: &[u8]) {
    out.push(kind);
    out.extend_from_slice(text);
    out.extend_from_slice(b"\r\n");
}

/// Error codes Redis sends, and a few it does not.
pub(crate) const CODES: &[&str] = &[
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
pub(crate) fn line_bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    vec(
        any::<u8>().prop_filter("no CR or LF", |b| *b != b'\r' && *b != b'\n'),
        0..max,
    )
}

/// An error line: a known code and printable text, a redirection, or any
/// bytes after the `-`.
pub(crate) fn error_text() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => (prop::sample::select(CODES), "[ -~]{0,40}")
            .prop_map(|(code, text)| format!("{code} {text}").into_bytes()),
        1 => prop::sample::select(CODES).prop_map(|code| code.as_bytes().to_vec()),
        1 => Just(b"MOVED 1 127.0.0.1:1".to_vec()),
        1 => Just(b"ASK 1 127.0.0.1:1".to_vec()),
        1 => line_bytes(24),
    ]
}

pub(crate) fn value() -> impl Strategy<Value = Value> {
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

pub(crate) fn reply() -> impl Strategy<Value = Reply> {
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
pub(crate) fn first_reply() -> impl Strategy<Value = Reply> {
    prop_oneof![
        1 => error_text().prop_map(|text| Reply::Bytes(Value::Error(text).bytes())),
        1 => reply(),
    ]
}
