//! Failover and retry: how one call walks hosts, rounds and clusters.
//! (What goes on the wire is [`wire`](super::wire)'s.)
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

use http::header::{CONTENT_LENGTH, HOST, LOCATION};
use http::{HeaderValue, Request, StatusCode};

use crate::proxy::answered::Answered;
use crate::proxy::client::RedisProxyClient;
use crate::proxy::config::{CallOptions, ProxyHost};
use crate::proxy::error::{Attempt, AttemptFailure, ClusterFailure, Error};
use crate::proxy::redact::redact;
use crate::proxy::transport::HttpTransport;
use crate::proxy::wire::{Command, build_path, write_query};

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

impl<T: HttpTransport> RedisProxyClient<T> {
    /// Path and query of `op`, the same for every host:
    /// `/redisproxy/v1/GET/k?n=3&w=2&r=2`, then `&expire=<ms>`.
    fn target(&self, op: &Op) -> String {
        let mut target = String::with_capacity(op.path.len() + 48);
        target.push_str(&op.path);
        write_query(&mut target, self.shared.config.nwr, op.expire_ms);
        target
    }

    /// The signed request for `op` (whose path and query are `target`) on
    /// `host`.
    fn request(&self, op: &Op, target: &str, host: &ProxyHost) -> Result<Request<Vec<u8>>, Error> {
        let scheme = if self.shared.config.https {
            "https://"
        } else {
            "http://"
        };
        let mut uri = String::with_capacity(scheme.len() + host.ip().len() + 8 + target.len());
        uri.push_str(scheme);
        let _ = write!(uri, "{host}");
        let authority = HeaderValue::from_str(&uri[scheme.len()..]).map_err(|error| {
            Error::InvalidArgument(format!("cannot build request for {host}: {error}"))
        })?;
        uri.push_str(target);
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
        if let Some(signer) = &self.shared.signer {
            signer
                .presign(&mut request, self.clock.now())
                .map_err(|source| Error::Sign { source })?;
        }
        Ok(request)
    }

    /// Runs `op` on one cluster; the 200 body and the host that sent it.
    /// Counts each request sent in `sent`.
    fn run_cluster(
        &self,
        hosts: &[ProxyHost],
        op: &Op,
        target: &str,
        retry: u32,
        sent: &mut u32,
    ) -> Result<(Vec<u8>, ProxyHost), Error> {
        let mut attempts = Vec::new();
        for round in 0..=retry {
            if round > 0 && !self.shared.config.round_backoff.is_zero() {
                self.clock.sleep(self.shared.config.round_backoff);
            }
            for host in hosts {
                let request = self.request(op, target, host)?;
                *sent = sent.saturating_add(1);
                let started = std::time::Instant::now();
                let answer = self.shared.transport.send(request);
                attempted(host, round, started, &answer);
                let failure = match answer {
                    Ok(response) => match response.status() {
                        StatusCode::OK => return Ok((response.into_body(), host.clone())),
                        StatusCode::NOT_FOUND => {
                            return Err(Error::KeyNotFound {
                                key: op.key.clone(),
                                host: host.clone(),
                            });
                        }
                        status @ (StatusCode::BAD_GATEWAY
                        | StatusCode::SERVICE_UNAVAILABLE
                        | StatusCode::GATEWAY_TIMEOUT) => AttemptFailure::Unavailable(status),
                        status => {
                            let location = response
                                .headers()
                                .get(LOCATION)
                                .map(|value| redact(&String::from_utf8_lossy(value.as_bytes())));
                            return Err(Error::ServerResponse {
                                status,
                                host: host.clone(),
                                body: excerpt(response.body()),
                                location,
                            });
                        }
                    },
                    Err(error) => AttemptFailure::Transport(error),
                };
                attempts.push(Attempt {
                    host: host.clone(),
                    round,
                    failure,
                });
            }
        }
        Err(Error::SendRequest { attempts })
    }

    fn retry(&self, options: &CallOptions) -> u32 {
        options.retry.unwrap_or(self.shared.config.retry)
    }

    /// Main cluster, then each backup, until one succeeds.
    pub(crate) fn read(&self, op: &Op, options: &CallOptions) -> Result<Answered<Vec<u8>>, Error> {
        debug_assert!(!op.command.is_write());
        let retry = self.retry(options);
        let target = self.target(op);
        let mut sent = 0;
        let mut last = None;
        for hosts in &self.shared.config.proxy_hosts {
            match self.run_cluster(hosts, op, &target, retry, &mut sent) {
                Ok((value, host)) => {
                    return Ok(Answered {
                        value,
                        host,
                        attempts: sent,
                    });
                }
                Err(error @ (Error::InvalidArgument(_) | Error::Sign { .. })) => return Err(error),
                Err(error) => last = Some(error),
            }
        }
        Err(last.unwrap_or_else(|| Error::InvalidArgument("no proxy hosts configured".into())))
    }

    /// Every cluster. `Ok` when every cluster took it (the host is the
    /// main cluster's); [`Error::PartialWrite`] when some but not all did;
    /// the main cluster's own error when none did.
    pub(crate) fn write(&self, op: &Op, options: &CallOptions) -> Result<Answered<()>, Error> {
        debug_assert!(op.command.is_write());
        let retry = self.retry(options);
        let target = self.target(op);
        let mut sent = 0;
        let mut first_host = None;
        let mut written = Vec::new();
        let mut failed = Vec::new();
        for (cluster, hosts) in self.shared.config.proxy_hosts.iter().enumerate() {
            let outcome = self.run_cluster(hosts, op, &target, retry, &mut sent);
            crate::trace::event!(
                DEBUG,
                cluster,
                written = outcome.is_ok(),
                error = outcome.as_ref().err().map(ToString::to_string),
                "proxy write on a cluster"
            );
            match outcome {
                Ok((_, host)) => {
                    first_host.get_or_insert(host);
                    written.push(cluster);
                }
                Err(error @ (Error::InvalidArgument(_) | Error::Sign { .. })) => return Err(error),
                Err(error) => failed.push(ClusterFailure {
                    cluster,
                    error: Box::new(error),
                }),
            }
        }
        match first_host {
            Some(host) if failed.is_empty() => Ok(Answered {
                value: (),
                host,
                attempts: sent,
            }),
            Some(_) => Err(Error::PartialWrite { written, failed }),
            None => Err(failed.into_iter().next().map_or_else(
                || Error::InvalidArgument("no proxy hosts configured".into()),
                |main| *main.error,
            )),
        }
    }
}

/// The event of one request to `host`: its status, or the kind of
/// transport failure, and how long it took. Never the URL (a presigned
/// one holds a live signature).
fn attempted(
    host: &ProxyHost,
    round: u32,
    started: std::time::Instant,
    answer: &Result<http::Response<Vec<u8>>, crate::proxy::TransportError>,
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
