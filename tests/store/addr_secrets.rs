//! No password or user name of an address ever shows: not in a
//! `RedisAddr`'s `Display` or `Debug`, not in a store's `Debug`, not in any
//! error about the address, whether the address is valid, refused by this
//! crate, or refused by redis-rs; for every form in which redis-rs 1.8
//! reads credentials (userinfo of `redis://` and `rediss://`, `user` and
//! `pass` in the query of `unix://` and `redis+unix://`) and for malformed
//! variants of them.

use crate::support;

use std::error::Error;
use std::time::Duration;

use proptest::prelude::*;
use redisutil::store::IntoRedisAddr;
use redisutil::{
    ListStore, PoolOptions, RedisStore, RedisStoreOptions, StoreError, get_client, wait_serve,
};
use support::free_port;

/// A socket file that does not exist: the unix form of a closed port.
const NO_SOCKET: &str = "/tmp/redisutil-addr-secrets-no-such.sock";

/// Every address form with credentials, and the parts of its secret that
/// must never show. The secrets are made of words found nowhere else.
fn cases(port: u16) -> Vec<(String, Vec<&'static str>)> {
    let tcp = |userinfo: &str| format!("redis://{userinfo}@127.0.0.1:{port}/");
    let unix = |query: &str| format!("unix://{NO_SOCKET}?{query}");
    vec![
        // Userinfo, as redis-rs reads it.
        (tcp(":Quokkapw"), vec!["Quokkapw"]),
        (tcp("alice:Quokkapw"), vec!["Quokkapw"]),
        (
            format!("redis://alice:Quokkapw@127.0.0.1:{port}/0"),
            vec!["Quokkapw"],
        ),
        (
            format!("rediss://alice:Quokkapw@127.0.0.1:{port}/"),
            vec!["Quokkapw"],
        ),
        (
            format!("redis://alice:Quokkapw@[::1]:{port}/"),
            vec!["Quokkapw"],
        ),
        // A lone name is a user name to redis-rs, but often a misplaced password.
        (tcp("Quokkapw"), vec!["Quokkapw"]),
        // Percent-encoded `@`, `:` and `/` in the password.
        (
            tcp("alice:Quokka%40Wombat%3AKoala%2FNumbat"),
            vec!["Quokka", "Wombat", "Koala", "Numbat"],
        ),
        // Raw `@` and `:` in the password: valid, the last `@` ends it.
        (tcp("alice:Quokka@Wombat"), vec!["Quokka", "Wombat"]),
        (tcp(":Quokka@Wombat"), vec!["Quokka", "Wombat"]),
        (tcp("alice:Quokka:Wombat"), vec!["Quokka", "Wombat"]),
        // Raw `/`, `?`, `#` in the password: malformed, refused by redis-rs.
        (tcp(":Quokka/Wombat"), vec!["Quokka", "Wombat"]),
        (tcp("alice:Quokka/Wombat"), vec!["Quokka", "Wombat"]),
        (tcp(":Quokka?Wombat"), vec!["Quokka", "Wombat"]),
        (tcp(":Quokka#Wombat"), vec!["Quokka", "Wombat"]),
        (
            tcp(":Quokka/Wombat@Koala"),
            vec!["Quokka", "Wombat", "Koala"],
        ),
        (format!("redis://:pa/ss@127.0.0.1:{port}/"), vec!["pa/ss"]),
        // A password in the query of a tcp URL: redis-rs ignores it, but it
        // is a password all the same.
        (
            format!("redis://127.0.0.1:{port}/?password=Quokkapw"),
            vec!["Quokkapw"],
        ),
        (
            format!("redis://127.0.0.1:{port}/?pass=Quokkapw"),
            vec!["Quokkapw"],
        ),
        // The query of a unix URL: `pass` and `user`.
        (unix("pass=Quokkapw"), vec!["Quokkapw"]),
        (unix("db=0&pass=Quokkapw"), vec!["Quokkapw"]),
        (
            format!("redis+unix://{NO_SOCKET}?db=0&pass=Quokkapw"),
            vec!["Quokkapw"],
        ),
        (unix("user=Wombatuser&pass=Quokkapw"), vec!["Quokkapw"]),
        (unix("pass=Quokkapw&user=Wombatuser"), vec!["Quokkapw"]),
        (unix("pass=Decoy&pass=Quokkapw"), vec!["Quokkapw", "Decoy"]),
        (unix("p%61ss=Quokkapw"), vec!["Quokkapw"]),
        (
            unix("pass=Quokka%40Wombat%3AKoala%2FNumbat"),
            vec!["Quokka", "Wombat", "Koala", "Numbat"],
        ),
        (
            unix("pass=Quokka@Wombat:Koala/Numbat"),
            vec!["Quokka", "Wombat", "Koala", "Numbat"],
        ),
        (unix("pass=Quokka+Wombat"), vec!["Quokka", "Wombat"]),
        // A raw `&` or `#` cuts the password short for redis-rs; the rest is
        // still the user's password.
        (unix("pass=Quokka&Wombat"), vec!["Quokka", "Wombat"]),
        (unix("pass=Quokka#Wombat"), vec!["Quokka", "Wombat"]),
        (unix("pass=Quokka&db=Wombat"), vec!["Quokka", "Wombat"]),
        (unix("protocol=bogus&pass=Quokkapw"), vec!["Quokkapw"]),
        (unix("db=x&pass=Quokkapw"), vec!["Quokkapw"]),
        // Userinfo on a unix URL: redis-rs ignores it, it is still hidden.
        (
            format!("unix://alice:Quokkapw@localhost{NO_SOCKET}"),
            vec!["Quokkapw"],
        ),
        (
            format!("unix://:Quokka/Wombat@localhost{NO_SOCKET}"),
            vec!["Quokka", "Wombat"],
        ),
        (
            format!("redis+unix://:Quokkapw@{NO_SOCKET}"),
            vec!["Quokkapw"],
        ),
        // Refused by this crate: another scheme, a mistyped one, userinfo
        // in a host:port.
        (
            format!("valkey://:Quokkapw@127.0.0.1:{port}/"),
            vec!["Quokkapw"],
        ),
        (
            format!("REDIS://:Quokkapw@127.0.0.1:{port}/"),
            vec!["Quokkapw"],
        ),
        (
            format!(" redis://:Quokkapw@127.0.0.1:{port}/"),
            vec!["Quokkapw"],
        ),
        (
            format!("redis:/:Quokkapw@127.0.0.1:{port}/"),
            vec!["Quokkapw"],
        ),
        (format!("redis:Quokkapw@127.0.0.1:{port}"), vec!["Quokkapw"]),
        (format!("alice:Quokkapw@127.0.0.1:{port}"), vec!["Quokkapw"]),
        (format!("Quokkapw@127.0.0.1:{port}"), vec!["Quokkapw"]),
        (format!("u:Quokka@h://127.0.0.1:{port}"), vec!["Quokka"]),
    ]
}

