//! Signing micro-benchmark: microseconds per presigned request, SigV4 and
//! SigV2, plus SigV4 verification.
//!
//! Run with `cargo run --release --example sign_bench`.

use std::hint::black_box;
use std::time::{Duration, Instant, UNIX_EPOCH};

use redisutil::proxy::{Credentials, SignatureVersion, Signer};

const ROUNDS: u32 = 50_000;

fn request() -> http::Request<Vec<u8>> {
    http::Request::put(
        "http://127.0.0.1:2222/redisproxy/v1/HSET/hash%2Fname/field?n=3&w=2&r=2&expire=1000",
    )
    .header("host", "127.0.0.1:2222")
    .header("content-length", "7")
    .body(b"\"value\"".to_vec())
    .expect("request")
}

fn bench(name: &str, mut run: impl FnMut()) {
    for _ in 0..ROUNDS / 10 {
        run();
    }
    let started = Instant::now();
    for _ in 0..ROUNDS {
        run();
    }
    let per = started.elapsed().as_secs_f64() * 1e6 / f64::from(ROUNDS);
    println!("{name:<14} {per:8.2} µs/request ({ROUNDS} requests)");
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
    let mut signed = template.clone();
    v4.presign(&mut signed, now).expect("signs");
    bench("sigv4 verify", || {
        v4.verify(black_box(&signed), now).expect("verifies");
    });
    bench("clone only", || {
        black_box(template.clone());
    });
}
