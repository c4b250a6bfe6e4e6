//! What needs no server: `MemoryStore` on its own, and the committed fuzz
//! corpus replayed through the fuzz targets' checks.

#[cfg(feature = "proxy")]
mod fuzz_corpus;
mod store;
