//! Replays every committed fuzz corpus file (`fuzz/corpus/<target>/`)
//! through the same checks the cargo-fuzz targets run, on stable Rust.

#[path = "../fuzz/checks.rs"]
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
