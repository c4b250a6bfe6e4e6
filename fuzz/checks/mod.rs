//! The properties the fuzz targets check, one function per target, one
//! file per area: `channel.rs` (`channel_decode`, `channel_names`),
//! `proxy_response.rs`, `proxy_request.rs`, `sigv4.rs` (`sigv4_roundtrip`);
//! this file holds what they share. Used by the cargo-fuzz targets
//! (`fuzz_targets/*.rs`) and by the main crate's `tests/fuzz_corpus.rs`,
//! which replays every corpus file on stable Rust. Every function takes
//! arbitrary bytes and panics when a property breaks.

#![allow(dead_code, unused_imports)] // each includer uses some of these

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::header::{CONTENT_LENGTH, HOST};
use http::{HeaderName, HeaderValue, Method, Request, Response, StatusCode};
use redisutil::proxy::{
    AttemptFailure, CallOptions, Credentials, Error as ProxyError, FakeTransport, HttpTransport,
    MemoryProxy, Outcome, ProxyConfig, ProxyHost, RedisProxyClient, SignatureVersion, Signer,
    TransportError, VerifyError,
};
use redisutil::{
    ChannelError, ChannelName, ListStore, ManualClock, MemoryStore, Peer, RedisChannel,
    list_channels,
};
use serde::Deserialize;
use serde_json::Value;

mod channel;
mod proxy_request;
mod proxy_response;
mod sigv4;

pub use channel::{channel_decode, channel_names};
pub use proxy_request::proxy_request;
pub use proxy_response::proxy_response;
pub use sigv4::sigv4_roundtrip;

/// Splits `data` at the first `0xFF` byte (absent: everything is the first part).
fn split(data: &[u8]) -> (&[u8], &[u8]) {
    match data.iter().position(|&b| b == 0xFF) {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &[]),
    }
}

fn has_digit_run(data: &[u8], len: usize) -> bool {
    data.split(|byte| !byte.is_ascii_digit())
        .any(|run| run.len() >= len)
}

/// Reads structured values off the front of the fuzzer's bytes; past the
/// end every read gives zeros or empty slices.
struct Input<'a> {
    rest: &'a [u8],
}

impl<'a> Input<'a> {
    fn new(data: &'a [u8]) -> Self {
        Self { rest: data }
    }

    fn byte(&mut self) -> u8 {
        let (first, rest) = self
            .rest
            .split_first()
            .map_or((0, &[][..]), |(b, r)| (*b, r));
        self.rest = rest;
        first
    }

    fn u16(&mut self) -> u16 {
        u16::from_be_bytes([self.byte(), self.byte()])
    }

    fn u32(&mut self) -> u32 {
        u32::from_be_bytes([self.byte(), self.byte(), self.byte(), self.byte()])
    }

    fn u64(&mut self) -> u64 {
        (u64::from(self.u32()) << 32) | u64::from(self.u32())
    }

    /// The bytes up to the next `0xFF` (or the end), which is consumed.
    fn part(&mut self) -> &'a [u8] {
        let (part, rest) = split(self.rest);
        self.rest = rest;
        part
    }

    fn text(&mut self) -> String {
        String::from_utf8_lossy(self.part()).into_owned()
    }

    fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.rest)
    }
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
fn pct_encode(bytes: &[u8]) -> String {
    let mut out = String::new();
    for &byte in bytes {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Percent-decodes to bytes; `None` on a bad escape.
fn pct_decode(text: &str) -> Option<Vec<u8>> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        if bytes[at] == b'%' {
            let hex = std::str::from_utf8(bytes.get(at + 1..at + 3)?).ok()?;
            out.push(
                u8::from_str_radix(hex, 16)
                    .ok()
                    .filter(|_| hex.bytes().all(|b| b.is_ascii_hexdigit()))?,
            );
            at += 3;
        } else {
            out.push(bytes[at]);
            at += 1;
        }
    }
    Some(out)
}

fn fuzz_time(input: &mut Input<'_>) -> Option<SystemTime> {
    let seconds = input.u64();
    let nanos = input.u32() % 1_000_000_000;
    UNIX_EPOCH.checked_add(Duration::new(seconds, nanos))
}

fn version(v2: bool, expires: Duration) -> SignatureVersion {
    let mut version = if v2 {
        SignatureVersion::v2()
    } else {
        SignatureVersion::v4()
    };
    match &mut version {
        SignatureVersion::V4 { expires: e, .. } | SignatureVersion::V2 { expires: e } => {
            *e = expires;
        }
        _ => unreachable!("two versions"),
    }
    version
}

const PROXY_HOST: &str = "127.0.0.1:2222";
const METHODS: [&str; 6] = ["GET", "PUT", "DELETE", "POST", "HEAD", "PATCH"];
