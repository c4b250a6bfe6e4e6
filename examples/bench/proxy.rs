//! Proxy figures: `RedisProxyClient` over real HTTP on loopback
//! (`UreqTransport` → the test HTTP/1.1 server of `tests/proxy_support` →
//! `MemoryProxy::handle`), every request SigV4-signed by the client and
//! verified by the server; and the cost of signing alone.
//!
//! - keep-alive: one client (one ureq agent) for every request, so one
//!   connection carries them all;
//! - fresh connection: a new client, hence a new agent and a new TCP
//!   connection, for every request (the server counts the connections to
//!   prove it).
//!
//! Every figure is the best of three runs.

#[path = "../../tests/proxy_support/mod.rs"]
mod proxy_support;

use std::hint::black_box;
use std::time::{Duration, Instant, UNIX_EPOCH};

use proxy_support::TestServer;
use redisutil::proxy::{
    Credentials, MemoryProxy, ProxyConfig, ProxyHost, RedisProxyClient, SignatureVersion, Signer,
    UreqTransport,
};
use serde::{Deserialize, Serialize};

const RUNS: usize = 3;
/// Requests per keep-alive run.
const KEEP_ALIVE_REQUESTS: u32 = 5_000;
/// Requests per fresh-connection run (the test server accepts at most 256
/// connections in its life, so each run gets its own server).
const FRESH_REQUESTS: u32 = 200;
/// Presigns per signing run.
const SIGNS: u32 = 20_000;

type Client = RedisProxyClient<UreqTransport>;

const ACCESS_KEY: &str = "AKIDEXAMPLE";
const SECRET_KEY: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

#[derive(Serialize, Deserialize)]
pub struct Value {
    id: u64,
    body: String,
}

pub fn value() -> Value {
    Value {
        id: 1,
        body: "hello, proxy".into(),
    }
}

pub fn credentials() -> Credentials {
    Credentials::new(ACCESS_KEY, SECRET_KEY)
}

pub fn config(host: ProxyHost) -> ProxyConfig {
    ProxyConfig {
        credentials: Some(credentials()),
        ..ProxyConfig::with_hosts([host])
    }
}

/// A loopback server in front of `proxy`, which verifies SigV4.
pub fn server(proxy: &MemoryProxy) -> TestServer {
    let served = proxy.clone();
    TestServer::serve(move |request| served.handle(request))
}

/// Requests per second of `requests(host, count)`, which sends `count`
/// requests to `host`, and the connections the server accepted meanwhile;
/// best of three, each run on a fresh server.
fn rate(proxy: &MemoryProxy, count: u32, requests: impl Fn(&ProxyHost, u32)) -> (f64, usize) {
    (0..RUNS)
        .map(|_| {
            let server = server(proxy);
            let started = Instant::now();
            requests(&server.host(), count);
            let rate = f64::from(count) / started.elapsed().as_secs_f64();
            assert_eq!(server.requests(), count as usize, "every request served");
            (rate, server.connections())
        })
        .fold(
            (0.0, 0),
            |best, run| if run.0 > best.0 { run } else { best },
        )
}