/// What showed a secret, one line each; the test fails if not empty.
type Leaks = Vec<String>;

/// Notes every secret that shows in `shown`.
fn assert_hidden(leaks: &mut Leaks, addr: &str, what: &str, shown: &str, secrets: &[&str]) {
    for secret in secrets {
        if shown.contains(secret) {
            leaks.push(format!("{addr:?}: {what} shows {secret:?}: {shown}"));
        }
    }
}

fn assert_no_leaks(leaks: &Leaks) {
    let mut forms: Vec<&str> = leaks
        .iter()
        .filter_map(|leak| leak.split_once(": ").map(|(addr, _)| addr))
        .collect();
    forms.dedup();
    assert!(
        leaks.is_empty(),
        "{} forms show a secret:\n{}\n\nin detail:\n{}",
        forms.len(),
        forms.join("\n"),
        leaks.join("\n")
    );
}

/// Checks an error's `Display`, `Debug` and every source in its chain.
fn assert_error_hidden(
    leaks: &mut Leaks,
    addr: &str,
    what: &str,
    err: &StoreError,
    secrets: &[&str],
) {
    assert_hidden(
        leaks,
        addr,
        &format!("{what} error"),
        &err.to_string(),
        secrets,
    );
    assert_hidden(
        leaks,
        addr,
        &format!("{what} error (Debug)"),
        &format!("{err:?}"),
        secrets,
    );
    let mut source = err.source();
    while let Some(cause) = source {
        assert_hidden(
            leaks,
            addr,
            &format!("{what} error source"),
            &cause.to_string(),
            secrets,
        );
        source = cause.source();
    }
}

