//! The async proxy client against the blocking one (feature `hyper`):
//! keep-alive `get` over loopback HTTP, `AsyncRedisProxyClient` on
//! `HyperTransport` (a current-thread tokio runtime) and
//! `RedisProxyClient` on `UreqTransport`, to the same test HTTP/1.1 server
//! in front of the same SigV4-checking `MemoryProxy`, one request at a
//! time, runs alternating; and the async client with 8 calls in flight on
//! one thread, which the blocking client cannot do without 8 threads.
//!
//! Every figure is the best of three runs.

use std::hint::black_box;
use std::time::Instant;

use redisutil::proxy::aio::AsyncRedisProxyClient;
use redisutil::proxy::{
    HyperTransport, MemoryProxy, ProxyHost, RedisProxyClient, SignatureVersion, Signer,
    UreqTransport,
};

use super::proxy::{Value, config, credentials, server, value};

const RUNS: usize = 3;
/// Requests per run.
const REQUESTS: u32 = 5_000;
/// Calls in flight at once in the concurrent run.
const IN_FLIGHT: u32 = 8;

/// Prints the table.
pub fn run() {
    let proxy = MemoryProxy::builder()
        .signer(Signer::new(credentials(), SignatureVersion::v4()))
        .build();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let connect_async = |host: &ProxyHost| {
        AsyncRedisProxyClient::<HyperTransport>::connect(config(host.clone())).expect("client")
    };
    let connect_blocking = |host: &ProxyHost| {
        RedisProxyClient::<UreqTransport>::connect(config(host.clone())).expect("client")
    };
    {
        let server = server(&proxy);
        connect_blocking(&server.host())
            .set("bench-key", &value())
            .expect("set");
    }

    let (mut nonblocking, mut blocking, mut concurrent) = (0.0f64, 0.0f64, 0.0f64);
    for _ in 0..RUNS {
        let server = server(&proxy);
        let host = server.host();
        let client = connect_async(&host);
        let started = Instant::now();
        runtime.block_on(async {
            for _ in 0..REQUESTS {
                black_box(client.get::<Value>("bench-key").await.expect("get"));
            }
        });
        nonblocking = nonblocking.max(f64::from(REQUESTS) / started.elapsed().as_secs_f64());

        let client = connect_blocking(&host);
        let started = Instant::now();
        for _ in 0..REQUESTS {
            black_box(client.get::<Value>("bench-key").expect("get"));
        }
        blocking = blocking.max(f64::from(REQUESTS) / started.elapsed().as_secs_f64());

        let client = connect_async(&host);
        let started = Instant::now();
        runtime.block_on(async {
            let mut tasks = tokio::task::JoinSet::new();
            for _ in 0..IN_FLIGHT {
                let client = client.clone();
                tasks.spawn(async move {
                    for _ in 0..REQUESTS / IN_FLIGHT {
                        black_box(client.get::<Value>("bench-key").await.expect("get"));
                    }
                });
            }
            while let Some(done) = tasks.join_next().await {
                done.expect("no panic");
            }
        });
        concurrent = concurrent.max(f64::from(REQUESTS) / started.elapsed().as_secs_f64());
        assert_eq!(
            server.requests(),
            3 * REQUESTS as usize,
            "every request served"
        );
    }

    println!(
        "\nasync proxy client (HyperTransport, current-thread runtime) against the blocking one \
         (UreqTransport), keep-alive `get` over loopback HTTP, SigV4, best of {RUNS} × {REQUESTS}; \
         requests/s\n"
    );
    println!(
        "| async, one call at a time | blocking | ratio | async, {IN_FLIGHT} calls in flight on one thread | ratio to blocking |"
    );
    println!("|---|---|---|---|---|");
    println!(
        "| {nonblocking:.0} | {blocking:.0} | {:.2} | {concurrent:.0} | {:.2} |",
        nonblocking / blocking,
        concurrent / blocking
    );
}
