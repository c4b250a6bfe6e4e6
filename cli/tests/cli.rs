//! The `redisutil` command end to end against a private redis-server:
//! statistics, send, peek, recv, dead letters, the exit codes, and the
//! password kept off the command line and out of every message.
//! Needs `redis-server` (`apt-get install redis-server`, or
//! `scripts/setup`).

mod common;

use common::{redis_server, start_listening};
use std::io::Write;
use std::net::TcpStream;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use redisutil::{Peer, RedisChannel, RedisStore};
use serde_json::Value;

/// A redis-server on a free port, stopped on drop.
struct Server {
    port: u16,
    child: Child,
}

impl Server {
    fn start(extra: &[&str]) -> Self {
        let (child, port) = redis_server(extra);
        Self { port, child }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `redisutil args…` with `env` set (and nothing inherited that
/// names a Redis), `stdin` on its standard input.
fn redisutil(env: &[(&str, &str)], args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_redisutil"))
        .args(args)
        .env_remove("REDIS_URL")
        .env_remove("REDIS_PASSWORD")
        .env_remove("REDIS_USERNAME")
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A command that does not read its standard input may end before
    // the input is written: a broken pipe here is no failure.
    let _ = child.stdin.take().unwrap().write_all(stdin.as_bytes());
    child.wait_with_output().unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).unwrap()
}

/// Exit code 0, or a panic showing what it said.
fn ok(output: Output) -> String {
    assert!(
        output.status.success(),
        "{:?}: {}",
        output.status,
        stderr(&output)
    );
    stdout(&output)
}

/// A failure with `code`, said in one line on standard error.
fn failed(output: &Output, code: i32) -> String {
    assert_eq!(output.status.code(), Some(code), "{}", stderr(output));
    let said = stderr(output);
    assert_eq!(said.lines().count(), 1, "one line: {said}");
    assert!(said.starts_with("redisutil: error: "), "{said}");
    said
}

#[test]
fn messages_go_in_and_out_and_channels_are_counted() {
    let server = Server::start(&[]);
    let url = server.url();
    let env = [("REDIS_URL", url.as_str())];
    assert_eq!(
        ok(redisutil(&env, &["send", "/jobs/a", r#"{"x": 1}"#], "")),
        "sent 1\n"
    );
    assert_eq!(
        ok(redisutil(&env, &["send", "/jobs/a"], "1\n\"two\"\n\n[3]\n")),
        "sent 3\n"
    );
    ok(redisutil(
        &env,
        &["send", "/jobs/b", "--to", "client", "7"],
        "",
    ));
    // A bad line refuses the whole input.
    let bad = redisutil(&env, &["send", "/jobs/a"], "4\nnot json\n");
    assert!(failed(&bad, 1).contains("line 2"));

    let listed = ok(redisutil(&env, &["channels", "/jobs/", "--json"], ""));
    let rows: Vec<Value> = listed
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["channel"], "/jobs/a");
    assert_eq!(rows[0]["to_server"]["waiting"], 4);
    assert_eq!(rows[1]["to_client"]["waiting"], 1);
    let table = ok(redisutil(&env, &["channels"], ""));
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("/jobs/a") && l.contains("4/0/0/0")),
        "{table}"
    );

    assert_eq!(
        ok(redisutil(&env, &["peek", "/jobs/a", "--count", "2"], "")),
        "{\"x\":1}\n1\n"
    );
    assert_eq!(
        ok(redisutil(&env, &["recv", "/jobs/a", "--lease", "30"], "")),
        "{\"x\":1}\n"
    );
    assert_eq!(
        ok(redisutil(&env, &["recv", "/jobs/a", "--count", "9"], "")),
        "1\n\"two\"\n[3]\n"
    );
    failed(&redisutil(&env, &["recv", "/jobs/a"], ""), 3);
    failed(&redisutil(&env, &["peek", "/jobs/missing"], ""), 3);
    assert_eq!(
        ok(redisutil(&env, &["recv", "/jobs/b", "--to", "client"], "")),
        "7\n"
    );
    // Nothing was left leased (the leased one was acked once printed):
    // a channel that holds nothing is not listed.
    let after = ok(redisutil(&env, &["channels", "/jobs/", "--json"], ""));
    assert_eq!(after, "");
}

#[test]
fn dead_letters_are_listed_requeued_and_purged() {
    let server = Server::start(&[]);
    let store = RedisStore::open(server.port).unwrap();
    let client = RedisChannel::new(store.clone(), "/jobs/dead", Peer::Client).unwrap();
    let worker = RedisChannel::new(store, "/jobs/dead", Peer::Server).unwrap();
    client.send_msgs(["<b>one</b>", "two", "three"]).unwrap();
    for delivery in worker
        .lease_msgs::<String>(3, Duration::from_secs(60))
        .unwrap()
    {
        assert!(worker.reject(&delivery.unwrap()).unwrap());
    }
    let url = server.url();
    let env = [("REDIS_URL", url.as_str())];
    let listed = ok(redisutil(
        &env,
        &["dead", "list", "/jobs/dead", "--json"],
        "",
    ));
    let letters: Vec<Value> = listed
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(letters.len(), 3);
    assert_eq!(letters[0]["body"], "\"<b>one</b>\"");
    assert_eq!(letters[0]["reason"], "Refused");
    let first = letters[0]["id"].as_str().unwrap();

    assert_eq!(
        ok(redisutil(
            &env,
            &["dead", "requeue", "/jobs/dead", "--id", first],
            ""
        )),
        "requeued 1\n"
    );
    assert_eq!(
        worker.recv_msg::<String>().unwrap().as_deref(),
        Some("<b>one</b>")
    );
    failed(
        &redisutil(&env, &["dead", "requeue", "/jobs/dead", "--id", first], ""),
        3,
    );
    // No terminal to ask on and no --yes: nothing is deleted.
    failed(
        &redisutil(&env, &["dead", "purge", "/jobs/dead", "--all"], "y\n"),
        1,
    );
    assert_eq!(worker.lease_stats().unwrap().dead, 2);
    assert_eq!(
        ok(redisutil(
            &env,
            &["dead", "purge", "/jobs/dead", "--all", "--yes"],
            ""
        )),
        "purged 2\n"
    );
    assert_eq!(worker.lease_stats().unwrap().dead, 0);
    // Neither ids nor --all: a bad command line, said in one line.
    let bad = redisutil(&env, &["dead", "purge", "/jobs/dead"], "");
    assert!(failed(&bad, 2).contains("--all"));
}

#[test]
fn the_password_stays_off_the_command_line_and_out_of_every_message() {
    let password = "s3cret-Pa55";
    let server = Server::start(&["--requirepass", password]);
    let url = server.url();
    let with_password = format!("redis://:{password}@127.0.0.1:{}", server.port);
    let refused = redisutil(&[], &["--url", &with_password, "channels"], "");
    assert!(!failed(&refused, 2).contains(password));

    let wrong = redisutil(
        &[("REDIS_URL", &url), ("REDIS_PASSWORD", "wrong-one")],
        &["channels"],
        "",
    );
    let said = failed(&wrong, 1);
    assert!(
        !said.contains("wrong-one") && !said.contains(password),
        "{said}"
    );
    let missing = redisutil(&[("REDIS_URL", &url)], &["channels"], "");
    assert!(!failed(&missing, 1).contains(password));

    let dir = std::env::temp_dir().join(format!("redisutil-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("password");
    std::fs::write(&file, format!("{password}\n")).unwrap();
    let file = file.to_str().unwrap();
    ok(redisutil(
        &[],
        &["--url", &url, "--password-file", file, "send", "/p/a", "1"],
        "",
    ));
    let listed = ok(redisutil(
        &[("REDIS_URL", &url), ("REDIS_PASSWORD", password)],
        &["channels", "--json"],
        "",
    ));
    assert!(
        listed.contains("/p/a") && !listed.contains(password),
        "{listed}"
    );
    // A password in REDIS_URL (the environment, not argv) is taken.
    ok(redisutil(
        &[("REDIS_URL", &with_password)],
        &["peek", "/p/a"],
        "",
    ));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_urls_and_a_redis_that_goes_away_are_one_line_errors() {
    failed(&redisutil(&[], &["channels"], ""), 2);
    failed(
        &redisutil(&[("REDIS_URL", "http://127.0.0.1:1")], &["channels"], ""),
        1,
    );
    failed(
        &redisutil(
            &[("REDIS_URL", "redis://127.0.0.1:notaport")],
            &["channels"],
            "",
        ),
        1,
    );
    failed(
        &redisutil(
            &[("REDIS_URL", "redis://127.0.0.1:6379")],
            &["channels", "no-slash"],
            "",
        ),
        1,
    );
    let mut server = Server::start(&[]);
    let url = server.url();
    ok(redisutil(
        &[("REDIS_URL", &url)],
        &["send", "/gone/a", "1"],
        "",
    ));
    let _ = server.child.kill();
    let _ = server.child.wait();
    let gone = redisutil(&[("REDIS_URL", &url)], &["--timeout", "1", "channels"], "");
    assert!(failed(&gone, 1).contains(&format!("127.0.0.1:{}", server.port)));
}

#[test]
fn watch_shows_each_look_and_how_fast_lists_grow() {
    let server = Server::start(&[]);
    let store = RedisStore::open(server.port).unwrap();
    let client = RedisChannel::new(store, "/w/a", Peer::Client).unwrap();
    client.send_msg(&0).unwrap();
    let url = server.url();
    let sender = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        client.send_msgs(1..=20).unwrap();
    });
    let args = [
        "watch",
        "/w/",
        "--json",
        "--interval",
        "1",
        "--iterations",
        "2",
    ];
    let looks = ok(redisutil(&[("REDIS_URL", &url)], &args, ""));
    sender.join().unwrap();
    let looks: Vec<Value> = looks
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(looks.len(), 2, "{looks:?}");
    assert_eq!(looks[0]["to_server"]["waiting"], 1);
    assert_eq!(
        looks[0]["to_server_waiting_per_s"],
        Value::Null,
        "no rate at the first look"
    );
    assert_eq!(looks[1]["to_server"]["waiting"], 21);
    let rate = looks[1]["to_server_waiting_per_s"].as_f64().unwrap();
    assert!(rate > 0.0 && rate <= 20.0 / 0.9, "{rate}");
    let table = ok(redisutil(
        &[("REDIS_URL", &url)],
        &["watch", "--iterations", "1"],
        "",
    ));
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("/w/a") && l.contains("21/0/0/0")),
        "{table}"
    );
}

#[test]
fn completions_are_printed_without_a_redis() {
    let script = ok(redisutil(&[], &["completions", "bash"], ""));
    assert!(
        script.contains("redisutil") && script.contains("dead"),
        "{script}"
    );
    failed(&redisutil(&[], &["completions", "cmd"], ""), 2);
}

/// Sends `request` (an HTTP/1.1 request, whole) to `port`; the status.
fn http_status(port: u16, request: &str) -> u16 {
    use std::io::Read;
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn the_dashboard_changes_nothing_without_its_token_and_answers_only_to_its_address() {
    let server = Server::start(&[]);
    let url = server.url();
    let store = RedisStore::open(server.port).unwrap();
    let worker = RedisChannel::new(store.clone(), "/h/a", Peer::Server).unwrap();
    RedisChannel::new(store, "/h/a", Peer::Client)
        .unwrap()
        .send_msg(&1)
        .unwrap();
    let held = worker
        .lease_msg::<u32>(Duration::from_secs(60))
        .unwrap()
        .unwrap();
    assert!(worker.reject(&held).unwrap());
    let id = worker.dead_letters(1).unwrap()[0].id.clone();
    let body = format!(r#"{{"channel":"/h/a","ids":["{id}"]}}"#);
    let post = |port: u16, headers: &str| {
        format!(
            "POST /api/purge HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{headers}Content-Length: {}\r\n\r\n{body}",
            body.len()
        )
    };
    for token in [None, Some("the-token-of-this-dashboard")] {
        let mut env = vec![("REDIS_URL", url.as_str())];
        if let Some(token) = token {
            env.push(("REDISUTIL_DASHBOARD_TOKEN", token));
        }
        let (mut dashboard, port) = start_listening("the dashboard", "cargo build", |port| {
            let mut command = Command::new(env!("CARGO_BIN_EXE_redisutil"));
            command
                .args(["dashboard", "/h/", "--listen", &format!("127.0.0.1:{port}")])
                .envs(env.iter().copied())
                .stdout(Stdio::null());
            command
        });
        let listen = format!("127.0.0.1:{port}");
        let get = |host: &str, path: &str| {
            http_status(
                port,
                &format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n"),
            )
        };
        assert_eq!(get(&listen, "/"), 200);
        assert_eq!(get(&format!("localhost:{port}"), "/api/channels"), 200);
        assert_eq!(
            get(&format!("evil.example:{port}"), "/api/channels"),
            421,
            "DNS rebinding"
        );
        assert_eq!(get(&listen, "/api/purge"), 405, "no change by a GET");
        assert_eq!(get(&listen, "/etc/passwd"), 404);
        let json = "Content-Type: application/json\r\n";
        // A form post, as a cross-site page could send: no token header.
        let form = "Content-Type: application/x-www-form-urlencoded\r\n";
        assert_eq!(http_status(port, &post(port, form)), 403);
        assert_eq!(http_status(port, &post(port, json)), 403);
        let wrong = format!("{json}X-Redisutil-Token: not-the-token-of-this-one\r\n");
        assert_eq!(http_status(port, &post(port, &wrong)), 403);
        assert_eq!(worker.lease_stats().unwrap().dead, 1, "nothing changed");
        if let Some(token) = token {
            // The token without a JSON body is still refused.
            let bare = format!("X-Redisutil-Token: {token}\r\n");
            assert_eq!(http_status(port, &post(port, &bare)), 403);
            let right = format!("{json}X-Redisutil-Token: {token}\r\n");
            assert_eq!(http_status(port, &post(port, &right)), 200);
            assert_eq!(worker.lease_stats().unwrap().dead, 0);
        }
        let _ = dashboard.kill();
        let _ = dashboard.wait();
    }
}

/// `--all` goes by chunks of 1,000 (no script holds Redis up for long),
/// and gets through all of them.
#[test]
fn requeue_and_purge_of_all_go_by_chunks_through_every_dead_letter() {
    let server = Server::start(&[]);
    let store = RedisStore::open(server.port).unwrap();
    let client = RedisChannel::new(store.clone(), "/many/a", Peer::Client).unwrap();
    let worker = RedisChannel::new(store, "/many/a", Peer::Server).unwrap();
    let kill = || {
        for delivery in worker
            .lease_msgs::<u32>(3000, Duration::from_secs(60))
            .unwrap()
        {
            assert!(worker.reject(&delivery.unwrap()).unwrap());
        }
    };
    client.send_msgs(0..2500u32).unwrap();
    kill();
    assert_eq!(worker.lease_stats().unwrap().dead, 2500);
    let url = server.url();
    let env = [("REDIS_URL", url.as_str())];
    let requeued = ok(redisutil(
        &env,
        &["dead", "requeue", "/many/a", "--all"],
        "",
    ));
    assert_eq!(requeued, "requeued 2500\n");
    let stats = worker.lease_stats().unwrap();
    assert_eq!((stats.dead, stats.depth), (0, 2500));
    kill();
    let purged = ok(redisutil(
        &env,
        &["dead", "purge", "/many/a", "--all", "--yes"],
        "",
    ));
    assert_eq!(purged, "purged 2500\n");
    let stats = worker.lease_stats().unwrap();
    assert_eq!((stats.dead, stats.depth, stats.in_flight), (0, 0, 0));
}
