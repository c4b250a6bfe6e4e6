//! The synopsis of the Python `redisutil`, in Rust.
//!
//! Runs on the in-memory fakes by default; set `REDIS_URL` (for example
//! `REDIS_URL=redis://127.0.0.1:6379/`) to run the channel part on a real Redis.
//!
//! ```text
//! cargo run --example synopsis
//! ```

use std::error::Error;

use redisutil::{ListStore, MemoryStore, Peer, RedisChannel, get_client};

fn channel_synopsis<S: ListStore + Clone>(store: S) -> Result<(), Box<dyn Error>> {
    // A client and a server with the same channel name "/foo" are a pair.
    let c = RedisChannel::new(store.clone(), "/foo", Peer::Client)?;
    let s = RedisChannel::new(store, "/foo", Peer::Server)?;

    c.send_msg("c2s")?;
    s.send_msg("s2c")?;

    // List channels.
    println!("{:?}", c.list_channel("/")?); // ["/foo"]
    println!("{:?}", s.recv_msg::<String>()?); // Some("c2s")
    println!("{:?}", c.recv_msg::<String>()?); // Some("s2c")
    Ok(())
}

fn main() -> Result<(), Box<dyn Error>> {
    match std::env::var("REDIS_URL") {
        Ok(url) => {
            println!("channels on {url}");
            channel_synopsis(get_client(url)?)?;
        }
        Err(_) => {
            println!("channels on MemoryStore (set REDIS_URL to use a real Redis)");
            channel_synopsis(MemoryStore::new())?;
        }
    }
    Ok(())
}
