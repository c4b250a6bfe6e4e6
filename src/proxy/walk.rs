//! Failover and retry: how one call walks hosts, rounds and clusters.
//! (What goes on the wire is [`wire`](super::wire)'s.) The walk is a state
//! machine without I/O, [`Walk`]: it makes each signed request, reads each
//! answer and says what comes next, so the blocking client and the async
//! one (feature `tokio`) share every decision, error and event; each only
//! sends and pauses in its own way.
//!
//! - Within a cluster: `for round in 0..=retry { for host in hosts { … } }`.
//!   A host that cannot be reached (any [`TransportError`]) or that answers
//!   502/503/504 is skipped to the next; any other answer ends the cluster's
//!   turn. So a cluster sees at most `(retry + 1) × hosts` attempts.
//! - Reads try the main cluster, then each backup in order, on any error
//!   (404 included), and return the first success or the last error.
//! - Writes and deletes go to every cluster, even after one fails. When
//!   some but not all clusters took one, the call fails with
//!   [`Error::PartialWrite`]; when none did, with the main cluster's error,
//!   whatever the number of clusters.
//!
//! [`TransportError`]: crate::proxy::TransportError

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use http::header::{CONTENT_LENGTH, HOST, LOCATION};
use http::{HeaderValue, Request, Response, StatusCode};

use crate::clock::Clock;
use crate::proxy::answered::Answered;
use crate::proxy::config::{CallOptions, ProxyConfig};
use crate::proxy::error::{Attempt, AttemptFailure, ClusterFailure, Error};
use crate::proxy::host::ProxyHost;
use crate::proxy::redact::redact;
use crate::proxy::sign::Signer;
use crate::proxy::transport::TransportError;
use crate::proxy::wire::{Command, build_path, write_query};

/// The transport, config and signer the clones of a client share.
pub(crate) struct Shared<T> {
    pub(crate) transport: T,
    pub(crate) config: ProxyConfig,
    pub(crate) signer: Option<Signer>,
}

impl<T> Shared<T> {
    /// The config checked, and its signer.
    pub(crate) fn new(transport: T, config: ProxyConfig) -> Result<Self, Error> {
        config.validate()?;
        let signer = config
            .credentials
            .clone()
            .map(|credentials| Signer::new(credentials, config.signature.clone()));
        Ok(Self {
            transport,
            config,
            signer,
        })
    }
}

/// The longest body excerpt kept in [`Error::ServerResponse`].
const EXCERPT_BYTES: usize = 512;

/// One call, ready to be sent to any host.
pub(crate) struct Op {
    command: Command,
    /// Encoded path, e.g. `/redisproxy/v1/HGET/h/k`.
    path: String,
    /// The `expire` query parameter, in milliseconds.
    expire_ms: Option<u128>,
    /// What [`Error::KeyNotFound`] names.
    key: String,
    body: Option<Vec<u8>>,
}

impl Op {
    /// Checks the arguments and builds the path.
    pub(crate) fn new(
        command: Command,
        arguments: &[&str],
        body: Option<Vec<u8>>,
        options: &CallOptions,
    ) -> Result<Self, Error> {
        debug_assert_eq!(arguments.len(), command.arity());
        if let Some(empty) = arguments.iter().position(|argument| argument.is_empty()) {
            let what = command.arguments()[empty];
            return Err(Error::InvalidArgument(format!("{what} must not be empty")));
        }
        let expire_ms = match options.expire {
            None => None,
            Some(_) if !command.has_body() => {
                return Err(Error::InvalidArgument(
                    "expire applies to set and hset only".into(),
                ));
            }
            Some(expire) if expire.as_millis() == 0 => {
                return Err(Error::InvalidArgument(
                    "expire must be at least 1 ms".into(),
                ));
            }
            Some(expire) => Some(expire.as_millis()),
        };
        Ok(Self {
            command,
            path: build_path(command, arguments),
            expire_ms,
            key: arguments.join("/"),
            body,
        })
    }
}

/// What a [`Walk`] wants done next.
pub(crate) enum Step {
    /// Send this request and hand its answer to [`Walk::answer`].
    Send(Request<Vec<u8>>),
    /// Pause this long (the backoff between two rounds, on the client's
    /// clock), then ask for the next step.
    Pause(Duration),
    /// The call is over: the 200 body (empty for a write) with the host
    /// that answered and the requests sent, or the error.
    Done(Result<Answered<Vec<u8>>, Error>),
}

/// One call's walk over clusters, rounds and hosts, as a state machine
/// that does no I/O: it makes each signed request, reads each answer and
/// decides what comes next, so the blocking and the async clients share
/// every decision (which host, when to pause, which error) and every
/// event. The driver loops: [`next`](Self::next) gives a [`Step`]; after a
/// [`Step::Send`] it passes the answer to [`answer`](Self::answer).
pub(crate) struct Walk<'a> {
    config: &'a ProxyConfig,
    signer: Option<&'a Signer>,
    clock: &'a dyn Clock,
    op: &'a Op,
    /// Path and query, the same for every host.
    target: String,
    retry: u32,
    /// Where the walk is: the cluster, its round, the host in the round.
    cluster: usize,
    round: u32,
    host: usize,
    /// Whether this round's backoff was asked for already.
    paused: bool,
    /// When the request in flight was made, if one is.
    in_flight: Option<Instant>,
    /// Requests sent, over every cluster.
    sent: u32,
    /// The failed attempts of the current cluster.
    attempts: Vec<Attempt>,
    /// A read's last cluster error.
    last: Option<Error>,
    /// A write's clusters: the main cluster's answering host, which took it,
    /// which did not.
    first_host: Option<ProxyHost>,
    written: Vec<usize>,
    failed: Vec<ClusterFailure>,
    /// The result, once known.
    done: Option<Result<Answered<Vec<u8>>, Error>>,
}

