//! `redisutil`: the statistics, messages and dead letters of redisutil
//! channels on a Redis, from the command line. See `redisutil --help`.

mod dashboard;

use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::{Args, Parser, Subcommand, ValueEnum};
use redisutil::store::{DeadLetter, LeaseStats};
use redisutil::{
    LeaseStore, Peer, RedisAuth, RedisChannel, RedisClusterStore, RedisClusterStoreOptions,
    RedisSentinelStore, RedisSentinelStoreOptions, RedisStore, RedisStoreOptions, TlsOptions,
};
use serde_json::{Value, json};

const EXIT_CODES: &str = "\
Exit codes: 0 done; 1 an error (connection, Redis, bad input); 2 a bad
command line; 3 nothing there (no message to receive, no dead letter
with that id).

The connection: --url or REDIS_URL (redis://, rediss://,
redis-sentinel://host1,host2:26379/0#service, or with --cluster a
redis:// URL of one or more seeds, host1:port1,host2:port2). A password
never goes on the command line (the process list shows it): put it in
REDIS_PASSWORD (and a user in REDIS_USERNAME), in a file named by
--password-file, or in REDIS_URL.

Examples:
  REDIS_URL=redis://127.0.0.1:6379 redisutil channels /jobs/
  redisutil send /jobs/resize '{\"file\": \"a.png\"}'
  seq 1 100 | redisutil send /jobs/numbers
  redisutil recv /jobs/resize --lease 30
  redisutil dead list /jobs/resize --json
  redisutil dead requeue /jobs/resize --id 1733310000000-0
  redisutil dead purge /jobs/resize --all --yes
  redisutil watch /jobs/ --interval 2";

/// Statistics, messages and dead letters of redisutil channels.
#[derive(Parser)]
#[command(name = "redisutil", version, after_help = EXIT_CODES)]
struct Cli {
    #[command(flatten)]
    connection: Connection,
    #[command(subcommand)]
    command: Command,
}

#[derive(Args)]
struct Connection {
    /// The Redis to talk to (no password here: see below).
    #[arg(long, global = true, value_name = "URL")]
    url: Option<String>,
    /// The URL names seeds of a Redis Cluster.
    #[arg(long, global = true)]
    cluster: bool,
    /// A file holding the password (its first line).
    #[arg(long, global = true, value_name = "FILE")]
    password_file: Option<std::path::PathBuf>,
    /// The CA certificate (PEM) that signed the server's, for rediss://.
    #[arg(long, global = true, value_name = "FILE")]
    ca: Option<std::path::PathBuf>,
    /// A client certificate (PEM), with --key, for rediss://.
    #[arg(long, global = true, value_name = "FILE", requires = "key")]
    cert: Option<std::path::PathBuf>,
    /// The client certificate's key (PEM).
    #[arg(long, global = true, value_name = "FILE", requires = "cert")]
    key: Option<std::path::PathBuf>,
    /// How long to wait for a connection or a reply, in seconds.
    #[arg(long, global = true, default_value_t = 5.0, value_name = "SECONDS")]
    timeout: f64,
}

#[derive(Subcommand)]
enum Command {
    /// A table of the channels under PREFIX with the messages waiting, in
    /// flight, waiting for a retry and dead on each of their two lists.
    Channels {
        /// Starts and ends with `/`.
        #[arg(default_value = "/")]
        prefix: String,
        /// At most so many channels.
        #[arg(long, default_value_t = 1000)]
        max: usize,
        /// JSON, one object per channel, for scripts.
        #[arg(long)]
        json: bool,
    },
    /// The messages waiting for an end of CHANNEL, left in place.
    Peek {
        channel: String,
        #[command(flatten)]
        end: End,
        /// At most so many, oldest first.
        #[arg(long, default_value_t = 10)]
        count: usize,
    },
    /// Sends the JSON MESSAGE to an end of CHANNEL, or, without it, one
    /// JSON message per line of standard input (all checked before any is
    /// sent).
    Send {
        channel: String,
        message: Option<String>,
        #[command(flatten)]
        end: End,
    },
    /// Receives messages waiting for an end of CHANNEL and prints them, one
    /// JSON per line.
    Recv {
        channel: String,
        #[command(flatten)]
        end: End,
        /// At most so many.
        #[arg(long, default_value_t = 1)]
        count: usize,
        /// Leases them for so many seconds and acks each once printed:
        /// a message is never lost if printing fails.
        #[arg(long, value_name = "SECONDS")]
        lease: Option<f64>,
    },
    /// The dead letters of an end of CHANNEL.
    Dead {
        #[command(subcommand)]
        action: Dead,
    },
    /// A live view of the channels under PREFIX, like `top`: each list's
    /// counts and how fast its waiting messages grow (+) or drain (-), a
    /// second.
    Watch {
        #[arg(default_value = "/")]
        prefix: String,
        /// Seconds between two looks.
        #[arg(long, default_value_t = 1.0, value_name = "SECONDS")]
        interval: f64,
        /// Stops after so many looks (default: until interrupted).
        #[arg(long)]
        iterations: Option<u64>,
        #[arg(long, default_value_t = 1000)]
        max: usize,
        /// JSON lines, one per channel and look.
        #[arg(long)]
        json: bool,
    },
    /// Serves one web page: the channels under PREFIX with their counts, a
    /// chart of their waiting messages over the last minutes, and their
    /// dead letters with buttons to requeue or purge them. Read-only
    /// unless a token is given (REDISUTIL_DASHBOARD_TOKEN or
    /// --token-file), which the page sends with every change.
    Dashboard {
        #[arg(default_value = "/")]
        prefix: String,
        /// Where to listen (port 0: any free one, said on standard output).
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: std::net::SocketAddr,
        /// A file holding the token that allows changes (its first line).
        #[arg(long, value_name = "FILE")]
        token_file: Option<std::path::PathBuf>,
        /// Seconds between two samples of the chart.
        #[arg(long, default_value_t = 2.0, value_name = "SECONDS")]
        every: f64,
        #[arg(long, default_value_t = 1000)]
        max: usize,
    },
    /// Prints the completion script of SHELL (for example
    /// `redisutil completions bash > /etc/bash_completion.d/redisutil`).
    Completions { shell: clap_complete::Shell },
}

#[derive(Subcommand)]
enum Dead {
    /// Lists them, oldest first.
    List {
        channel: String,
        #[command(flatten)]
        end: End,
        #[arg(long, default_value_t = 100)]
        max: usize,
        #[arg(long)]
        json: bool,
    },
    /// Sends them again (those with these ids, or all).
    Requeue {
        channel: String,
        #[command(flatten)]
        end: End,
        #[command(flatten)]
        pick: Pick,
    },
    /// Deletes them (those with these ids, or all); asks first unless
    /// --yes.
    Purge {
        channel: String,
        #[command(flatten)]
        end: End,
        #[command(flatten)]
        pick: Pick,
        #[arg(long)]
        yes: bool,
    },
}

#[derive(Args)]
struct End {
    /// The end whose messages these are: the server end receives what
    /// clients send.
    #[arg(long, value_enum, default_value_t = Receiver::Server)]
    to: Receiver,
}

#[derive(Args)]
#[group(required = true, multiple = false)]
struct Pick {
    /// A dead letter's id (from `dead list`); repeatable.
    #[arg(long = "id", value_name = "ID")]
    ids: Vec<String>,
    /// Every dead letter.
    #[arg(long)]
    all: bool,
}

#[derive(Clone, Copy, ValueEnum)]
enum Receiver {
    Server,
    Client,
}

/// A failure, and the exit code it means.
struct Failure {
    code: u8,
    message: String,
}

impl<E: std::fmt::Display> From<E> for Failure {
    fn from(err: E) -> Self {
        Self {
            code: 1,
            message: err.to_string(),
        }
    }
}

fn fail(code: u8, message: impl Into<String>) -> Failure {
    Failure {
        code,
        message: message.into(),
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) if !err.use_stderr() => {
            // --help, --version.
            let _ = err.print();
            return ExitCode::SUCCESS;
        }
        Err(err) => {
            // One line, like every other error.
            let rendered = err.render().to_string();
            let said: Vec<&str> = rendered
                .lines()
                .take_while(|line| !line.starts_with("Usage:") && !line.starts_with("For more"))
                .map(str::trim)
                .filter(|line| !line.is_empty())
                .collect();
            let said = said.join(" ");
            let said = said.strip_prefix("error: ").unwrap_or(&said);
            eprintln!("redisutil: error: {said} (redisutil --help)");
            return ExitCode::from(2);
        }
    };
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            // One line, whatever the error said.
            let message = failure.message.replace('\n', " ");
            eprintln!("redisutil: error: {message}");
            ExitCode::from(failure.code)
        }
    }
}

