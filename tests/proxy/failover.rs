//! Retry and failover as properties: random per-host outcome scripts,
//! random retry counts, one to three clusters, checked against a plain
//! model of the rules in DESIGN.md.

use std::collections::HashMap;

use proptest::prelude::*;
use redisutil::proxy::{
    Answered, AttemptFailure, CallOptions, Error, FakeTransport, Outcome, ProxyConfig, ProxyHost,
    RedisProxyClient,
};

/// What one scripted host does with one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Ok,
    NotFound,
    Status(u16),
    Refused,
    TimedOut,
    Reset,
}

impl Step {
    fn outcome(self) -> Outcome {
        match self {
            Self::Ok => Outcome::json(200, "value"),
            Self::NotFound => Outcome::status(404),
            Self::Status(status) => Outcome::status(status),
            Self::Refused => Outcome::Refused,
            Self::TimedOut => Outcome::TimedOut,
            Self::Reset => Outcome::Reset,
        }
    }

    /// Whether the client moves on to the next host.
    fn skips(self) -> bool {
        matches!(
            self,
            Self::Refused | Self::TimedOut | Self::Reset | Self::Status(502..=504)
        )
    }
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => Just(Step::Ok),
        1 => Just(Step::NotFound),
        1 => prop::sample::select(vec![201u16, 302, 403, 500, 502, 503, 504]).prop_map(Step::Status),
        2 => Just(Step::Refused),
        2 => Just(Step::TimedOut),
        1 => Just(Step::Reset),
    ]
}

/// A host's script; once used up the host refuses.
type Script = Vec<Step>;

#[derive(Debug, Clone)]
struct Scenario {
    clusters: Vec<Vec<Script>>,
    retry: u32,
    /// Per-call override instead of the client default.
    per_call: bool,
    write: bool,
}

fn scenario() -> impl Strategy<Value = Scenario> {
    (
        prop::collection::vec(
            prop::collection::vec(prop::collection::vec(step(), 0..6), 1..4),
            1..4,
        ),
        0u32..4,
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(clusters, retry, per_call, write)| Scenario {
            clusters,
            retry,
            per_call,
            write,
        })
}

fn host(cluster: usize, index: usize) -> ProxyHost {
    ProxyHost::new(format!("10.0.{cluster}.{index}"), 80)
}

/// The summary of a result both sides are reduced to.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Summary {
    Ok,
    NotFound(String),
    Server(u16, String),
    /// `(host, round)` of every failed attempt.
    Send(Vec<(String, u32)>),
    Partial(Vec<usize>, Vec<(usize, Box<Summary>)>),
    Other(String),
}

fn summarize(result: &Result<(), Error>) -> Summary {
    match result {
        Ok(()) => Summary::Ok,
        Err(error) => summarize_error(error),
    }
}

fn summarize_error(error: &Error) -> Summary {
    match error {
        Error::KeyNotFound { host, .. } => Summary::NotFound(host.to_string()),
        Error::ServerResponse { status, host, .. } => {
            Summary::Server(status.as_u16(), host.to_string())
        }
        Error::SendRequest { attempts } => Summary::Send(
            attempts
                .iter()
                .map(|attempt| {
                    // Every failure is one the client may skip.
                    assert!(matches!(
                        attempt.failure,
                        AttemptFailure::Transport(_) | AttemptFailure::Unavailable(_)
                    ));
                    (attempt.host.to_string(), attempt.round)
                })
                .collect(),
        ),
        Error::PartialWrite { written, failed } => Summary::Partial(
            written.clone(),
            failed
                .iter()
                .map(|failure| (failure.cluster, Box::new(summarize_error(&failure.error))))
                .collect(),
        ),
        other => Summary::Other(other.to_string()),
    }
}

