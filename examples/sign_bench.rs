//! Signing micro-benchmark: microseconds per presigned request, SigV4 and
//! SigV2, plus SigV4 verification.
//!
//! Run with `cargo run --release --example sign_bench`. Set
//! `SIGN_BENCH_ROUNDS` to change the number of requests per figure (e.g. a
//! few hundred under `valgrind --tool=callgrind`, which counts instructions)
//! and `SIGN_BENCH_ONLY` to run only the figures whose name contains it:
//!
//! ```text
//! SIGN_BENCH_ROUNDS=1000 SIGN_BENCH_ONLY="sigv4 presign" valgrind --tool=callgrind \
//!     --toggle-collect='*Signer::presign*' target/release/examples/sign_bench
//! ```
//!
//! counts the instructions of 1100 presigns (100 warm-up rounds, then 1000).

use std::hint::black_box;
use std::time::{Duration, Instant, UNIX_EPOCH};

use redisutil::proxy::{Credentials, SignatureVersion, Signer};

const DEFAULT_ROUNDS: u32 = 50_000;

fn rounds() -> u32 {
    std::env::var("SIGN_BENCH_ROUNDS")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(DEFAULT_ROUNDS)
}

fn request() -> http::Request<Vec<u8>> {
    http::Request::put(
        "http://127.0.0.1:2222/redisproxy/v1/HSET/hash%2Fname/field?n=3&w=2&r=2&expire=1000",
    )
    .header("host", "127.0.0.1:2222")
    .header("content-length", "7")
    .body(b"\"value\"".to_vec())
    .expect("request")
}

fn selected(name: &str) -> bool {
    std::env::var("SIGN_BENCH_ONLY").map_or(true, |only| name.contains(only.as_str()))
}

fn bench(name: &str, mut run: impl FnMut()) {
    if !selected(name) {
        return;
    }
    let rounds = rounds();
    for _ in 0..rounds / 10 {
        run();
    }
    let started = Instant::now();
    for _ in 0..rounds {
        run();
    }
    let per = started.elapsed().as_secs_f64() * 1e6 / f64::from(rounds);
    println!("{name:<14} {per:8.2} µs/request ({rounds} requests)");
}

fn main() {
    let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let credentials = Credentials::new("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY");
    let v4 = Signer::new(credentials.clone(), SignatureVersion::v4());
    let v2 = Signer::new(credentials, SignatureVersion::v2());
    let template = request();

    bench("sigv4 presign", || {
        let mut request = template.clone();
        v4.presign(&mut request, now).expect("signs");
        black_box(request);
    });
    bench("sigv2 presign", || {
        let mut request = template.clone();
        v2.presign(&mut request, now).expect("signs");
        black_box(request);
    });
    if selected("sigv4 verify") {
        let mut signed = template.clone();
        v4.presign(&mut signed, now).expect("signs");
        bench("sigv4 verify", || {
            v4.verify(black_box(&signed), now).expect("verifies");
        });
    }
    bench("clone only", || {
        black_box(template.clone());
    });
}