fn run(cli: Cli) -> Result<(), Failure> {
    if let Command::Completions { shell } = cli.command {
        let mut command = <Cli as clap::CommandFactory>::command();
        clap_complete::generate(shell, &mut command, "redisutil", &mut std::io::stdout());
        return Ok(());
    }
    match open(&cli.connection)? {
        Store::Server(store) => command(store, cli.command),
        Store::Cluster(store) => command(store, cli.command),
        Store::Sentinel(store) => command(store, cli.command),
    }
}

enum Store {
    Server(RedisStore),
    Cluster(RedisClusterStore),
    Sentinel(RedisSentinelStore),
}

/// The store the connection options name.
fn open(connection: &Connection) -> Result<Store, Failure> {
    let from_argv = connection.url.is_some();
    let url = match &connection.url {
        Some(url) => url.clone(),
        None => std::env::var("REDIS_URL")
            .map_err(|_| fail(2, "no Redis named: give --url URL or set REDIS_URL"))?,
    };
    if from_argv && credentials_in(&url) {
        return Err(fail(
            2,
            "--url holds credentials, which the process list would show: put the URL in \
             REDIS_URL, or the password in REDIS_PASSWORD or --password-file",
        ));
    }
    let auth = auth(connection)?;
    let tls = tls(connection)?;
    if !(connection.timeout > 0.0 && connection.timeout.is_finite()) {
        return Err(fail(2, "--timeout must be a positive number of seconds"));
    }
    let timeout = Duration::from_secs_f64(connection.timeout);
    if let Some(rest) = url.strip_prefix("redis-sentinel://") {
        let _ = rest;
        let options = RedisSentinelStoreOptions {
            connect_timeout: timeout,
            response_timeout: Some(timeout),
            auth,
            tls,
            ..RedisSentinelStoreOptions::default()
        };
        return Ok(Store::Sentinel(RedisSentinelStore::open_url(
            &url, options,
        )?));
    }
    if connection.cluster {
        let options = RedisClusterStoreOptions {
            connect_timeout: timeout,
            response_timeout: Some(timeout),
            auth,
            tls,
            ..RedisClusterStoreOptions::default()
        };
        return Ok(Store::Cluster(RedisClusterStore::open_with(
            seeds(&url)?,
            options,
        )?));
    }
    let options = RedisStoreOptions {
        connect_timeout: timeout,
        response_timeout: Some(timeout),
        auth,
        tls,
        ..RedisStoreOptions::default()
    };
    Ok(Store::Server(RedisStore::open_with(url.as_str(), options)?))
}

