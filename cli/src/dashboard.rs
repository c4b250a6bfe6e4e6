//! `redisutil dashboard`: one web page with the channels, a chart of
//! their waiting messages sampled by the server, and their dead letters
//! with buttons to requeue or purge them. Plain HTTP/1.1 on std, one
//! thread per connection; the page has no dependency (no CDN, no build).
//!
//! Safety: it listens on 127.0.0.1 unless told otherwise; a change is a
//! POST carrying the token in `X-Redisutil-Token` (a header no other site
//! can make a browser send without a CORS preflight, which is never
//! granted) with a JSON body; without a token it is read-only; a Host
//! that is not the address it listens on is refused (DNS rebinding).

use std::collections::{BTreeMap, VecDeque};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redisutil::{ChannelError, LeaseStore, Peer, RedisChannel};
use serde_json::{Value, json};

use crate::{Failure, dead_json, stats_json};

const PAGE: &str = include_str!("dashboard.html");
/// Samples kept: 5 minutes at one every 2 s.
const SAMPLES: usize = 150;
const MAX_HEAD: usize = 16 * 1024;
const MAX_BODY: usize = 64 * 1024;

struct Dashboard<S> {
    store: S,
    prefix: String,
    max: usize,
    token: Option<String>,
    every: Duration,
    listening: SocketAddr,
    /// (when, waiting messages per channel).
    history: Mutex<VecDeque<(u64, BTreeMap<String, u64>)>>,
}