/// Microseconds per presign of a typical request, best of three.
fn sign_cost(signer: &Signer) -> f64 {
    let template =
        http::Request::put("http://127.0.0.1:2222/redisproxy/v1/SET/bench-key?n=3&w=2&r=2")
            .header("host", "127.0.0.1:2222")
            .header("content-length", "30")
            .body(br#"{"id":1,"body":"hello, proxy"}"#.to_vec())
            .expect("request");
    let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    (0..RUNS)
        .map(|_| {
            let started = Instant::now();
            for _ in 0..SIGNS {
                let mut request = template.clone();
                signer.presign(&mut request, now).expect("signs");
                black_box(request);
            }
            started.elapsed().as_secs_f64() * 1e6 / f64::from(SIGNS)
        })
        .fold(f64::INFINITY, f64::min)
}

/// Prints the proxy table.
pub fn run() {
    let proxy = MemoryProxy::builder()
        .signer(Signer::new(credentials(), SignatureVersion::v4()))
        .build();
    let set = |client: &Client| client.set("bench-key", &value()).expect("set");
    let get = |client: &Client| {
        black_box(client.get::<Value>("bench-key").expect("get"));
    };
    let connect = |host: &ProxyHost| Client::connect(config(host.clone())).expect("client");
    {
        let server = server(&proxy);
        set(&connect(&server.host()));
    }

    println!(
        "\nproxy client over loopback HTTP (UreqTransport → test HTTP/1.1 server → MemoryProxy), \
         SigV4 signed and verified, best of {RUNS}; requests/s\n"
    );
    println!("| operation | keep-alive (one agent) | fresh connection per request | ratio |");
    println!("|---|---|---|---|");
    for (name, op) in [("set", &set as &dyn Fn(&Client)), ("get", &get)] {
        let (kept, kept_connections) = rate(&proxy, KEEP_ALIVE_REQUESTS, |host, count| {
            let client = connect(host);
            for _ in 0..count {
                op(&client);
            }
        });
        let (fresh, fresh_connections) = rate(&proxy, FRESH_REQUESTS, |host, count| {
            for _ in 0..count {
                op(&connect(host));
            }
        });
        println!(
            "| {name} | {kept:.0} ({KEEP_ALIVE_REQUESTS} requests, {kept_connections} connection) \
             | {fresh:.0} ({FRESH_REQUESTS} requests, {fresh_connections} connections) | {:.2} |",
            kept / fresh
        );
    }

    #[cfg(feature = "tls-rustls")]
    https(&proxy);

    let v4 = sign_cost(&Signer::new(credentials(), SignatureVersion::v4()));
    let v2 = sign_cost(&Signer::new(credentials(), SignatureVersion::v2()));
    println!("\nsigning cost, µs per request (presign, best of {RUNS} × {SIGNS}):\n");
    println!("| signature | µs/request |");
    println!("|---|---|");
    println!("| SigV4 | {v4:.2} |");
    println!("| SigV2 | {v2:.2} |");
}

/// Keep-alive requests per second over https against http, to the same
/// in-memory server through the same test HTTP server (feature `tls-rustls`).
#[cfg(feature = "tls-rustls")]
fn https(proxy: &MemoryProxy) {
    use super::support::tls::{Certs, server_config};
    use redisutil::TlsOptions;
    use redisutil::proxy::{UreqConfig, UreqTransport};

    let tls = TlsOptions {
        ca_pem: Some(Certs::get().pem("ca.pem")),
        client: None,
    };
    let best = |https: bool| {
        (0..RUNS)
            .map(|_| {
                let served = proxy.clone();
                let server = if https {
                    TestServer::serve_tls(
                        move |request| served.handle(request),
                        server_config("server", None),
                    )
                } else {
                    TestServer::serve(move |request| served.handle(request))
                };
                let host = ProxyHost::new("localhost", server.host().port());
                let config = ProxyConfig {
                    https,
                    ..config(host)
                };
                let transport = UreqTransport::with_tls(UreqConfig::default(), &tls).expect("tls");
                let client = Client::new(transport, config).expect("client");
                let started = Instant::now();
                for _ in 0..KEEP_ALIVE_REQUESTS {
                    black_box(client.get::<Value>("bench-key").expect("get"));
                }
                f64::from(KEEP_ALIVE_REQUESTS) / started.elapsed().as_secs_f64()
            })
            .fold(0.0, f64::max)
    };
    let (plain, secure) = (best(false), best(true));
    println!(
        "\nkeep-alive `get` over https against http, same server, best of {RUNS}; requests/s\n"
    );
    println!("| https | http | ratio |");
    println!("|---|---|---|");
    println!("| {secure:.0} | {plain:.0} | {:.2} |", secure / plain);
}