/// Whether `url` carries a user or a password (`scheme://…@host`).
fn credentials_in(url: &str) -> bool {
    let authority = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = authority.split(['/', '#', '?']).next().unwrap_or("");
    authority.contains('@')
}

/// The seeds of `scheme://host1:port1,host2:port2/…`, each as a URL of
/// its own (the credentials and the path with each).
fn seeds(url: &str) -> Result<Vec<String>, Failure> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| fail(1, "a cluster URL is redis://host1:port1,host2:port2"))?;
    let (credentials, rest) = match rest.rsplit_once('@') {
        Some((credentials, rest)) => (format!("{credentials}@"), rest),
        None => (String::new(), rest),
    };
    let (hosts, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    Ok(hosts
        .split(',')
        .map(|host| format!("{scheme}://{credentials}{host}{path}"))
        .collect())
}

/// The password from REDIS_PASSWORD or --password-file.
fn auth(connection: &Connection) -> Result<Option<RedisAuth>, Failure> {
    let password = match &connection.password_file {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|err| {
                fail(
                    1,
                    format!("cannot read the password file {}: {err}", path.display()),
                )
            })?;
            Some(text.lines().next().unwrap_or("").to_owned())
        }
        None => std::env::var("REDIS_PASSWORD").ok(),
    };
    Ok(
        password.map(|password| match std::env::var("REDIS_USERNAME") {
            Ok(user) => RedisAuth::user(user, password),
            Err(_) => RedisAuth::password(password),
        }),
    )
}

/// The TLS options from --ca, --cert and --key.
fn tls(connection: &Connection) -> Result<Option<TlsOptions>, Failure> {
    let read = |path: &std::path::PathBuf| {
        std::fs::read(path).map_err(|err| fail(1, format!("cannot read {}: {err}", path.display())))
    };
    if connection.ca.is_none() && connection.cert.is_none() {
        return Ok(None);
    }
    let mut options = TlsOptions::default();
    if let Some(ca) = &connection.ca {
        options.ca_pem = Some(read(ca)?);
    }
    if let (Some(cert), Some(key)) = (&connection.cert, &connection.key) {
        options.client = Some(redisutil::ClientIdentity {
            cert_pem: read(cert)?,
            key_pem: read(key)?,
        });
    }
    Ok(Some(options))
}

