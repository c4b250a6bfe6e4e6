//! What needs no server: `MemoryStore` on its own.

mod store;