/// The model: the hosts tried, in order, and the result.
fn model(scenario: &Scenario) -> (Vec<String>, Summary) {
    let mut cursor: HashMap<(usize, usize), usize> = HashMap::new();
    let mut tried = Vec::new();
    let mut run_cluster = |cluster: usize, scripts: &[Script]| -> Summary {
        let mut failed = Vec::new();
        for round in 0..=scenario.retry {
            for (index, script) in scripts.iter().enumerate() {
                let name = host(cluster, index).to_string();
                tried.push(name.clone());
                let position = cursor.entry((cluster, index)).or_insert(0);
                let step = script.get(*position).copied().unwrap_or(Step::Refused);
                *position += 1;
                match step {
                    Step::Ok => return Summary::Ok,
                    Step::NotFound => return Summary::NotFound(name),
                    step if step.skips() => failed.push((name, round)),
                    Step::Status(status) => return Summary::Server(status, name),
                    _ => unreachable!("every step is handled"),
                }
            }
        }
        Summary::Send(failed)
    };
    let result = if scenario.write {
        let outcomes: Vec<Summary> = scenario
            .clusters
            .iter()
            .enumerate()
            .map(|(cluster, scripts)| run_cluster(cluster, scripts))
            .collect();
        let written: Vec<usize> = (0..outcomes.len())
            .filter(|&c| outcomes[c] == Summary::Ok)
            .collect();
        let failed: Vec<(usize, Box<Summary>)> = outcomes
            .iter()
            .enumerate()
            .filter(|(_, outcome)| **outcome != Summary::Ok)
            .map(|(cluster, outcome)| (cluster, Box::new(outcome.clone())))
            .collect();
        // Some but not all: a partial write; none: the main cluster's
        // error, however many clusters there are.
        match (failed.is_empty(), written.is_empty()) {
            (true, _) => Summary::Ok,
            (false, true) => *failed[0].1.clone(),
            (false, false) => Summary::Partial(written, failed),
        }
    } else {
        let mut last = None;
        for (cluster, scripts) in scenario.clusters.iter().enumerate() {
            let outcome = run_cluster(cluster, scripts);
            if outcome == Summary::Ok {
                last = Some(Summary::Ok);
                break;
            }
            last = Some(outcome);
        }
        last.expect("at least one cluster")
    };
    (tried, result)
}

fn run(scenario: &Scenario) -> (Vec<String>, Summary) {
    let fake = FakeTransport::new();
    for (cluster, scripts) in scenario.clusters.iter().enumerate() {
        for (index, script) in scripts.iter().enumerate() {
            for step in script {
                fake.push(host(cluster, index), step.outcome());
            }
        }
    }
    let config = ProxyConfig {
        proxy_hosts: scenario
            .clusters
            .iter()
            .enumerate()
            .map(|(cluster, scripts)| (0..scripts.len()).map(|i| host(cluster, i)).collect())
            .collect(),
        retry: if scenario.per_call { 0 } else { scenario.retry },
        ..ProxyConfig::default()
    };
    let client = RedisProxyClient::new(&fake, config).expect("valid config");
    let options = if scenario.per_call {
        CallOptions::new().retry(scenario.retry)
    } else {
        CallOptions::new()
    };
    let result = if scenario.write {
        client.set_with("key", "value", &options)
    } else {
        client
            .get_with::<String>("key", &options)
            .map(|value| assert_eq!(value, "value"))
    };
    (fake.hosts_tried(), summarize(&result))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn failover_follows_the_model(scenario in scenario()) {
        let (tried, result) = run(&scenario);
        let (expected_tried, expected_result) = model(&scenario);
        prop_assert_eq!(&tried, &expected_tried);
        prop_assert_eq!(&result, &expected_result);
        // Attempts per cluster never exceed (retry + 1) × hosts.
        for (cluster, scripts) in scenario.clusters.iter().enumerate() {
            let prefix = format!("10.0.{cluster}.");
            let attempts = tried.iter().filter(|h| h.starts_with(&prefix)).count();
            prop_assert!(attempts <= (scenario.retry as usize + 1) * scripts.len());
        }
        // Writes reach every cluster (reads stopping at the first success
        // is the model's order of attempts, checked above).
        if scenario.write {
            for cluster in 0..scenario.clusters.len() {
                let prefix = format!("10.0.{cluster}.");
                prop_assert!(tried.iter().any(|h| h.starts_with(&prefix)));
            }
        }
    }
}