impl<'a> Walk<'a> {
    /// The walk of `op` with `options` on `shared`'s clusters, signing on
    /// `clock`.
    pub(crate) fn new<T>(
        shared: &'a Shared<T>,
        clock: &'a dyn Clock,
        op: &'a Op,
        options: &CallOptions,
    ) -> Self {
        let config = &shared.config;
        let mut target = String::with_capacity(op.path.len() + 48);
        target.push_str(&op.path);
        write_query(&mut target, config.nwr, op.expire_ms);
        Self {
            config,
            signer: shared.signer.as_ref(),
            clock,
            op,
            target,
            retry: options.retry.unwrap_or(config.retry),
            cluster: 0,
            round: 0,
            host: 0,
            paused: false,
            in_flight: None,
            sent: 0,
            attempts: Vec::new(),
            last: None,
            first_host: None,
            written: Vec::new(),
            failed: Vec::new(),
            done: None,
        }
    }

    /// What to do next.
    ///
    /// # Panics
    ///
    /// (In debug builds) when a request is in flight: its answer comes
    /// first.
    pub(crate) fn next(&mut self) -> Step {
        debug_assert!(self.in_flight.is_none(), "the answer comes first");
        loop {
            if let Some(result) = self.done.take() {
                return Step::Done(result);
            }
            let Some(hosts) = self.config.proxy_hosts.get(self.cluster) else {
                self.done = Some(self.finish());
                continue;
            };
            if self.host == hosts.len() {
                self.host = 0;
                self.round += 1;
                self.paused = false;
            }
            if self.round > self.retry {
                let attempts = std::mem::take(&mut self.attempts);
                self.cluster_done(Err(Error::SendRequest { attempts }));
                continue;
            }
            if self.round > 0 && self.host == 0 && !self.paused {
                self.paused = true;
                if !self.config.round_backoff.is_zero() {
                    return Step::Pause(self.config.round_backoff);
                }
            }
            match self.request(&hosts[self.host]) {
                Ok(request) => {
                    self.sent = self.sent.saturating_add(1);
                    self.in_flight = Some(Instant::now());
                    return Step::Send(request);
                }
                Err(error) => self.cluster_done(Err(error)),
            }
        }
    }

    /// The answer to the request of the last [`Step::Send`].
    pub(crate) fn answer(&mut self, answer: Result<Response<Vec<u8>>, TransportError>) {
        let started = self.in_flight.take().unwrap_or_else(Instant::now);
        let host = &self.config.proxy_hosts[self.cluster][self.host];
        let round = self.round;
        attempted(host, round, started, &answer);
        let failure = match answer {
            Ok(response) => match response.status() {
                StatusCode::OK => {
                    let host = host.clone();
                    return self.cluster_done(Ok((response.into_body(), host)));
                }
                StatusCode::NOT_FOUND => {
                    let error = Error::KeyNotFound {
                        key: self.op.key.clone(),
                        host: host.clone(),
                    };
                    return self.cluster_done(Err(error));
                }
                status @ (StatusCode::BAD_GATEWAY
                | StatusCode::SERVICE_UNAVAILABLE
                | StatusCode::GATEWAY_TIMEOUT) => AttemptFailure::Unavailable(status),
                status => {
                    let location = response
                        .headers()
                        .get(LOCATION)
                        .map(|value| redact(&String::from_utf8_lossy(value.as_bytes())));
                    let error = Error::ServerResponse {
                        status,
                        host: host.clone(),
                        body: excerpt(response.body()),
                        location,
                    };
                    return self.cluster_done(Err(error));
                }
            },
            Err(error) => AttemptFailure::Transport(error),
        };
        self.attempts.push(Attempt {
            host: host.clone(),
            round,
            failure,
        });
        self.host += 1;
    }

    /// The signed request for the walk's op on `host`.
    fn request(&self, host: &ProxyHost) -> Result<Request<Vec<u8>>, Error> {
        let op = self.op;
        let scheme = if self.config.https {
            "https://"
        } else {
            "http://"
        };
        let mut uri =
            String::with_capacity(scheme.len() + host.host().len() + 8 + self.target.len());
        uri.push_str(scheme);
        let _ = write!(uri, "{host}");
        let authority = HeaderValue::from_str(&uri[scheme.len()..]).map_err(|error| {
            Error::InvalidArgument(format!("cannot build request for {host}: {error}"))
        })?;
        uri.push_str(&self.target);
        let mut builder = Request::builder()
            .method(op.command.method())
            .uri(uri)
            .header(HOST, authority);
        if op.command.has_body() {
            let length = op.body.as_ref().map_or(0, Vec::len);
            builder = builder.header(CONTENT_LENGTH, length);
        }
        let mut request = builder
            .body(op.body.clone().unwrap_or_default())
            .map_err(|error| {
                Error::InvalidArgument(format!("cannot build request for {host}: {error}"))
            })?;
        if let Some(signer) = self.signer {
            signer
                .presign(&mut request, self.clock.now())
                .map_err(|source| Error::Sign { source })?;
        }
        Ok(request)
    }

