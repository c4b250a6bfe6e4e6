//! What the command's tests share: loopback ports, and processes started
//! on them.

use std::collections::BTreeSet;
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A loopback port that nothing listened on a moment ago, and that no
/// other call in this process has handed out (so a server's bus port is
/// never another server's port).
pub fn free_port() -> u16 {
    static GIVEN: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("find a free port")
            .port();
        if GIVEN.lock().unwrap().insert(port) {
            return port;
        }
    }
}

/// Starts `command(port)` on a port found free and waits until it listens
/// there. A port found free can be taken before the process binds it (by
/// another test's process, or as the local end of an outgoing connection):
/// when the process exits before it listens, it is started again on
/// another port, at most five times. `install` says how to get `what`.
pub fn start_listening(
    what: &str,
    install: &str,
    mut command: impl FnMut(u16) -> Command,
) -> (Child, u16) {
    let mut exits = Vec::new();
    for _ in 0..5 {
        let port = free_port();
        let mut child = command(port).spawn().unwrap_or_else(|err| {
            panic!("cannot start {what} ({err}): {install}, or scripts/setup")
        });
        let started = Instant::now();
        loop {
            if let Some(status) = child.try_wait().expect("wait for a child") {
                exits.push(format!("{status} on {port}"));
                break;
            }
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return (child, port);
            }
            if started.elapsed() > Duration::from_secs(20) {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{what} never listened on {port} in 20 s");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    panic!("{what} exited before it listened, five times: {exits:?}");
}

/// A `redis-server` without persistence, with `extra` arguments, on a port
/// found free; the caller stops it.
pub fn redis_server(extra: &[&str]) -> (Child, u16) {
    start_listening("redis-server", "apt-get install redis-server", |port| {
        let mut command = Command::new("redis-server");
        command
            .args([
                "--port",
                &port.to_string(),
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .args(extra)
            .stdout(std::process::Stdio::null());
        command
    })
}