/// Uses the store, which cannot reach a server: the error must hide the secret.
fn assert_store_hidden(
    leaks: &mut Leaks,
    addr: &str,
    what: &str,
    store: &RedisStore,
    secrets: &[&str],
) {
    assert_hidden(
        leaks,
        addr,
        &format!("{what} (Debug)"),
        &format!("{store:?}"),
        secrets,
    );
    assert_hidden(
        leaks,
        addr,
        &format!("{what} addr"),
        &store.addr().to_string(),
        secrets,
    );
    let err = store
        .ping()
        .expect_err("nothing listens: the ping must fail");
    assert_error_hidden(leaks, addr, &format!("{what} ping"), &err, secrets);
}

fn quick() -> RedisStoreOptions {
    RedisStoreOptions {
        connect_timeout: Duration::from_millis(200),
        response_timeout: Some(Duration::from_millis(200)),
        pool: PoolOptions {
            max_idle: 0,
            ..PoolOptions::default()
        },
        ..RedisStoreOptions::default()
    }
}

#[test]
fn no_secret_shows_in_any_form() {
    let port = free_port();
    let leaks = &mut Leaks::new();
    for (addr, secrets) in cases(port) {
        let addr = addr.as_str();
        match addr.into_redis_addr() {
            Ok(parsed) => {
                assert_hidden(leaks, addr, "Display", &parsed.to_string(), &secrets);
                assert_hidden(leaks, addr, "Debug", &format!("{parsed:?}"), &secrets);
            }
            Err(err) => assert_error_hidden(leaks, addr, "into_redis_addr", &err, &secrets),
        }
        match RedisStore::open_with(addr, quick()) {
            Ok(store) => {
                assert_store_hidden(leaks, addr, "RedisStore::open_with", &store, &secrets)
            }
            Err(err) => assert_error_hidden(leaks, addr, "RedisStore::open_with", &err, &secrets),
        }
        match RedisStore::open(addr) {
            Ok(store) => assert_hidden(
                leaks,
                addr,
                "RedisStore::open",
                &format!("{store:?}"),
                &secrets,
            ),
            Err(err) => assert_error_hidden(leaks, addr, "RedisStore::open", &err, &secrets),
        }
        match get_client(addr) {
            Ok(store) => assert_store_hidden(leaks, addr, "get_client", &store, &secrets),
            Err(err) => assert_error_hidden(leaks, addr, "get_client", &err, &secrets),
        }
        let err = wait_serve(addr, Duration::from_millis(100))
            .expect_err("nothing listens: wait_serve must fail");
        assert_error_hidden(leaks, addr, "wait_serve", &err, &secrets);
        #[cfg(feature = "cluster")]
        if let Err(err) = redisutil::RedisClusterStore::open([addr]) {
            assert_error_hidden(leaks, addr, "RedisClusterStore::open", &err, &secrets);
        }
    }
    assert_no_leaks(leaks);
}

#[test]
fn no_secret_shows_in_a_host_of_a_pair() {
    let port = free_port();
    let leaks = &mut Leaks::new();
    for host in [
        "alice:Quokkapw@127.0.0.1",
        "Quokkapw@127.0.0.1",
        "redis://:Quokkapw@h",
    ] {
        let err = (host, port).into_redis_addr().unwrap_err();
        assert_error_hidden(leaks, host, "(host, port)", &err, &["Quokkapw"]);
        let err = get_client((host, port)).unwrap_err();
        assert_error_hidden(leaks, host, "get_client((host, port))", &err, &["Quokkapw"]);
        let err = wait_serve((host.to_owned(), port), Duration::from_millis(50)).unwrap_err();
        assert_error_hidden(leaks, host, "wait_serve((host, port))", &err, &["Quokkapw"]);
    }
    assert_no_leaks(leaks);
}

