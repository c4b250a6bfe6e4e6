//! The `redisutil` command on the other deployments it names: a TLS
//! server (`rediss://` with `--ca`), a Sentinel service
//! (`redis-sentinel://`) and a Redis Cluster (`--cluster` with seeds).
//! Needs `redis-server`, `redis-cli` and `openssl` (`scripts/setup`).

mod common;

use common::{free_port, redis_server, start_listening};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Processes killed, and a directory removed, on drop.
struct Deployment {
    children: Vec<Child>,
    dir: PathBuf,
}

impl Deployment {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("redisutil-cli-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self {
            children: Vec::new(),
            dir,
        }
    }

    /// Starts `redis-server` with the arguments `args(port)` gives, on a
    /// port found free, and waits until it listens; returns the port.
    fn server(&mut self, args: impl Fn(u16) -> Vec<String>) -> u16 {
        let (child, port) =
            start_listening("redis-server", "apt-get install redis-server", |port| {
                let mut command = Command::new("redis-server");
                command
                    .args(args(port))
                    .current_dir(&self.dir)
                    .stdout(Stdio::null());
                command
            });
        self.children.push(child);
        port
    }

    fn path(&self, name: &str) -> String {
        self.dir.join(name).to_str().unwrap().to_owned()
    }
}

impl Drop for Deployment {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|arg| arg.to_string()).collect()
}

fn redisutil(url: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_redisutil"))
        .args(args)
        .env("REDIS_URL", url)
        .env_remove("REDIS_PASSWORD")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn ok(output: Output) -> String {
    let said = String::from_utf8(output.stderr).unwrap();
    assert!(output.status.success(), "{:?}: {said}", output.status);
    String::from_utf8(output.stdout).unwrap()
}

fn run(program: &str, args: &[&str], dir: &Path) {
    let output = Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|err| panic!("cannot run {program} ({err}): scripts/setup"));
    assert!(
        output.status.success(),
        "{program}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[cfg(feature = "tls")]
#[test]
fn rediss_urls_need_the_servers_ca() {
    let mut tls = Deployment::new("tls");
    // A CA, and the server's certificate signed by it.
    let openssl = |args: &str| run("openssl", &args.split(' ').collect::<Vec<_>>(), &tls.dir);
    openssl(
        "req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=test-ca -keyout ca.key -out ca.pem",
    );
    openssl("req -newkey rsa:2048 -nodes -subj /CN=localhost -keyout key.pem -out server.csr");
    std::fs::write(
        tls.dir.join("san.cnf"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n",
    )
    .unwrap();
    openssl(
        "x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 1 \
         -extfile san.cnf -out cert.pem",
    );
    let (cert, key, ca) = (
        tls.path("cert.pem"),
        tls.path("key.pem"),
        tls.path("ca.pem"),
    );
    let port = tls.server(|port| {
        let port = port.to_string();
        strings(&[
            "--port",
            "0",
            "--tls-port",
            &port,
            "--tls-cert-file",
            &cert,
            "--tls-key-file",
            &key,
            "--tls-ca-cert-file",
            &cert,
            "--tls-auth-clients",
            "no",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
    });
    let url = format!("rediss://127.0.0.1:{port}");
    assert_eq!(
        ok(redisutil(&url, &["--ca", &ca, "send", "/tls/a", "1"])),
        "sent 1\n"
    );
    assert!(ok(redisutil(&url, &["--ca", &ca, "channels"])).contains("/tls/a"));
    let untrusted = redisutil(&url, &["channels"]);
    assert_eq!(untrusted.status.code(), Some(1));
    let said = String::from_utf8(untrusted.stderr).unwrap();
    assert_eq!(said.lines().count(), 1, "{said}");
}

#[test]
fn redis_sentinel_urls_find_the_master() {
    let mut sentinel = Deployment::new("sentinel");
    let (child, master) = redis_server(&[]);
    sentinel.children.push(child);
    let conf = sentinel.path("sentinel.conf");
    let port = sentinel.server(|port| {
        std::fs::write(
            &conf,
            format!("port {port}\nsentinel monitor mymaster 127.0.0.1 {master} 1\n"),
        )
        .unwrap();
        strings(&[&conf, "--sentinel"])
    });
    let url = format!("redis-sentinel://127.0.0.1:{port}/#mymaster");
    assert_eq!(
        ok(redisutil(&url, &["send", "/sentinel/a", "[1, 2]"])),
        "sent 1\n"
    );
    assert_eq!(ok(redisutil(&url, &["peek", "/sentinel/a"])), "[1,2]\n");
    let unknown = redisutil(
        &format!("redis-sentinel://127.0.0.1:{port}/#nobody"),
        &["channels"],
    );
    assert_eq!(unknown.status.code(), Some(1));
}

#[test]
fn cluster_seeds_reach_every_master() {
    let mut cluster = Deployment::new("cluster");
    let ports: Vec<u16> = (0..3)
        .map(|_| {
            cluster.server(|port| {
                let nodes = format!("nodes-{port}.conf");
                // A bus port of its own (the default, port + 10000, may be
                // taken or beyond 65535).
                let (port, bus) = (port.to_string(), free_port().to_string());
                strings(&[
                    "--port",
                    &port,
                    "--cluster-port",
                    &bus,
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    &nodes,
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                ])
            })
        })
        .collect();
    let mut create = vec!["--cluster".to_owned(), "create".to_owned()];
    create.extend(ports.iter().map(|port| format!("127.0.0.1:{port}")));
    create.extend(["--cluster-replicas", "0", "--cluster-yes"].map(String::from));
    let create: Vec<&str> = create.iter().map(String::as_str).collect();
    run("redis-cli", &create, &cluster.dir);
    let url = format!("redis://127.0.0.1:{},127.0.0.1:{}", ports[0], ports[1]);
    // Until every node says every slot is served.
    let started = Instant::now();
    for port in &ports {
        loop {
            let info = Command::new("redis-cli")
                .args(["-p", &port.to_string(), "cluster", "info"])
                .output()
                .unwrap();
            if String::from_utf8_lossy(&info.stdout).contains("cluster_state:ok") {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "the cluster never came up"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    for n in 0..12 {
        ok(redisutil(
            &url,
            &[
                "--cluster",
                "send",
                &format!("/cluster/{n}"),
                &n.to_string(),
            ],
        ));
    }
    let listed = ok(redisutil(
        &url,
        &["--cluster", "channels", "/cluster/", "--json"],
    ));
    assert_eq!(
        listed.lines().count(),
        12,
        "channels on every master: {listed}"
    );
    assert_eq!(
        ok(redisutil(&url, &["--cluster", "recv", "/cluster/7"])),
        "7\n"
    );
}
