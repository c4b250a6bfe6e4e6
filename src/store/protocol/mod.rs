//! What the Redis drivers share, without I/O: the wire format
//! ([`resp`]), requests ([`Request`]), where a call goes ([`Route`],
//! [`Node`]), how an exchange fails ([`Failure`], [`OpenError`]), the
//! call and its policy ([`exchange`]), and the operations as calls
//! ([`ops`]).
//!
//! A driver (blocking, or async) owns the sockets and does what the
//! I/O-free parts ask: open a connection to a node, send bytes, read
//! replies, pause. Every decision (which node, what an error reply means,
//! whether a request is sent again) is taken here, once, for both.

pub(crate) mod exchange;
pub(crate) mod ops;
pub(crate) mod resp;

use std::fmt;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use resp::{ProtocolError, Reply};

use super::StoreError;
use super::script::Script;

/// The TLS configuration connections are opened with.
#[cfg(feature = "tls-rustls")]
pub(crate) type TlsConfig = Arc<rustls::ClientConfig>;
/// Without the feature there is none (`rediss://` is refused when the
/// store is built).
#[cfg(not(feature = "tls-rustls"))]
pub(crate) type TlsConfig = std::convert::Infallible;

/// A server a store sends commands to, by the name errors show: `host:port`
/// of a cluster node, the address of a lone server, the master of a
/// Sentinel service. Each has its own connections.
#[derive(Clone, PartialEq, Eq, Hash)]
pub(crate) struct Node(Arc<str>);

impl Node {
    pub(crate) fn new(name: impl Into<Arc<str>>) -> Self {
        Self(name.into())
    }

    pub(crate) fn name(&self) -> &str {
        &self.0
    }
}

/// A map by node, looked up on every call: its hash is FNV-1a, about four
/// instructions a byte of the node's name, where the standard SipHash
/// cost a call about 250 in all. Its keys are the nodes of the store's own
/// deployment (its address, its cluster's masters), not input an attacker
/// picks, which is what SipHash guards against.
pub(crate) type NodeMap<V> =
    std::collections::HashMap<Node, V, std::hash::BuildHasherDefault<NodeHasher>>;

/// FNV-1a (64 bits), for [`NodeMap`].
pub(crate) struct NodeHasher(u64);

impl Default for NodeHasher {
    fn default() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }
}

impl std::hash::Hasher for NodeHasher {
    fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 = (self.0 ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3);
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

impl fmt::Display for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Node({})", self.0)
    }
}

/// Where a call goes.
#[derive(Clone, Debug)]
#[cfg_attr(
    not(feature = "cluster"),
    allow(dead_code, reason = "one node takes every call but a cluster's")
)]
pub(crate) enum Route {
    /// The node that holds this key (on a cluster, the master of its slot).
    Key(String),
    /// This node.
    Node(Node),
    /// Every master, one after the other (the reply is an array of
    /// `[node name, reply]` pairs).
    EveryMaster,
}

/// How long a call waits for its reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Wait {
    /// The response timeout.
    Response,
    /// A blocking command that may wait this long on the server (`None`:
    /// without limit) before the response timeout starts.
    Blocking(Option<Duration>),
}

impl Wait {
    /// How long a read of the reply may wait, given the response timeout.
    pub(crate) fn read_timeout(self, response_timeout: Option<Duration>) -> Option<Duration> {
        match self {
            Self::Response => response_timeout,
            Self::Blocking(block) => {
                block.and_then(|block| response_timeout.map(|margin| block.saturating_add(margin)))
            }
        }
    }

    pub(crate) fn blocks(self) -> bool {
        matches!(self, Self::Blocking(_))
    }
}

/// A command, or a transaction of commands, packed as Redis reads it. A
/// script is packed as `EVALSHA`, and can be packed again as `EVAL` with
/// its text when the server does not know it yet (`NOSCRIPT`).
pub(crate) struct Request {
    bytes: Vec<u8>,
    /// The script: where in `bytes` its command begins, and where the part
    /// after its SHA-1 begins (the key count, the keys and the arguments,
    /// the same for `EVAL`).
    script: Option<(&'static Script, usize, usize)>,
    /// How many commands a transaction (`MULTI` … `EXEC`) holds; 0 for one
    /// command.
    queued: usize,
}

impl Request {
    /// The command `args`.
    pub(crate) fn new<A: AsRef<[u8]>>(args: &[A]) -> Self {
        let mut bytes = Vec::with_capacity(args.iter().map(|a| a.as_ref().len() + 16).sum());
        resp::write_command(&mut bytes, args);
        Self {
            bytes,
            script: None,
            queued: 0,
        }
    }