/// The shown address still tells which server is meant.
#[test]
fn the_server_still_shows() {
    let port = free_port();
    let shown = |addr: &str| addr.into_redis_addr().unwrap().to_string();
    assert_eq!(
        shown(&format!("redis://alice:Quokkapw@127.0.0.1:{port}/3")),
        format!("redis://alice:***@127.0.0.1:{port}/3")
    );
    // Malformed (a raw `/` in the password): refused, everything up to the
    // last `@` hidden.
    match format!("redis://:Quokka/Wombat@127.0.0.1:{port}/").into_redis_addr() {
        Err(StoreError::InvalidAddress { addr, .. }) => {
            assert_eq!(addr, format!("redis://***@127.0.0.1:{port}/"))
        }
        other => panic!("expected InvalidAddress, got {other:?}"),
    }
    assert_eq!(
        shown(&format!("unix://{NO_SOCKET}?db=2&pass=Quokkapw")),
        format!("unix://{NO_SOCKET}?db=2&pass=***")
    );
    let err = RedisStore::open_with(format!("unix://{NO_SOCKET}?pass=Quokkapw"), quick())
        .unwrap()
        .ping()
        .unwrap_err();
    assert!(err.to_string().contains(NO_SOCKET), "{err}");
}

/// A password around a marker, made of the characters and pieces that
/// end or split parts of a URL.
fn password() -> impl Strategy<Value = String> {
    const PIECES: &[&str] = &[
        "@",
        ":",
        "/",
        "?",
        "#",
        "&",
        "%",
        "=",
        "+",
        ";",
        " ",
        "\t",
        "\\",
        "[",
        "]",
        "a",
        "1",
        "%40",
        "%2F",
        "//",
        "://",
        "localhost",
        "@localhost/",
        "&db=",
        "&protocol=",
        "?pass=",
        "&user=",
        "unix://",
    ];
    let around = || proptest::collection::vec(prop::sample::select(PIECES), 0..6);
    (around(), around())
        .prop_map(|(before, after)| format!("{}Zq9{}", before.concat(), after.concat()))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    /// Whatever characters a password holds, left unencoded, it shows
    /// nowhere: not in the address, not in an error about it.
    #[test]
    fn no_password_shows_whatever_it_holds(
        password in password(),
        user in "[a-z]{0,5}",
        form in 0..12usize,
    ) {
        let addr = match form {
            0 => format!("redis://{user}:{password}@127.0.0.1:6390/"),
            1 => format!("rediss://{user}:{password}@127.0.0.1:6390/1"),
            2 => format!("unix://{NO_SOCKET}?pass={password}"),
            3 => format!("redis+unix://{NO_SOCKET}?db=1&pass={password}&user={user}"),
            4 => format!("unix://{NO_SOCKET}?user={user}&pass={password}&protocol=resp3"),
            5 => format!("unix://{user}:{password}@localhost{NO_SOCKET}"),
            6 => format!("{user}:{password}@127.0.0.1:6390"),
            7 => format!("redis://127.0.0.1:6390/?password={password}"),
            8 => format!("valkey://{user}:{password}@127.0.0.1:6390/"),
            // Not a credential to redis-rs, but quoted by its errors.
            9 => format!("unix://{NO_SOCKET}?protocol={password}"),
            10 => format!("redis://127.0.0.1:6390/?db=1&protocol={password}"),
            // A lone name: a misplaced password (with a `:`, it would be
            // a user name and a password).
            _ => format!("redis://{}@127.0.0.1:6390/", password.replace(':', "%3A")),
        };
        let leaks = &mut Leaks::new();
        let secret = ["Zq9"];
        match addr.as_str().into_redis_addr() {
            Ok(parsed) => {
                assert_hidden(leaks, &addr, "Display", &parsed.to_string(), &secret);
                assert_hidden(leaks, &addr, "Debug", &format!("{parsed:?}"), &secret);
            }
            Err(err) => assert_error_hidden(leaks, &addr, "into_redis_addr", &err, &secret),
        }
        match RedisStore::open_with(addr.as_str(), quick()) {
            Ok(store) => assert_hidden(leaks, &addr, "RedisStore", &format!("{store:?}"), &secret),
            Err(err) => assert_error_hidden(leaks, &addr, "RedisStore::open_with", &err, &secret),
        }
        prop_assert!(leaks.is_empty(), "{}", leaks.join("\n"));
    }
}
