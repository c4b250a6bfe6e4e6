//! The seed's `RedisProxyClient` synopsis in Rust, on the in-memory proxy
//! and a manual clock (the "sleeps" move the clock; nothing waits).
//!
//! Run with `cargo run --example proxy_synopsis`.

use std::time::Duration;

use redisutil::ManualClock;
use redisutil::proxy::{CallOptions, Error, MemoryProxy, ProxyConfig, RedisProxyClient};

fn main() -> Result<(), Error> {
    let clock = ManualClock::default();
    let server = MemoryProxy::builder().clock(clock.clone()).build();
    let cli = RedisProxyClient::new(
        server,
        ProxyConfig::with_hosts([("127.0.0.1", 2222), ("192.168.0.100", 222)]),
    )?
    .with_clock(clock.clone());
    let msec = Duration::from_millis;

    cli.set_with("k1", "v1", &CallOptions::new().retry(1))?;
    cli.set_with("k2", "v2", &CallOptions::new().expire(msec(1000)))?;

    println!(
        "{}",
        cli.get_with::<String>("k1", &CallOptions::new().retry(2))?
    ); // v1
    println!("{}", cli.get::<String>("k2")?); // v2

    clock.sleep_for(msec(1000));
    match cli.get::<String>("k2") {
        Err(error @ Error::KeyNotFound { .. }) => println!("{error}"),
        other => panic!("k2 should have expired: {other:?}"),
    }

    cli.hset("hashname1", "k3", "v3")?;
    cli.hset_with(
        "hashname2",
        "k4",
        "v4",
        &CallOptions::new().expire(msec(1000)),
    )?;

    println!("{}", cli.hget::<String>("hashname1", "k3")?); // v3
    println!("{}", cli.hget::<String>("hashname2", "k4")?); // v4

    clock.sleep_for(msec(1000));
    match cli.hget::<String>("hashname2", "k4") {
        Err(error @ Error::KeyNotFound { .. }) => println!("{error}"),
        other => panic!("k4 should have expired: {other:?}"),
    }
    Ok(())
}

/// `time.sleep` of the seed, on the manual clock.
trait SleepFor {
    fn sleep_for(&self, duration: Duration);
}

impl SleepFor for ManualClock {
    fn sleep_for(&self, duration: Duration) {
        redisutil::Clock::sleep(self, duration);
    }
}
