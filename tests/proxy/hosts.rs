//! Proxy hosts are checked when a client is built: a host that is not an
//! address (user info, a path, a scheme, white space, port 0, …) is refused
//! with `InvalidArgument` and nothing is ever sent.

use redisutil::proxy::{Error, FakeTransport, Outcome, ProxyConfig, ProxyHost, RedisProxyClient};

const BAD: &[(&str, u16)] = &[
    ("", 2222),
    ("127.0.0.1", 0),
    ("user@127.0.0.1", 2222),
    ("user:pass@127.0.0.1", 2222),
    ("127.0.0.1/evil?", 2222),
    ("127.0.0.1?x", 2222),
    ("127.0.0.1#x", 2222),
    ("127.0.0.1\\x", 2222),
    ("127.0.0.1 ", 2222),
    (" 127.0.0.1", 2222),
    ("a b", 2222),
    ("a\tb", 2222),
    ("a\nb", 2222),
    ("a\u{0}b", 2222),
    ("a\u{7f}b", 2222),
    ("http://127.0.0.1", 2222),
    ("http:127.0.0.1", 2222),
    ("127.0.0.1:80", 2222),
    ("[127.0.0.1]", 2222),
    ("[::1", 2222),
    ("fe80::1%eth0", 2222),
    ("..", 2222),
    (".example", 2222),
    ("exa..mple", 2222),
    ("exämple.com", 2222),
];

const GOOD: &[(&str, u16)] = &[
    ("127.0.0.1", 2222),
    ("10.0.0.1", 1),
    ("::1", 65535),
    ("[::1]", 2222),
    ("2001:db8::7", 80),
    ("localhost", 2222),
    ("proxy-1.example.com", 2222),
    ("xn--exmple-cua.com", 2222),
    ("under_score.internal", 2222),
];

fn client(
    host: ProxyHost,
    fake: &FakeTransport,
) -> Result<RedisProxyClient<&FakeTransport>, Error> {
    let config = ProxyConfig {
        proxy_hosts: vec![vec![ProxyHost::new("127.0.0.1", 1)], vec![host]],
        ..ProxyConfig::default()
    };
    RedisProxyClient::new(fake, config)
}

#[test]
fn bad_hosts_are_refused_before_anything_is_sent() {
    let fake = FakeTransport::new();
    for &(ip, port) in BAD {
        match client(ProxyHost::new(ip, port), &fake) {
            Err(Error::InvalidArgument(message)) => {
                assert!(message.starts_with("proxy host"), "{message}");
            }
            other => panic!("{ip:?}:{port} was accepted: {other:?}"),
        }
        let text = format!("{ip}:{port}");
        assert!(text.parse::<ProxyHost>().is_err(), "{text:?} parsed");
    }
    assert!(fake.requests().is_empty());
}

#[test]
fn addresses_and_names_are_accepted() {
    let fake = FakeTransport::new();
    fake.set_default("127.0.0.1:1", Outcome::json(200, "v"));
    for &(ip, port) in GOOD {
        let host = ProxyHost::new(ip, port);
        fake.set_default(&host, Outcome::json(200, "v"));
        let client = client(host.clone(), &fake).unwrap_or_else(|error| panic!("{ip}: {error}"));
        client
            .set("k", "v")
            .unwrap_or_else(|error| panic!("{ip}: {error}"));
        let sent = fake.requests().pop().expect("sent");
        let authority = sent
            .uri()
            .authority()
            .expect("authority")
            .as_str()
            .to_owned();
        assert_eq!(authority, host.to_string());
        assert_eq!(sent.headers()["host"], host.to_string().as_str());
        let parsed: ProxyHost = host.to_string().parse().expect("round trip");
        assert_eq!(parsed, host);
    }
}
