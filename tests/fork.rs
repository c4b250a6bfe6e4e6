//! `get_client` after `fork()`: the child gets a fresh handle that works,
//! and the parent's keeps working. Alone in its binary: fork() and threads
//! do not mix.
#![allow(unsafe_code)] // fork(), waitpid() and _exit() are libc calls

mod support;

use redisutil::{ListStore, get_client};
use support::RedisServer;

#[test]
fn forked_child_gets_its_own_working_client() {
    let server = RedisServer::start();
    let port = server.port();
    let parent = get_client(port).unwrap();
    parent
        .push("/fork/client", &[b"\"from parent\""], None)
        .unwrap();

    // SAFETY: this test binary runs this one test, so no other thread holds
    // a lock across the fork; the child only runs the closure then _exit()s.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        let ok = std::panic::catch_unwind(|| {
            let child = get_client(port).unwrap();
            assert!(!child.ptr_eq(&parent), "the child got the parent's handle");
            assert!(
                child.ptr_eq(&get_client(port).unwrap()),
                "one handle per process"
            );
            child
                .push("/fork/client", &[b"\"from child\""], None)
                .unwrap();
            // The inherited handle also refuses the parent's sockets.
            parent.ping().unwrap();
        })
        .is_ok();
        // SAFETY: ends the child without running the parent's destructors.
        unsafe { libc::_exit(if ok { 0 } else { 1 }) };
    }
    let mut status = 0;
    // SAFETY: waits for the child just forked.
    let waited = unsafe { libc::waitpid(pid, &mut status, 0) };
    assert_eq!(waited, pid);
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "child failed: {status}"
    );

    assert_eq!(
        parent.pop("/fork/client").unwrap().as_deref(),
        Some(&b"\"from parent\""[..])
    );
    assert_eq!(
        parent.pop("/fork/client").unwrap().as_deref(),
        Some(&b"\"from child\""[..])
    );
    assert!(parent.ptr_eq(&get_client(port).unwrap()));
}
