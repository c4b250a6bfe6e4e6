//! A fault-injecting TCP proxy between a store and a real `redis-server`,
//! on loopback: it passes requests and replies through one at a time, and
//! on the next request whose command it is told to watch, it does one
//! [`Fault`]: drops the reply after the server ran the command, resets
//! the connection before the command reaches the server, or stalls the
//! reply.

use std::io::{BufRead, BufReader, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

/// What the proxy does to one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// The server runs the command; its reply never reaches the client,
    /// whose connection is closed.
    DropReply,
    /// The connection is closed before the command reaches the server.
    ResetBefore,
    /// The server runs the command; its reply reaches the client this much
    /// later.
    Stall(Duration),
}

/// A fault waiting for its request.
struct Armed {
    /// Upper-case command names it fires on.
    commands: Vec<Vec<u8>>,
    fault: Fault,
    /// How many matching requests pass before it fires.
    skip: usize,
}

/// Byte strings replaced in every reply (a cluster's node ports, for its
/// slot map and redirections to name the proxies).
type Rewrites = Arc<Mutex<Vec<(Vec<u8>, Vec<u8>)>>>;

/// Replies dropped at random: to these commands, one in `one_in`.
struct AtRandom {
    commands: Vec<Vec<u8>>,
    one_in: u64,
    state: u64,
}

impl AtRandom {
    /// Whether to drop this one (xorshift64*).
    fn roll(&mut self) -> bool {
        self.state ^= self.state >> 12;
        self.state ^= self.state << 25;
        self.state ^= self.state >> 27;
        self.state
            .wrapping_mul(0x2545_F491_4F6C_DD1D)
            .is_multiple_of(self.one_in)
    }
}

/// The proxy; stops accepting when dropped.
pub struct FaultProxy {
    pub port: u16,
    armed: Arc<Mutex<Option<Armed>>>,
    random: Arc<Mutex<Option<AtRandom>>>,
    dropped: Arc<std::sync::atomic::AtomicU64>,
    rewrites: Rewrites,
    fired: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
}

impl FaultProxy {
    /// A proxy to the server on `upstream` (a port on 127.0.0.1).
    pub fn start(upstream: u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a port for the proxy");
        let port = listener.local_addr().expect("its address").port();
        let armed = Arc::new(Mutex::new(None::<Armed>));
        let fired = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let rewrites = Rewrites::default();
        let random = Arc::new(Mutex::new(None::<AtRandom>));
        let dropped = Arc::new(std::sync::atomic::AtomicU64::new(0));
        {
            let (armed, fired, stop) = (armed.clone(), fired.clone(), stop.clone());
            let rewrites = rewrites.clone();
            let (random, dropped) = (random.clone(), dropped.clone());
            thread::spawn(move || {
                for client in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        return;
                    }
                    let Ok(client) = client else { continue };
                    let (armed, fired) = (armed.clone(), fired.clone());
                    let rewrites = rewrites.clone();
                    let (random, dropped) = (random.clone(), dropped.clone());
                    thread::spawn(move || {
                        if let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) {
                            let faults = Faults {
                                armed: &armed,
                                fired: &fired,
                                random: &random,
                                dropped: &dropped,
                            };
                            relay(client, server, &faults, &rewrites);
                        }
                    });
                }
            });
        }
        Self {
            port,
            armed,
            random,
            dropped,
            rewrites,
            fired,
            stop,
        }
    }

    /// From now on, drops the reply to one in `one_in` requests whose
    /// command is one of `commands`, after the server ran it.
    pub fn drop_at_random(&self, commands: &[&str], one_in: u64, seed: u64) {
        *self.random.lock().unwrap() = Some(AtRandom {
            commands: commands
                .iter()
                .map(|c| c.to_ascii_uppercase().into_bytes())
                .collect(),
            one_in: one_in.max(1),
            state: seed | 1,
        });
    }

    /// How many replies were dropped at random so far.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::SeqCst)
    }

    /// Makes replies name the server at port `from` as port `to` (an
    /// integer reply `:from`, or `host:from` at the end of a line, as a
    /// cluster's slot map and redirections name nodes).
    pub fn rename_port(&self, from: u16, to: u16) {
        self.rewrites.lock().unwrap().push((
            format!(":{from}\r\n").into_bytes(),
            format!(":{to}\r\n").into_bytes(),
        ));
    }

    /// Does `fault` to the next request whose command is one of `commands`
    /// (`EVALSHA` and `EVAL` for a script), after `skip` such requests.
    pub fn arm(&self, commands: &[&str], skip: usize, fault: Fault) {
        self.fired.store(false, Ordering::SeqCst);
        *self.armed.lock().unwrap() = Some(Armed {
            commands: commands
                .iter()
                .map(|c| c.to_ascii_uppercase().into_bytes())
                .collect(),
            fault,
            skip,
        });
    }

    /// Whether the armed fault was done; disarms it either way.
    pub fn fired(&self) -> bool {
        self.armed.lock().unwrap().take();
        self.fired.load(Ordering::SeqCst)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// Passes requests and replies between `client` and `server`, one at a
/// time, doing the armed fault to its request.
/// The faults a connection's relay does.
struct Faults<'a> {
    armed: &'a Mutex<Option<Armed>>,
    fired: &'a AtomicBool,
    random: &'a Mutex<Option<AtRandom>>,
    dropped: &'a std::sync::atomic::AtomicU64,
}