    /// The command `name head… values…`, written straight into one buffer.
    pub(crate) fn with_values(name: &str, head: &[&[u8]], values: &[&[u8]]) -> Self {
        let size = values.iter().map(|v| v.len() + 16).sum::<usize>() + 64;
        let mut bytes = Vec::with_capacity(size);
        resp::write_array_header(&mut bytes, 1 + head.len() + values.len());
        resp::write_bulk(&mut bytes, name.as_bytes());
        for arg in head.iter().chain(values) {
            resp::write_bulk(&mut bytes, arg);
        }
        Self {
            bytes,
            script: None,
            queued: 0,
        }
    }

    /// `EVALSHA sha numkeys keys… args…`.
    pub(crate) fn script<K: AsRef<[u8]>, A: AsRef<[u8]>>(
        script: &'static Script,
        keys: &[K],
        args: &[A],
    ) -> Self {
        let size = args.iter().map(|a| a.as_ref().len() + 16).sum::<usize>() + 128;
        let mut bytes = Vec::with_capacity(size);
        resp::write_array_header(&mut bytes, 3 + keys.len() + args.len());
        resp::write_bulk(&mut bytes, b"EVALSHA");
        resp::write_bulk(&mut bytes, script.sha().as_bytes());
        let rest = bytes.len();
        resp::write_bulk(&mut bytes, keys.len().to_string().as_bytes());
        for key in keys {
            resp::write_bulk(&mut bytes, key.as_ref());
        }
        for arg in args {
            resp::write_bulk(&mut bytes, arg.as_ref());
        }
        Self {
            bytes,
            script: Some((script, 0, rest)),
            queued: 0,
        }
    }

    /// `MULTI`, the commands, `EXEC`: run at once, nothing in between.
    /// Its reply is read by [`Request::reply`].
    pub(crate) fn transaction(commands: Vec<Request>) -> Self {
        let mut bytes =
            Vec::with_capacity(commands.iter().map(|c| c.bytes.len()).sum::<usize>() + 32);
        resp::write_command(&mut bytes, &["MULTI"]);
        let mut script = None;
        for command in &commands {
            if let Some((text, at, rest)) = command.script {
                script = Some((text, bytes.len() + at, bytes.len() + rest));
            }
            bytes.extend_from_slice(&command.bytes);
        }
        resp::write_command(&mut bytes, &["EXEC"]);
        Self {
            bytes,
            script,
            queued: commands.len(),
        }
    }

    pub(crate) fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// How many replies the request gets.
    pub(crate) fn replies(&self) -> usize {
        match self.queued {
            0 => 1,
            queued => queued + 2,
        }
    }

    /// The request's reply, of the [`replies`](Self::replies) it got: of
    /// a transaction, the first error (a command refused when queued, or
    /// the first command's error when run), else `EXEC`'s array.
    pub(crate) fn reply(&self, mut replies: Vec<Reply>) -> Reply {
        if self.queued == 0 {
            return replies.pop().unwrap_or(Reply::Nil);
        }
        let exec = replies.pop();
        if let Some(refused) = replies.into_iter().find(|r| matches!(r, Reply::Error(_))) {
            return refused;
        }
        match exec {
            Some(Reply::Array(mut ran)) if matches!(ran.first(), Some(Reply::Error(_))) => {
                ran.swap_remove(0)
            }
            Some(reply) => reply,
            None => Reply::Nil,
        }
    }

    /// Packs a script's request again as `EVAL` with its text; `false`
    /// when it is no script, or is `EVAL` already.
    pub(crate) fn as_eval(&mut self) -> bool {
        let Some((script, at, rest)) = self.script.take() else {
            return false;
        };
        let header_end = self.bytes[at..]
            .windows(2)
            .position(|pair| pair == b"\r\n")
            .map_or(at, |end| at + end + 2);
        let mut bytes = Vec::with_capacity(self.bytes.len() + script.text().len());
        bytes.extend_from_slice(&self.bytes[..header_end]);
        resp::write_bulk(&mut bytes, b"EVAL");
        resp::write_bulk(&mut bytes, script.text().as_bytes());
        bytes.extend_from_slice(&self.bytes[rest..]);
        self.bytes = bytes;
        true
    }
}

impl fmt::Debug for Request {
    /// The command's name only: its arguments may be a message's contents.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = resp::read_all(&self.bytes).ok().and_then(|(replies, _)| {
            match replies.into_iter().next() {
                Some(resp::Reply::Array(args)) => match args.into_iter().next() {
                    Some(resp::Reply::Bulk(name)) => {
                        Some(String::from_utf8_lossy(&name).into_owned())
                    }
                    _ => None,
                },
                _ => None,
            }
        });
        write!(f, "Request({})", name.as_deref().unwrap_or("?"))
    }
}

/// How an exchange of a request and its replies failed.
#[derive(Debug)]
pub(crate) enum Failure {
    /// The request did not leave whole (the connection was closed, or the
    /// write failed): the server never ran it.
    NotSent(io::Error),
    /// The request left, and the connection broke before the reply came:
    /// the server may have run it.
    Lost(io::Error),
    /// No reply within this timeout: the server may have run it.
    TimedOut(Duration),
    /// The server sent bytes that are no RESP reply.
    Garbled(ProtocolError),
}

