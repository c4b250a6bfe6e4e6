//! What needs no server: `MemoryStore` on its own, and the committed fuzz
//! corpus replayed through the fuzz targets' checks.

mod fuzz_corpus;
mod store;
