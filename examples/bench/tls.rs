//! Channels over TLS against plaintext, each on its own private
//! redis-server of the same build, in the same run (feature `tls-rustls`).

use redisutil::{Peer, RedisChannel, RedisStore};

use super::support::RedisServer;
use super::support::tls::TlsRedis;
use super::{Msg, N, compare, msg, row};

pub fn run() {
    let tls_server = TlsRedis::start("server", false);
    let plain_server = RedisServer::start();
    let ends = |store: RedisStore| {
        (
            RedisChannel::new(store.clone(), "/tls-bench", Peer::Client).unwrap(),
            RedisChannel::new(store, "/tls-bench", Peer::Server).unwrap(),
        )
    };
    let (tls_client, tls_server_end) = ends(tls_server.store(None));
    let (plain_client, plain_server_end) = ends(plain_server.store());
    let mut nothing = || {};

    println!("\n## Channels over TLS against plaintext ({N} operations, ops/s)\n");
    println!("| operation | TLS | plaintext | baseline is | ratio |");
    println!("|---|---|---|---|---|");
    let send = compare(
        N,
        &mut nothing,
        &mut |i| tls_client.send_msg(&msg(i)).unwrap(),
        &mut |i| plain_client.send_msg(&msg(i)).unwrap(),
    );
    row("send_msg", send, "send_msg, plaintext");
    let recv = compare(
        N,
        &mut nothing,
        &mut |_| drop(tls_server_end.recv_msg::<Msg>().unwrap().unwrap()),
        &mut |_| drop(plain_server_end.recv_msg::<Msg>().unwrap().unwrap()),
    );
    row("recv_msg", recv, "recv_msg, plaintext");
}