    /// The current cluster's outcome: for a read, the call's result on a
    /// success or on an error no other cluster can mend, else on to the
    /// next cluster; for a write, recorded, and on to the next cluster.
    fn cluster_done(&mut self, outcome: Result<(Vec<u8>, ProxyHost), Error>) {
        let cluster = self.cluster;
        self.cluster += 1;
        self.round = 0;
        self.host = 0;
        self.paused = false;
        self.attempts.clear();
        if self.op.command.is_write() {
            crate::trace::event!(
                DEBUG,
                cluster,
                written = outcome.is_ok(),
                error = outcome.as_ref().err().map(ToString::to_string),
                "proxy write on a cluster"
            );
        }
        match outcome {
            Ok((value, host)) if !self.op.command.is_write() => {
                self.done = Some(Ok(Answered {
                    value,
                    host,
                    attempts: self.sent,
                }));
            }
            Ok((_, host)) => {
                self.first_host.get_or_insert(host);
                self.written.push(cluster);
            }
            Err(error @ (Error::InvalidArgument(_) | Error::Sign { .. })) => {
                self.done = Some(Err(error));
            }
            Err(error) if !self.op.command.is_write() => self.last = Some(error),
            Err(error) => self.failed.push(ClusterFailure {
                cluster,
                error: Box::new(error),
            }),
        }
    }

    /// The result once every cluster had its turn. A read: the last
    /// cluster's error. A write: `Ok` when every cluster took it (the host
    /// is the main cluster's); [`Error::PartialWrite`] when some but not
    /// all did; the main cluster's own error when none did.
    fn finish(&mut self) -> Result<Answered<Vec<u8>>, Error> {
        let no_hosts = || Error::InvalidArgument("no proxy hosts configured".into());
        if !self.op.command.is_write() {
            return Err(self.last.take().unwrap_or_else(no_hosts));
        }
        let failed = std::mem::take(&mut self.failed);
        match self.first_host.take() {
            Some(host) if failed.is_empty() => Ok(Answered {
                value: Vec::new(),
                host,
                attempts: self.sent,
            }),
            Some(_) => Err(Error::PartialWrite {
                written: std::mem::take(&mut self.written),
                failed,
            }),
            None => Err(failed
                .into_iter()
                .next()
                .map_or_else(no_hosts, |main| *main.error)),
        }
    }
}

/// The event of one request to `host`: its status, or the kind of
/// transport failure, and how long it took. Never the URL (a presigned
/// one holds a live signature).
fn attempted(
    host: &ProxyHost,
    round: u32,
    started: Instant,
    answer: &Result<Response<Vec<u8>>, TransportError>,
) {
    #[cfg(feature = "tracing")]
    {
        let elapsed_ms = started.elapsed().as_millis() as u64;
        match answer {
            Ok(response) => crate::trace::event!(
                DEBUG,
                %host,
                round,
                status = response.status().as_u16(),
                elapsed_ms,
                "proxy attempt answered"
            ),
            Err(error) => crate::trace::event!(
                WARN,
                %host,
                round,
                kind = ?error.kind(),
                elapsed_ms,
                "proxy attempt failed"
            ),
        }
    }
    #[cfg(not(feature = "tracing"))]
    let _ = (host, round, started, answer);
}

/// The start of `body` for an error: lossy UTF-8, signature values
/// scrubbed, at most [`EXCERPT_BYTES`] bytes (replacement characters and
/// `REDACTED` markers can make the text longer than the bytes it comes
/// from, so the bound applies to the text).
fn excerpt(body: &[u8]) -> String {
    let cut = &body[..body.len().min(EXCERPT_BYTES)];
    let mut text = redact(&String::from_utf8_lossy(cut));
    if text.len() > EXCERPT_BYTES {
        let mut end = EXCERPT_BYTES;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::{EXCERPT_BYTES, excerpt};

    /// Found by the `proxy_response` fuzz seeds: invalid UTF-8 became
    /// three-byte replacement characters, tripling the excerpt.
    #[test]
    fn excerpt_is_bounded_in_bytes() {
        assert!(excerpt(&[0xC3; 700]).len() <= EXCERPT_BYTES);
        assert!(excerpt(&[0xFF; 512]).len() <= EXCERPT_BYTES);
        let signatures = "Signature=x&".repeat(60);
        let text = excerpt(signatures.as_bytes());
        assert!(text.len() <= EXCERPT_BYTES);
        assert!(!text.contains("=x"));
        assert_eq!(excerpt(b"plain"), "plain");
    }
}