/// The end of `name` that receives the messages of `to`.
fn channel<S: LeaseStore>(store: S, name: &str, to: &End) -> Result<RedisChannel<S>, Failure> {
    let peer = match to.to {
        Receiver::Server => Peer::Server,
        Receiver::Client => Peer::Client,
    };
    Ok(RedisChannel::new(store, name, peer)?)
}

fn command<S: LeaseStore + Clone + Send + Sync + 'static>(
    store: S,
    command: Command,
) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    match command {
        Command::Channels { prefix, max, json } => {
            let stats = redisutil::channel_stats(&store, &prefix, max)?;
            if json {
                for channel in &stats {
                    let line = json!({
                        "channel": channel.name,
                        "to_server": stats_json(&channel.to_server),
                        "to_client": stats_json(&channel.to_client),
                    });
                    writeln!(out, "{line}")?;
                }
            } else {
                writeln!(
                    out,
                    "{:<40} {:>24}  {:>24}",
                    "CHANNEL", "TO SERVER wait/held/retry/dead", "TO CLIENT wait/held/retry/dead"
                )?;
                for channel in &stats {
                    writeln!(
                        out,
                        "{:<40} {:>24}  {:>24}",
                        channel.name,
                        counts(&channel.to_server),
                        counts(&channel.to_client)
                    )?;
                }
            }
        }
        Command::Peek {
            channel: name,
            end,
            count,
        } => {
            let chan = channel(store.clone(), &name, &end)?;
            let list = chan.recv_key().to_owned();
            let mut found = 0;
            for index in 0..count {
                let Some(bytes) = store.index(&list, index as i64)? else {
                    break;
                };
                writeln!(out, "{}", printable(&bytes))?;
                found += 1;
            }
            if found == 0 {
                return Err(fail(3, format!("no message waits on {name}")));
            }
        }
        Command::Send {
            channel: name,
            message,
            end,
        } => {
            // Sent by the other end, to the one named.
            let chan = channel(store, &name, &end)?;
            let sender =
                RedisChannel::new(chan.store().clone(), name.as_str(), chan.peer().other())?;
            let messages = match message {
                Some(message) => vec![parse(&message, "the message")?],
                None => std::io::stdin()
                    .lock()
                    .lines()
                    .enumerate()
                    .filter(|(_, line)| line.as_ref().map_or(true, |line| !line.trim().is_empty()))
                    .map(|(at, line)| parse(&line?, &format!("line {}", at + 1)))
                    .collect::<Result<Vec<Value>, Failure>>()?,
            };
            let sent = sender.send_msgs(&messages)?;
            writeln!(out, "sent {sent}")?;
        }
        Command::Recv {
            channel: name,
            end,
            count,
            lease,
        } => {
            let chan = channel(store, &name, &end)?;
            let mut received = 0;
            match lease {
                None => {
                    for message in chan.recv_msgs::<Value>(count)? {
                        match message {
                            Ok(value) => writeln!(out, "{value}")?,
                            Err(err) => writeln!(out, "{}", printable(err.raw()))?,
                        }
                        received += 1;
                    }
                }
                Some(seconds) => {
                    if !(seconds > 0.0 && seconds.is_finite()) {
                        return Err(fail(2, "--lease must be a positive number of seconds"));
                    }
                    let leased =
                        chan.lease_msgs::<Value>(count, Duration::from_secs_f64(seconds))?;
                    for delivery in leased {
                        let delivery = delivery?;
                        writeln!(out, "{}", delivery.msg())?;
                        out.flush()?;
                        chan.ack(&delivery)?;
                        received += 1;
                    }
                }
            }
            if received == 0 {
                return Err(fail(3, format!("no message waits on {name}")));
            }
        }
        Command::Dead { action } => dead(store, action, &mut out)?,
        Command::Watch {
            prefix,
            interval,
            iterations,
            max,
            json,
        } => {
            if !(interval > 0.0 && interval.is_finite()) {
                return Err(fail(2, "--interval must be a positive number of seconds"));
            }
            watch(
                &store,
                &prefix,
                Duration::from_secs_f64(interval),
                iterations,
                max,
                json,
                &mut out,
            )?;
        }
        Command::Dashboard {
            prefix,
            listen,
            token_file,
            every,
            max,
        } => {
            if !(every > 0.0 && every.is_finite()) {
                return Err(fail(2, "--every must be a positive number of seconds"));
            }
            let token = match token_file {
                Some(path) => Some(
                    std::fs::read_to_string(&path)
                        .map_err(|err| {
                            fail(
                                1,
                                format!("cannot read the token file {}: {err}", path.display()),
                            )
                        })?
                        .lines()
                        .next()
                        .unwrap_or("")
                        .to_owned(),
                ),
                None => std::env::var("REDISUTIL_DASHBOARD_TOKEN").ok(),
            };
            if token.as_ref().is_some_and(|token| token.len() < 16) {
                return Err(fail(
                    2,
                    "the dashboard's token needs at least 16 characters",
                ));
            }
            drop(out);
            dashboard::serve(
                store,
                prefix,
                max,
                listen,
                token,
                Duration::from_secs_f64(every),
            )?;
        }
        Command::Completions { .. } => unreachable!("answered before connecting"),
    }
    Ok(())
}

