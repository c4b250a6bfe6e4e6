//! Replays every committed fuzz corpus file (`fuzz/corpus/<target>/`)
//! through the same checks the cargo-fuzz targets run, on stable Rust.

#[path = "../fuzz/checks/mod.rs"]
mod checks;

use std::path::Path;

fn replay(target: &str, check: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|err| panic!("{}: {err}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no corpus for {target}");
    for file in &files {
        let data = std::fs::read(file).unwrap();
        let outcome = std::panic::catch_unwind(|| check(&data));
        assert!(
            outcome.is_ok(),
            "{target}: {} fails its check",
            file.display()
        );
    }
    println!("{target}: {} corpus files replayed", files.len());
}

#[test]
fn channel_decode_corpus() {
    replay("channel_decode", checks::channel_decode);
}

#[test]
fn channel_names_corpus() {
    replay("channel_names", checks::channel_names);
}

#[test]
fn proxy_response_corpus() {
    replay("proxy_response", checks::proxy_response);
}

#[test]
fn proxy_request_corpus() {
    replay("proxy_request", checks::proxy_request);
}

#[test]
fn sigv4_roundtrip_corpus() {
    replay("sigv4_roundtrip", checks::sigv4_roundtrip);
}
