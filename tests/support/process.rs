//! One guard for every `redis-server` the tests start: each runs under a
//! `sh` that SIGKILLs it as soon as the guard's stdin closes, which happens
//! when its handle is dropped and also when the test process exits in any
//! way (the kernel closes the pipe, even after a SIGKILL or a panic in a
//! `static`). No server outlives its test binary. The guard is the
//! server's parent, so the pid it kills cannot have been reused.

use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::OnceLock;

/// What to install when a tool is missing.
pub const INSTALL_HINT: &str = "redis-server and redis-cli (7.0 or newer) are needed by these \
     tests and one was not found on PATH: install them (Debian/Ubuntu: `apt-get install \
     redis-server redis-tools`; macOS: `brew install redis`)";

/// The guard: starts the server, waits for stdin to close, kills the
/// server, then removes `$REMOVE_DIR` when it is set.
const GUARD: &str = "redis-server \"$@\" </dev/null >/dev/null 2>&1 & server=$!; \
     read line; kill -9 $server 2>/dev/null; wait $server; \
     [ -n \"$REMOVE_DIR\" ] && rm -rf \"$REMOVE_DIR\"; true";

/// A running `redis-server` under its guard.
pub struct Guarded {
    guard: Option<Child>,
    stdin: Option<ChildStdin>,
}

impl Guarded {
    /// Starts `redis-server args…`; with `remove_dir`, the guard deletes
    /// that directory once the server is dead.
    pub fn spawn(args: &[String], remove_dir: Option<&Path>) -> Self {
        check_installed("redis-server");
        let mut command = Command::new("sh");
        command
            .arg("-c")
            .arg(GUARD)
            .arg("sh")
            .args(args)
            .env("REMOVE_DIR", remove_dir.unwrap_or(Path::new("")))
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let mut guard = command.spawn().expect("start sh");
        let stdin = guard.stdin.take();
        Self {
            guard: Some(guard),
            stdin,
        }
    }

    /// Whether the server has not been killed.
    pub fn is_running(&self) -> bool {
        self.guard.is_some()
    }

    /// Kills the server (SIGKILL) and waits until it is gone.
    pub fn kill(&mut self) {
        drop(self.stdin.take());
        if let Some(mut guard) = self.guard.take() {
            let _ = guard.wait();
        }
    }
}

impl Drop for Guarded {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Fails the test, saying what to install, when `tool` cannot run.
pub fn check_installed(tool: &'static str) {
    static CHECKED: OnceLock<()> = OnceLock::new();
    static CHECKED_CLI: OnceLock<()> = OnceLock::new();
    let once = if tool == "redis-cli" {
        &CHECKED_CLI
    } else {
        &CHECKED
    };
    once.get_or_init(|| {
        match Command::new(tool)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
        {
            Ok(status) if status.success() => {}
            Ok(status) => panic!("{tool} --version failed ({status}): {INSTALL_HINT}"),
            Err(err) => panic!("cannot run {tool} ({err}): {INSTALL_HINT}"),
        }
    });
}