/// `watch`: looks every `interval`, `iterations` times (or forever).
fn watch<S: LeaseStore>(
    store: &S,
    prefix: &str,
    interval: Duration,
    iterations: Option<u64>,
    max: usize,
    json: bool,
    out: &mut impl Write,
) -> Result<(), Failure> {
    let terminal = std::io::stdout().is_terminal();
    let mut before: std::collections::HashMap<String, (u64, u64)> = Default::default();
    let mut looked_at: Option<std::time::Instant> = None;
    let mut look = 0;
    while iterations.is_none_or(|n| look < n) {
        if look > 0 {
            std::thread::sleep(interval);
        }
        look += 1;
        let stats = redisutil::channel_stats(store, prefix, max)?;
        let now = std::time::Instant::now();
        let seconds = looked_at.map(|at| now.duration_since(at).as_secs_f64());
        looked_at = Some(now);
        // Growth a second of the waiting messages of each list.
        let rate = |name: &str, side: usize, depth: u64| -> Option<f64> {
            let (server, client) = before.get(name)?;
            let was = if side == 0 { *server } else { *client };
            Some((depth as f64 - was as f64) / seconds?)
        };
        if terminal && !json {
            // Clear the screen and go home, like `top`.
            write!(out, "\x1b[2J\x1b[H")?;
        }
        if !json {
            writeln!(
                out,
                "{:<40} {:>24} {:>9}  {:>24} {:>9}",
                "CHANNEL",
                "TO SERVER wait/held/retry/dead",
                "wait/s",
                "TO CLIENT wait/held/retry/dead",
                "wait/s"
            )?;
        }
        for channel in &stats {
            let (server, client) = (&channel.to_server, &channel.to_client);
            let server_rate = rate(&channel.name, 0, server.depth);
            let client_rate = rate(&channel.name, 1, client.depth);
            if json {
                let line = json!({
                    "channel": channel.name,
                    "to_server": stats_json(server),
                    "to_client": stats_json(client),
                    "to_server_waiting_per_s": server_rate,
                    "to_client_waiting_per_s": client_rate,
                });
                writeln!(out, "{line}")?;
            } else {
                let shown = |rate: Option<f64>| rate.map_or("-".to_owned(), |r| format!("{r:+.1}"));
                writeln!(
                    out,
                    "{:<40} {:>24} {:>9}  {:>24} {:>9}",
                    channel.name,
                    counts(server),
                    shown(server_rate),
                    counts(client),
                    shown(client_rate)
                )?;
            }
        }
        if !terminal && !json {
            writeln!(out)?;
        }
        out.flush()?;
        before = stats
            .iter()
            .map(|c| (c.name.clone(), (c.to_server.depth, c.to_client.depth)))
            .collect();
    }
    Ok(())
}

