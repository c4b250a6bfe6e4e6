//! The synopsis of the Python `redisutil`, in Rust: a channel, then the
//! proxy client.
//!
//! Runs on the in-memory fakes by default; set `REDIS_URL` (for example
//! `REDIS_URL=redis://127.0.0.1:6379/`) to run the channel part on a real
//! Redis. The proxy part runs on `MemoryProxy` with a manual clock, so the
//! seed's `time.sleep(1)` moves the clock instead of waiting.
//!
//! ```text
//! cargo run --example synopsis
//! ```

use std::error::Error;
use std::time::Duration;

use redisutil::proxy::{CallOptions, MemoryProxy, ProxyConfig, RedisProxyClient};
use redisutil::{Clock, ListStore, ManualClock, MemoryStore, Peer, RedisChannel, get_client};

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

fn proxy_synopsis() -> Result<(), Box<dyn Error>> {
    let clock = ManualClock::default();
    let server = MemoryProxy::builder().clock(clock.clone()).build();
    let config = ProxyConfig::with_hosts([("127.0.0.1", 2222), ("192.168.0.100", 222)]);
    let cli = RedisProxyClient::new(server, config)?.with_clock(clock.clone());
    let msec = Duration::from_millis;

    cli.set_with("k1", "v1", &CallOptions::new().retry(1))?;
    cli.set_with("k2", "v2", &CallOptions::new().expire(msec(1000)))?; // msec

    println!(
        "{}",
        cli.get_with::<String>("k1", &CallOptions::new().retry(2))?
    ); // v1
    println!("{}", cli.get::<String>("k2")?); // v2

    clock.sleep(msec(1000));
    // A key-not-found error: k2 has expired.
    println!("{}", cli.get::<String>("k2").unwrap_err());

    cli.hset("hashname1", "k3", "v3")?;
    cli.hset_with(
        "hashname2",
        "k4",
        "v4",
        &CallOptions::new().expire(msec(1000)),
    )?;

    println!("{}", cli.hget::<String>("hashname1", "k3")?); // v3
    println!("{}", cli.hget::<String>("hashname2", "k4")?); // v4

    clock.sleep(msec(1000));
    println!("{}", cli.hget::<String>("hashname2", "k4").unwrap_err());
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
    println!("proxy client on MemoryProxy");
    proxy_synopsis()
}
