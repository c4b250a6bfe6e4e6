//! The synopsis of the Python `redisutil`, in Rust: a channel, then the
//! proxy client.
//!
//! Runs on the in-memory fakes by default, with no feature and nothing
//! installed. Set `REDIS_URL` (for example `REDIS_URL=redis://127.0.0.1:6379/`,
//! with the default `redis` feature) to run the channel part on a real Redis:
//! it then uses a channel of its own, `/redisutil-synopsis/<pid>-<time>/foo`
//! (the lists `…/foo/client` and `…/foo/server`), prints its name, and
//! empties both lists when it ends, so Redis deletes them; no other key is
//! read or written. The proxy part runs on `MemoryProxy` with a manual clock,
//! so the seed's `time.sleep(1)` moves the clock instead of waiting.
//!
//! ```text
//! cargo run --example synopsis
//! REDIS_URL=redis://127.0.0.1:6379/ cargo run --example synopsis
//! ```

use std::error::Error;
use std::time::Duration;

use redisutil::proxy::{CallOptions, MemoryProxy, ProxyConfig, RedisProxyClient};
use redisutil::{Clock, ListStore, ManualClock, MemoryStore, Peer, RedisChannel};
use serde_json::Value;

/// The channel `<prefix>foo`, as the Python synopsis's `/foo` under `prefix`.
fn channel_synopsis<S: ListStore + Clone>(store: S, prefix: &str) -> Result<(), Box<dyn Error>> {
    // A client and a server with the same channel name are a pair.
    let name = format!("{prefix}foo");
    let c = RedisChannel::new(store.clone(), name.as_str(), Peer::Client)?;
    let s = RedisChannel::new(store, name.as_str(), Peer::Server)?;
    println!(
        "channel {name}: lists {} and {}",
        c.send_key(),
        c.recv_key()
    );

    let shown = show_channel(&c, &s, prefix);
    let emptied = empty_channel(&c, &s);
    shown?;
    emptied?;
    println!("channel {name} emptied: {:?}", c.list_channel(prefix)?); // []
    Ok(())
}

fn show_channel<S: ListStore>(
    c: &RedisChannel<S>,
    s: &RedisChannel<S>,
    prefix: &str,
) -> Result<(), Box<dyn Error>> {
    c.send_msg("c2s")?;
    s.send_msg("s2c")?;

    // List channels.
    println!("{:?}", c.list_channel(prefix)?); // ["/foo"]
    println!("{:?}", s.recv_msg::<String>()?); // Some("c2s")
    println!("{:?}", c.recv_msg::<String>()?); // Some("s2c")
    Ok(())
}

/// Takes whatever is left on both lists of the channel (even after an
/// error above): Redis deletes a list once it is empty.
fn empty_channel<S: ListStore>(
    c: &RedisChannel<S>,
    s: &RedisChannel<S>,
) -> Result<(), Box<dyn Error>> {
    for peer in [c, s] {
        match peer.recv_last_msg::<Value>() {
            // A message that does not decode has left the list too.
            Ok(_) | Err(redisutil::ChannelError::Decode(_)) => {}
            Err(error) => return Err(error.into()),
        }
    }
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

#[cfg(feature = "redis")]
fn redis_synopsis(url: String) -> Result<(), Box<dyn Error>> {
    use std::time::{SystemTime, UNIX_EPOCH};

    let store = redisutil::get_client(url.as_str())?;
    // A prefix of this run's own, so no one else's channel is touched.
    let started = SystemTime::now().duration_since(UNIX_EPOCH)?.as_nanos();
    let prefix = format!("/redisutil-synopsis/{}-{started}/", std::process::id());
    println!("channels on {}", store.addr());
    channel_synopsis(store, &prefix)
}

#[cfg(not(feature = "redis"))]
fn redis_synopsis(_url: String) -> Result<(), Box<dyn Error>> {
    Err("REDIS_URL is set, but a real Redis needs the `redis` feature".into())
}

fn main() -> Result<(), Box<dyn Error>> {
    match std::env::var("REDIS_URL") {
        Ok(url) => redis_synopsis(url)?,
        Err(_) => {
            println!("channels on MemoryStore (set REDIS_URL to use a real Redis)");
            channel_synopsis(MemoryStore::new(), "/")?;
        }
    }
    println!("proxy client on MemoryProxy");
    proxy_synopsis()
}