fn dead<S: LeaseStore + Clone>(
    store: S,
    action: Dead,
    out: &mut impl Write,
) -> Result<(), Failure> {
    match action {
        Dead::List {
            channel: name,
            end,
            max,
            json,
        } => {
            let chan = channel(store, &name, &end)?;
            for letter in chan.dead_letters(max)? {
                if json {
                    writeln!(out, "{}", dead_json(&letter))?;
                } else {
                    writeln!(
                        out,
                        "{}  {} deliveries  {:?}  {}",
                        letter.id,
                        letter.deliveries,
                        letter.reason,
                        printable(&letter.body)
                    )?;
                }
            }
        }
        Dead::Requeue {
            channel: name,
            end,
            pick,
        } => {
            let chan = channel(store, &name, &end)?;
            let moved = if pick.all {
                // By chunks: one script never holds Redis up for long.
                let total = chan.lease_stats()?.dead;
                chunked("requeued", total, || chan.requeue_dead(CHUNK))?
            } else {
                chan.requeue_dead_letters(&pick.ids)?
            };
            writeln!(out, "requeued {moved}")?;
            if moved == 0 {
                return Err(fail(3, "no such dead letter"));
            }
        }
        Dead::Purge {
            channel: name,
            end,
            pick,
            yes,
        } => {
            let chan = channel(store, &name, &end)?;
            if !yes {
                let what = if pick.all {
                    format!("every dead letter of {name}")
                } else {
                    format!("{} dead letter(s) of {name}", pick.ids.len())
                };
                if !confirm(&format!("delete {what}?"))? {
                    return Err(fail(
                        1,
                        "not confirmed: nothing deleted (--yes skips the question)",
                    ));
                }
            }
            let deleted = if pick.all {
                let total = chan.lease_stats()?.dead;
                chunked("purged", total, || {
                    let ids: Vec<String> = chan
                        .dead_letters(CHUNK)?
                        .into_iter()
                        .map(|letter| letter.id)
                        .collect();
                    if ids.is_empty() {
                        return Ok(0);
                    }
                    chan.purge_dead_letters(&ids)
                })?
            } else {
                chan.purge_dead_letters(&pick.ids)?
            };
            writeln!(out, "purged {deleted}")?;
            if deleted == 0 {
                return Err(fail(3, "no such dead letter"));
            }
        }
    }
    Ok(())
}

/// Dead letters requeued or purged in one call of a chunked `--all`.
const CHUNK: usize = 1000;

/// Calls `step` (one chunk; how many it did) until it does none; on a
/// terminal, shows how far it got out of `total` on standard error.
fn chunked(
    did: &str,
    total: u64,
    mut step: impl FnMut() -> Result<u64, redisutil::ChannelError>,
) -> Result<u64, Failure> {
    let terminal = std::io::stderr().is_terminal();
    let mut done = 0;
    loop {
        let now = step()?;
        if now == 0 {
            break;
        }
        done += now;
        if terminal && total > CHUNK as u64 {
            let width = 30;
            let filled = (done.min(total) * width / total.max(1)) as usize;
            eprint!(
                "\r[{}{}] {did} {done} of {total}",
                "#".repeat(filled),
                " ".repeat(width as usize - filled)
            );
        }
    }
    if terminal && total > CHUNK as u64 {
        eprintln!();
    }
    Ok(done)
}

/// Asks on the terminal; without one, the answer is no.
fn confirm(question: &str) -> Result<bool, Failure> {
    if !std::io::stdin().is_terminal() {
        return Ok(false);
    }
    eprint!("{question} [y/N] ");
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer)?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes"))
}

fn parse(text: &str, what: &str) -> Result<Value, Failure> {
    serde_json::from_str(text)
        .map_err(|err| fail(1, format!("{what} is not JSON ({err}): nothing sent")))
}

/// Bytes as a line: their JSON when they are, else escaped.
fn printable(bytes: &[u8]) -> String {
    match serde_json::from_slice::<Value>(bytes) {
        Ok(value) => value.to_string(),
        Err(_) => format!("{:?}", String::from_utf8_lossy(bytes)),
    }
}

fn counts(stats: &LeaseStats) -> String {
    format!(
        "{}/{}/{}/{}",
        stats.depth, stats.in_flight, stats.retrying, stats.dead
    )
}

fn millis(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_millis() as u64)
}

fn stats_json(stats: &LeaseStats) -> Value {
    json!({
        "waiting": stats.depth,
        "in_flight": stats.in_flight,
        "retrying": stats.retrying,
        "dead": stats.dead,
        "next_deadline_ms": stats.next_deadline.map(millis),
    })
}

fn dead_json(letter: &DeadLetter) -> Value {
    json!({
        "id": letter.id,
        "message_id": letter.message_id,
        "deliveries": letter.deliveries,
        "reason": format!("{:?}", letter.reason),
        "at_ms": millis(letter.at),
        "body": String::from_utf8_lossy(&letter.body),
    })
}