#[test]
fn a_partial_write_names_the_clusters() {
    let fake = FakeTransport::new();
    fake.set_default("10.0.0.0:80", Outcome::json(200, &()));
    fake.set_default("10.0.1.0:80", Outcome::status(500));
    fake.set_default("10.0.2.0:80", Outcome::json(200, &()));
    let config = ProxyConfig {
        proxy_hosts: vec![vec![host(0, 0)], vec![host(1, 0)], vec![host(2, 0)]],
        ..ProxyConfig::default()
    };
    let client = RedisProxyClient::new(&fake, config).expect("client");
    let error = client.set("k", "v").expect_err("cluster 1 fails");
    assert_eq!(
        error.to_string(),
        "write taken by clusters [0, 2], not by cluster 1 \
         (proxy 10.0.1.0:80 answered 500 Internal Server Error: \"\")"
    );
    // All three clusters were written to.
    assert_eq!(
        fake.hosts_tried(),
        ["10.0.0.0:80", "10.0.1.0:80", "10.0.2.0:80"]
    );
}

#[test]
fn a_read_falls_back_to_the_backup_on_not_found() {
    let fake = FakeTransport::new();
    fake.set_default("10.0.0.0:80", Outcome::status(404));
    fake.set_default("10.0.1.0:80", Outcome::json(200, "from backup"));
    let config = ProxyConfig {
        proxy_hosts: vec![vec![host(0, 0)], vec![host(1, 0)]],
        ..ProxyConfig::default()
    };
    let client = RedisProxyClient::new(&fake, config).expect("client");
    assert_eq!(
        client.get::<String>("k").expect("backup has it"),
        "from backup"
    );
}

/// A write no cluster took fails as it does with one cluster: with the main
/// cluster's own error, never a "partial write" of nothing.
#[test]
fn a_write_no_cluster_took_is_the_main_clusters_error() {
    for clusters in 1..=3 {
        let fake = FakeTransport::new();
        fake.set_default("10.0.0.0:80", Outcome::status(500));
        fake.set_default("10.0.1.0:80", Outcome::Refused);
        fake.set_default("10.0.2.0:80", Outcome::status(404));
        let config = ProxyConfig {
            proxy_hosts: (0..clusters)
                .map(|cluster| vec![host(cluster, 0)])
                .collect(),
            ..ProxyConfig::default()
        };
        let client = RedisProxyClient::new(&fake, config).expect("client");
        for error in [
            client.set("k", "v").expect_err("no cluster takes it"),
            client.delete("k").expect_err("no cluster takes it"),
        ] {
            match error {
                Error::ServerResponse { status, host, .. } => {
                    assert_eq!(status.as_u16(), 500, "{clusters} clusters");
                    assert_eq!(host.to_string(), "10.0.0.0:80");
                }
                other => panic!("{clusters} clusters: expected ServerResponse, got {other:?}"),
            }
        }
        assert_eq!(
            fake.hosts_tried().len(),
            2 * clusters,
            "every cluster tried"
        );
    }
}

#[test]
fn a_success_says_who_answered_after_how_many_attempts() {
    let fake = FakeTransport::new();
    fake.push("10.0.0.0:80", Outcome::Refused);
    fake.push("10.0.0.1:80", Outcome::status(503));
    fake.push("10.0.0.0:80", Outcome::TimedOut);
    fake.push("10.0.0.1:80", Outcome::json(200, "v"));
    fake.set_default("10.0.1.0:80", Outcome::json(200, &["f"]));
    let config = ProxyConfig {
        proxy_hosts: vec![vec![host(0, 0), host(0, 1)], vec![host(1, 0)]],
        retry: 1,
        ..ProxyConfig::default()
    };
    let client = RedisProxyClient::new(&fake, config).expect("client");
    let read: Answered<String> = client
        .get_answered_with("k", &CallOptions::new())
        .expect("second round");
    assert_eq!(
        (read.value.as_str(), read.host.to_string(), read.attempts),
        ("v", "10.0.0.1:80".to_owned(), 4)
    );
    // The main cluster now refuses: a read falls back to the backup.
    let read = client
        .hkeys_answered_with("h", &CallOptions::new().retry(0))
        .expect("backup");
    assert_eq!(
        (read.host.to_string(), read.attempts),
        ("10.0.1.0:80".to_owned(), 3)
    );
    fake.set_default("10.0.0.1:80", Outcome::json(200, &()));
    let write = client
        .set_answered_with("k", "v", &CallOptions::new())
        .expect("both clusters");
    assert_eq!(write.host.to_string(), "10.0.0.1:80");
    assert_eq!(
        write.attempts, 3,
        "refused, then the main's second host, then the backup"
    );
    assert_eq!(write.into_value(), ());
}
