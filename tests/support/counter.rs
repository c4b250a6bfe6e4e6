//! [`RoundTripCounter`]: round trips counted on the wire.

use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::Duration;

/// A TCP forwarder in front of a server that counts round trips: each time
/// the client writes after the server has answered (or first) is one.
pub struct RoundTripCounter {
    port: u16,
    round_trips: std::sync::Arc<AtomicU64>,
    stop: std::sync::Arc<AtomicBool>,
}

impl RoundTripCounter {
    /// Forwards a free loopback port to `127.0.0.1:<upstream>`.
    pub fn start(upstream: u16) -> Self {
        use std::io::{Read, Write};
        use std::net::TcpStream;
        use std::sync::Arc;

        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let round_trips = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (counter, stopping) = (round_trips.clone(), stop.clone());
        thread::spawn(move || {
            while !stopping.load(Ordering::Acquire) {
                let Ok((client, _)) = listener.accept() else {
                    thread::sleep(Duration::from_millis(5));
                    continue;
                };
                client.set_nonblocking(false).unwrap();
                let server = TcpStream::connect(("127.0.0.1", upstream)).unwrap();
                // true while the server spoke last.
                let answered = Arc::new(AtomicBool::new(true));
                let pump = |mut from: TcpStream, mut to: TcpStream, client_side: bool| {
                    let (answered, counter) = (answered.clone(), counter.clone());
                    thread::spawn(move || {
                        let mut buf = vec![0u8; 64 * 1024];
                        loop {
                            let n = match from.read(&mut buf) {
                                Ok(0) | Err(_) => break,
                                Ok(n) => n,
                            };
                            if client_side {
                                if answered.swap(false, Ordering::AcqRel) {
                                    counter.fetch_add(1, Ordering::AcqRel);
                                }
                            } else {
                                answered.store(true, Ordering::Release);
                            }
                            if to.write_all(&buf[..n]).is_err() {
                                break;
                            }
                        }
                        let _ = to.shutdown(std::net::Shutdown::Both);
                    });
                };
                pump(
                    client.try_clone().unwrap(),
                    server.try_clone().unwrap(),
                    true,
                );
                pump(server, client, false);
            }
        });
        Self {
            port,
            round_trips,
            stop,
        }
    }

    /// The port to connect to.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Round trips so far; resets the count.
    pub fn take(&self) -> u64 {
        // Let the last answer reach the pump before reading.
        thread::sleep(Duration::from_millis(20));
        self.round_trips.swap(0, Ordering::AcqRel)
    }
}

impl Drop for RoundTripCounter {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
    }
}