/// Why a connection could not be opened.
#[derive(Debug)]
pub(crate) enum OpenError {
    /// The time ran out.
    TimedOut,
    /// The TLS handshake did not end in time: often a port without TLS.
    #[cfg_attr(not(feature = "tls-rustls"), allow(dead_code, reason = "TLS only"))]
    TlsTimedOut,
    /// The name did not resolve, or resolved to nothing.
    Resolve(io::Error),
    /// The connection was refused or broke.
    Io(io::Error),
    /// The TLS handshake failed, in rustls's words.
    Tls(String),
}

impl OpenError {
    /// The error of a connect to `node` (named `addr` in errors) that took
    /// `timeout` at most.
    pub(crate) fn into_store_error(self, addr: &str, node: &str, timeout: Duration) -> StoreError {
        let connection = |message: String, source: Option<io::Error>| StoreError::Connection {
            addr: addr.to_owned(),
            message,
            source: source.map(|err| Box::new(err) as super::BoxError),
        };
        let at = if node == addr {
            String::new()
        } else {
            format!("{node}: ")
        };
        match self {
            Self::TimedOut => StoreError::Timeout {
                addr: addr.to_owned(),
                timeout,
            },
            Self::TlsTimedOut => connection(
                format!("{at}no answer to the TLS handshake within {timeout:?}: is it a TLS port?"),
                None,
            ),
            Self::Resolve(err) => {
                connection(format!("{at}cannot resolve the host: {err}"), Some(err))
            }
            Self::Io(err) => connection(format!("{at}{err}"), Some(err)),
            Self::Tls(why) => connection(
                format!(
                    "{at}the TLS handshake failed: {why} (is it a TLS port, with a certificate you trust?)"
                ),
                None,
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::script::TAKE_LAST;

    fn commands(request: &Request) -> Vec<Vec<String>> {
        let (replies, _) = resp::read_all(request.bytes()).unwrap();
        replies
            .into_iter()
            .map(|command| match command {
                Reply::Array(args) => args
                    .into_iter()
                    .map(|arg| match arg {
                        Reply::Bulk(arg) => String::from_utf8(arg).unwrap(),
                        other => panic!("{other:?}"),
                    })
                    .collect(),
                other => panic!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn a_transaction_sends_its_script_as_eval_in_place() {
        let mut request = Request::transaction(vec![
            Request::script(&TAKE_LAST, &["k"], &["a"]),
            Request::new(&["LRANGE", "k", "0", "-1"]),
        ]);
        assert_eq!(request.replies(), 4);
        let sha = TAKE_LAST.sha().to_owned();
        assert_eq!(
            commands(&request),
            [
                vec!["MULTI"],
                vec!["EVALSHA", &sha, "1", "k", "a"],
                vec!["LRANGE", "k", "0", "-1"],
                vec!["EXEC"],
            ]
        );
        assert!(request.as_eval());
        assert!(!request.as_eval(), "EVAL already");
        assert_eq!(
            commands(&request),
            [
                vec!["MULTI"],
                vec!["EVAL", TAKE_LAST.text(), "1", "k", "a"],
                vec!["LRANGE", "k", "0", "-1"],
                vec!["EXEC"],
            ]
        );
        let mut single = Request::script(&TAKE_LAST, &["k"], &["a"]);
        assert_eq!(single.replies(), 1);
        assert!(single.as_eval());
        assert_eq!(
            commands(&single),
            [vec!["EVAL", TAKE_LAST.text(), "1", "k", "a"]]
        );
    }

    #[test]
    fn a_transaction_answers_its_first_error_or_what_exec_ran() {
        let request = Request::transaction(vec![
            Request::new(&["GET", "a"]),
            Request::new(&["GET", "b"]),
        ]);
        let ok = || Reply::Status("OK".into());
        let queued = || Reply::Status("QUEUED".into());
        let error = |text: &str| Reply::Error(text.into());
        let ran = Reply::Array(vec![Reply::Bulk(b"1".to_vec()), Reply::Nil]);
        assert_eq!(
            request.reply(vec![ok(), queued(), queued(), ran.clone()]),
            ran
        );
        // Refused when queued (a redirection): that error, not EXECABORT.
        let moved = error("MOVED 1 127.0.0.1:7001");
        assert_eq!(
            request.reply(vec![ok(), moved.clone(), queued(), error("EXECABORT")]),
            moved
        );
        // The first command's error when run (a script the server lacks).
        let noscript = error("NOSCRIPT No matching script");
        assert_eq!(
            request.reply(vec![
                ok(),
                queued(),
                queued(),
                Reply::Array(vec![noscript.clone(), Reply::Nil])
            ]),
            noscript
        );
        assert_eq!(
            request.reply(vec![ok(), queued()]),
            Reply::Status("QUEUED".into()),
            "cut short"
        );
    }
}