fn relay(
    client: TcpStream,
    server: TcpStream,
    faults: &Faults<'_>,
    rewrites: &Mutex<Vec<(Vec<u8>, Vec<u8>)>>,
) {
    let Faults {
        armed,
        fired,
        random,
        dropped,
    } = faults;
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let mut from_client = BufReader::new(client.try_clone().expect("a clone"));
    let mut from_server = BufReader::new(server.try_clone().expect("a clone"));
    let (mut client, mut server) = (client, server);
    loop {
        let mut request = Vec::new();
        let Some(name) = read_value(&mut from_client, &mut request, true) else {
            break;
        };
        let rule = {
            let mut armed = armed.lock().unwrap();
            match armed.as_mut() {
                Some(rule) if rule.commands.contains(&name) => {
                    if rule.skip == 0 {
                        armed.take()
                    } else {
                        rule.skip -= 1;
                        None
                    }
                }
                _ => None,
            }
        };
        let at_random = match random.lock().unwrap().as_mut() {
            Some(random) if random.commands.contains(&name) => random.roll(),
            _ => false,
        };
        let fault = rule
            .as_ref()
            .map(|rule| rule.fault)
            .or(at_random.then_some(Fault::DropReply));
        if fault == Some(Fault::ResetBefore) {
            fired.store(true, Ordering::SeqCst);
            break;
        }
        if server.write_all(&request).is_err() {
            break;
        }
        let mut reply = Vec::new();
        if read_value(&mut from_server, &mut reply, false).is_none() {
            break;
        }
        // A script the server did not know did not run: the fault waits
        // for the request that runs it.
        let fault = match rule {
            Some(rule) if reply.starts_with(b"-NOSCRIPT") => {
                *armed.lock().unwrap() = Some(rule);
                None
            }
            Some(_) => {
                fired.store(true, Ordering::SeqCst);
                fault
            }
            None if at_random && reply.starts_with(b"-NOSCRIPT") => None,
            None => {
                if at_random {
                    dropped.fetch_add(1, Ordering::SeqCst);
                }
                fault
            }
        };
        match fault {
            Some(Fault::DropReply) => break,
            Some(Fault::Stall(pause)) => thread::sleep(pause),
            _ => {}
        }
        for (from, to) in rewrites.lock().unwrap().iter() {
            reply = replace(&reply, from, to);
        }
        if client.write_all(&reply).is_err() {
            break;
        }
    }
    let _ = client.shutdown(Shutdown::Both);
    let _ = server.shutdown(Shutdown::Both);
}

/// Reads one RESP value into `raw`; for a request (`command`), returns
/// its command name upper-cased (else an empty name). `None` at the end
/// of the stream.
fn read_value(reader: &mut impl BufRead, raw: &mut Vec<u8>, command: bool) -> Option<Vec<u8>> {
    let start = raw.len();
    let read = reader.read_until(b'\n', raw).ok()?;
    if read == 0 {
        return None;
    }
    let line = std::str::from_utf8(&raw[start + 1..raw.len() - 2])
        .ok()?
        .to_owned();
    match raw[start] {
        b'$' => {
            let len: i64 = line.parse().ok()?;
            if len >= 0 {
                let at = raw.len();
                raw.resize(at + len as usize + 2, 0);
                reader.read_exact(&mut raw[at..]).ok()?;
                if command {
                    return Some(raw[at..at + len as usize].to_ascii_uppercase());
                }
            }
            Some(Vec::new())
        }
        b'*' => {
            let count: i64 = line.parse().ok()?;
            let mut name = Vec::new();
            for i in 0..count.max(0) {
                let part = read_value(reader, raw, command && i == 0)?;
                if i == 0 {
                    name = part;
                }
            }
            Some(name)
        }
        _ => Some(Vec::new()),
    }
}

/// `bytes` with every `from` replaced by `to`.
fn replace(bytes: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while at < bytes.len() {
        if bytes[at..].starts_with(from) {
            out.extend_from_slice(to);
            at += from.len();
        } else {
            out.push(bytes[at]);
            at += 1;
        }
    }
    out
}