/// Serves until the process ends; says where on standard output first.
pub fn serve<S: LeaseStore + Clone + Send + Sync + 'static>(
    store: S,
    prefix: String,
    max: usize,
    listen: SocketAddr,
    token: Option<String>,
    every: Duration,
) -> Result<(), Failure> {
    let listener = TcpListener::bind(listen)?;
    let listening = listener.local_addr()?;
    // Refused before anything is served.
    redisutil::channel_stats(&store, &prefix, 1)?;
    println!("redisutil dashboard on http://{listening}/");
    if token.is_none() {
        println!("read-only: no token (REDISUTIL_DASHBOARD_TOKEN or --token-file) was given");
    }
    std::io::stdout().flush()?;
    let dashboard = Arc::new(Dashboard {
        store,
        prefix,
        max,
        token,
        every,
        listening,
        history: Mutex::new(VecDeque::new()),
    });
    let sampler = Arc::clone(&dashboard);
    std::thread::spawn(move || {
        loop {
            sampler.sample();
            std::thread::sleep(sampler.every);
        }
    });
    for stream in listener.incoming().flatten() {
        let dashboard = Arc::clone(&dashboard);
        std::thread::spawn(move || dashboard.answer(stream));
    }
    Ok(())
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// A request, as far as the dashboard reads it.
struct Request {
    method: String,
    path: String,
    query: BTreeMap<String, String>,
    headers: BTreeMap<String, String>,
    body: Vec<u8>,
}

impl<S: LeaseStore + Clone> Dashboard<S> {
    fn sample(&self) {
        let Ok(stats) = redisutil::channel_stats(&self.store, &self.prefix, self.max) else {
            return;
        };
        let waiting = stats
            .into_iter()
            .map(|c| (c.name, c.to_server.depth + c.to_client.depth))
            .collect();
        let mut history = self.history.lock().unwrap_or_else(|e| e.into_inner());
        history.push_back((now_ms(), waiting));
        while history.len() > SAMPLES {
            history.pop_front();
        }
    }

    fn answer(&self, mut stream: TcpStream) {
        let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
        let (status, kind, body) = match read_request(&stream) {
            Err(message) => (
                400,
                "application/json",
                json!({ "error": message }).to_string(),
            ),
            Ok(request) => self.route(&request),
        };
        let reason = match status {
            200 => "OK",
            400 => "Bad Request",
            403 => "Forbidden",
            404 => "Not Found",
            405 => "Method Not Allowed",
            421 => "Misdirected Request",
            _ => "Internal Server Error",
        };
        let head = format!(
            "HTTP/1.1 {status} {reason}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\n\
             Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\nX-Frame-Options: DENY\r\n\
             Content-Security-Policy: default-src 'self'; script-src 'unsafe-inline'; \
             style-src 'unsafe-inline'; frame-ancestors 'none'\r\nConnection: close\r\n\r\n",
            body.len()
        );
        let _ = stream.write_all(head.as_bytes());
        let _ = stream.write_all(body.as_bytes());
    }

    fn route(&self, request: &Request) -> (u16, &'static str, String) {
        let error = |status: u16, message: &str| {
            (
                status,
                "application/json",
                json!({ "error": message }).to_string(),
            )
        };
        if !self.host_is_ours(request.headers.get("host").map(String::as_str)) {
            return error(
                421,
                "this dashboard answers only to the address it listens on",
            );
        }
        let answer = match (request.method.as_str(), request.path.as_str()) {
            ("GET", "/") => return (200, "text/html; charset=utf-8", PAGE.to_owned()),
            ("GET", "/api/channels") => self.channels(),
            ("GET", "/api/dead") => self.dead(request),
            ("POST", "/api/requeue" | "/api/purge") => match self.allowed(request) {
                Err(refused) => return error(403, &refused),
                Ok(()) => self.change(request),
            },
            (_, "/" | "/api/channels" | "/api/dead" | "/api/requeue" | "/api/purge") => {
                return error(405, "method not allowed");
            }
            _ => return error(404, "not found"),
        };
        match answer {
            Ok(value) => (200, "application/json", value.to_string()),
            Err(refused) => error(refused.status, &refused.message),
        }
    }

    /// Whether `host` names the address the dashboard listens on.
    fn host_is_ours(&self, host: Option<&str>) -> bool {
        let Some(host) = host else { return false };
        let port = self.listening.port();
        if !self.listening.ip().is_loopback() && !self.listening.ip().is_unspecified() {
            return host == self.listening.to_string();
        }
        if self.listening.ip().is_unspecified() {
            return host.ends_with(&format!(":{port}"));
        }
        ["127.0.0.1", "localhost", "[::1]"]
            .iter()
            .any(|name| host == format!("{name}:{port}"))
    }

    /// A change needs the token, in its header, and a JSON body.
    fn allowed(&self, request: &Request) -> Result<(), String> {
        let Some(token) = &self.token else {
            return Err("read-only: the dashboard was started without a token".into());
        };
        let given = request
            .headers
            .get("x-redisutil-token")
            .map_or("", String::as_str);
        // Compared without stopping at the first difference.
        let same = given.len() == token.len()
            && given
                .bytes()
                .zip(token.bytes())
                .fold(0u8, |d, (a, b)| d | (a ^ b))
                == 0;
        if !same {
            return Err("a change needs the dashboard's token".into());
        }
        let json = request
            .headers
            .get("content-type")
            .is_some_and(|kind| kind.starts_with("application/json"));
        if !json {
            return Err("a change is a JSON body".into());
        }
        Ok(())
    }

    fn channels(&self) -> Result<Value, Refused> {
        let stats = redisutil::channel_stats(&self.store, &self.prefix, self.max)?;
        let history = self.history.lock().unwrap_or_else(|e| e.into_inner());
        Ok(json!({
            "prefix": self.prefix,
            "every_s": self.every.as_secs_f64(),
            "read_only": self.token.is_none(),
            "channels": stats.iter().map(|c| json!({
                "channel": c.name,
                "to_server": stats_json(&c.to_server),
                "to_client": stats_json(&c.to_client),
            })).collect::<Vec<_>>(),
            "history": history.iter().map(|(t, waiting)| json!({ "t_ms": t, "waiting": waiting })).collect::<Vec<_>>(),
        }))
    }

    /// The server end of a channel under the prefix.
    fn channel(&self, name: &str) -> Result<RedisChannel<S>, Refused> {
        if !name.starts_with(&self.prefix) {
            return Err(Refused::input(format!(
                "{name} is not under {}",
                self.prefix
            )));
        }
        Ok(RedisChannel::new(self.store.clone(), name, Peer::Server)?)
    }

    fn dead(&self, request: &Request) -> Result<Value, Refused> {
        let name = request.query.get("channel").map_or("", String::as_str);
        let letters = self.channel(name)?.dead_letters(100)?;
        Ok(Value::Array(letters.iter().map(dead_json).collect()))
    }

    fn change(&self, request: &Request) -> Result<Value, Refused> {
        let body: Value = serde_json::from_slice(&request.body)
            .map_err(|err| Refused::input(format!("the body is not JSON: {err}")))?;
        let name = body["channel"].as_str().unwrap_or("");
        let ids: Vec<String> = body["ids"]
            .as_array()
            .map(|ids| {
                ids.iter()
                    .filter_map(|id| id.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        if ids.is_empty() {
            return Err(Refused::input("no dead letter ids".into()));
        }
        let channel = self.channel(name)?;
        let done = if request.path == "/api/requeue" {
            format!("requeued {}", channel.requeue_dead_letters(&ids)?)
        } else {
            format!("purged {}", channel.purge_dead_letters(&ids)?)
        };
        Ok(json!({ "done": done }))
    }
}

/// Why a request was not answered, as an HTTP status.
struct Refused {
    status: u16,
    message: String,
}

impl Refused {
    fn input(message: String) -> Self {
        Self {
            status: 400,
            message,
        }
    }
}

/// A bad name or prefix is the request's fault (400); a store that
/// failed is the server's (500).
impl From<ChannelError> for Refused {
    fn from(err: ChannelError) -> Self {
        Self {
            status: if err.is_invalid_input() { 400 } else { 500 },
            message: err.to_string(),
        }
    }
}

fn read_request(stream: &TcpStream) -> Result<Request, String> {
    let mut reader = BufReader::new(stream.take((MAX_HEAD + MAX_BODY) as u64));
    let mut line = String::new();
    let mut read = 0;
    let mut next_line = |reader: &mut BufReader<_>, line: &mut String| -> Result<(), String> {
        line.clear();
        let n = reader.read_line(line).map_err(|e| e.to_string())?;
        read += n;
        if n == 0 || read > MAX_HEAD {
            return Err("a request head cut short or too long".into());
        }
        Ok(())
    };
    next_line(&mut reader, &mut line)?;
    let mut parts = line.split_whitespace();
    let (Some(method), Some(target)) = (parts.next(), parts.next()) else {
        return Err("not an HTTP request".into());
    };
    let (method, target) = (method.to_owned(), target.to_owned());
    let mut headers = BTreeMap::new();
    loop {
        next_line(&mut reader, &mut line)?;
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_owned());
        }
    }
    let length: usize = headers
        .get("content-length")
        .map_or(Ok(0), |n| n.parse())
        .map_err(|_| "a bad Content-Length".to_string())?;
    if length > MAX_BODY {
        return Err("a body too long".into());
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).map_err(|e| e.to_string())?;
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let query = query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (decode(k), decode(v)))
        .collect();
    Ok(Request {
        method,
        path: path.to_owned(),
        query,
        headers,
        body,
    })
}

/// Percent-decoding of a query part (`+` is a space).
fn decode(text: &str) -> String {
    let hex = |byte: u8| (byte as char).to_digit(16).map(|d| d as u8);
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%' && i + 2 < bytes.len())
            .then(|| Some(hex(bytes[i + 1])? << 4 | hex(bytes[i + 2])?))
            .flatten();
        match (bytes[i], escaped) {
            (_, Some(byte)) => {
                out.push(byte);
                i += 2;
            }
            (b'+', None) => out.push(b' '),
            (byte, None) => out.push(byte),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    #[test]
    fn query_parts_are_percent_decoded() {
        assert_eq!(super::decode("%2Fjobs%2Fa+b%zz%"), "/jobs/a b%zz%");
        assert_eq!(super::decode("%E2%82%AC%"), "€%");
    }
}
