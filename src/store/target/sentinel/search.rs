//! The search for the master: each sentinel asked in turn, its answer
//! checked against the master's own role, as a state machine without I/O.

use super::*;

/// The search for the master: see the [module](self).
pub(super) struct Search<'t> {
    pub(super) target: &'t Sentinel,
    pub(super) want_id: bool,
    /// The end of the connect timeout.
    pub(super) deadline: Instant,
    /// The sentinels of a round, by index, the first to ask first.
    pub(super) order: Vec<usize>,
    /// The place in `order` of the sentinel asked now.
    pub(super) at: usize,
    pub(super) phase: Phase,
    /// This round: the sentinels that know no such service…
    pub(super) unknown: Vec<String>,
    /// …and those that failed, each with its error.
    pub(super) failures: Vec<(String, StoreError)>,
    /// The last server named that turned out a replica.
    pub(super) replica: Option<String>,
    /// The pause before the next round; doubles up to 200 ms.
    pub(super) pause: Duration,
}

pub(super) enum Phase {
    Start,
    /// A sentinel is asked.
    Asking {
        setup: Setup,
        share: Duration,
    },
    /// The master it named is connected to.
    Master {
        setup: Setup,
        host: String,
        port: u16,
    },
    Pausing,
}

impl Search<'_> {
    pub(super) fn sentinel(&self) -> &SentinelNode {
        &self.target.sentinels[self.order[self.at]]
    }

    /// Asks the next sentinel, or ends the round.
    pub(super) fn ask_next(&mut self) -> DialStep {
        let Some(&index) = self.order.get(self.at) else {
            return self.round_ended();
        };
        let sentinel = &self.target.sentinels[index];
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            let timeout = self.target.settings.connect_timeout;
            self.failures.push((
                sentinel.addr.to_string(),
                StoreError::Timeout {
                    addr: sentinel.addr.to_string(),
                    timeout,
                },
            ));
            self.at = self.order.len();
            return self.round_ended();
        }
        // Each sentinel has its share of what is left.
        let share = left / u32::try_from(self.order.len() - self.at).unwrap_or(u32::MAX);
        let mut setup = Setup::new(
            sentinel.endpoint.clone(),
            sentinel.requests.clone(),
            deadline_in(share).min(self.deadline),
        );
        let step = setup.step(DialEvent::Go);
        self.phase = Phase::Asking { setup, share };
        self.first(step)
    }

    /// The first step of a set-up: it always connects.
    fn first(&self, step: Progress) -> DialStep {
        match step {
            Progress::Step(step) => step,
            _ => DialStep::Fail(StoreError::Connection {
                addr: self.target.settings.shown.to_string(),
                message: "internal error: a set-up that does not start by connecting".into(),
                source: None,
            }),
        }
    }

    /// Passes the sentinel asked over, having noted why.
    pub(super) fn pass_over(&mut self) -> DialStep {
        self.at += 1;
        self.ask_next()
    }

    pub(super) fn failed(&mut self, err: StoreError) -> DialStep {
        let addr = self.sentinel().addr.to_string();
        self.failures.push((addr, err));
        self.pass_over()
    }

    /// Every sentinel was asked, and no master found.
    pub(super) fn round_ended(&mut self) -> DialStep {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if self.replica.is_some() && !left.is_zero() {
            let pause = self.pause.min(left);
            self.pause = (self.pause * 2).min(Duration::from_millis(200));
            self.phase = Phase::Pausing;
            return DialStep::Pause(pause);
        }
        DialStep::Fail(self.error())
    }

    /// The error of a search that found no master.
    pub(super) fn error(&mut self) -> StoreError {
        let target = self.target;
        let addr = target.settings.shown.to_string();
        let service = &target.service;
        if let Some(replica) = &self.replica {
            return StoreError::Connection {
                addr,
                message: format!(
                    "the sentinels name {replica} as the master of {service:?}, but it is a \
                     replica; no master within {:?}",
                    target.settings.connect_timeout
                ),
                source: None,
            };
        }
        let mut said: Vec<String> = Vec::new();
        if !self.unknown.is_empty() {
            let verb = if self.unknown.len() == 1 {
                "knows"
            } else {
                "know"
            };
            said.push(format!(
                "{} {verb} no master named {service:?}",
                self.unknown.join(", ")
            ));
        }
        said.extend(
            self.failures
                .iter()
                .map(|(at, err)| format!("{at}: {}", short(err))),
        );
        let said = said.join("; ");
        // Every one that answered refused (a password missing or wrong):
        // its words lead, so that `code()` reads them.
        if self.unknown.is_empty()
            && let Some((_, StoreError::Command { message, .. })) = self.failures.first()
            && self
                .failures
                .iter()
                .all(|(_, err)| matches!(err, StoreError::Command { .. }))
        {
            let lead = message.split(" (").next().unwrap_or(message).to_owned();
            return StoreError::Command {
                addr,
                message: format!("{lead} (no master for {service:?}: {said})"),
            };
        }
        if self.failures.is_empty() {
            return StoreError::Connection {
                addr,
                message: format!("no sentinel knows a master named {service:?} ({said})"),
                source: None,
            };
        }
        StoreError::Connection {
            addr,
            message: format!("no sentinel named the master of {service:?}: {said}"),
            source: None,
        }
    }

    /// What a sentinel's answer came to.
    pub(super) fn answered(&mut self, answer: Option<Reply>) -> DialStep {
        let sentinel = self.sentinel().addr.to_string();
        let named = match answer {
            Some(Reply::Array(items)) if items.len() == 2 => {
                let mut items = items.into_iter();
                match (items.next(), items.next()) {
                    (Some(Reply::Bulk(host)), Some(Reply::Bulk(port))) => {
                        let host = String::from_utf8(host).ok().filter(|h| !h.is_empty());
                        let port = std::str::from_utf8(&port)
                            .ok()
                            .and_then(|port| port.parse::<u16>().ok())
                            .filter(|port| *port != 0);
                        host.zip(port)
                    }
                    _ => None,
                }
            }
            Some(Reply::Nil) | None => {
                self.unknown.push(sentinel);
                return self.pass_over();
            }
            Some(Reply::Array(items)) if items.is_empty() => {
                self.unknown.push(sentinel);
                return self.pass_over();
            }
            Some(_) => None,
        };
        let Some((host, port)) = named else {
            return self.failed(StoreError::Command {
                addr: sentinel,
                message: "ERR the sentinel's answer names no master at host and port".into(),
            });
        };
        let mut requests = self.target.handshake.clone();
        if self.want_id {
            requests.push(client_id_request());
        }
        requests.push((Ask::Role, Request::new(&["ROLE"]).bytes().to_vec()));
        let endpoint = Endpoint::tcp(&host, port, self.target.tls);
        let mut setup = Setup::new(endpoint, requests, self.deadline);
        let step = setup.step(DialEvent::Go);
        self.phase = Phase::Master { setup, host, port };
        self.first(step)
    }
}

impl Dialing for Search<'_> {
    fn next(&mut self, event: DialEvent) -> DialStep {
        match std::mem::replace(&mut self.phase, Phase::Start) {
            Phase::Start => self.ask_next(),
            Phase::Pausing => {
                self.at = 0;
                self.unknown.clear();
                self.failures.clear();
                self.ask_next()
            }
            Phase::Asking { mut setup, share } => {
                let sentinel = self.sentinel().addr.to_string();
                match setup.step(event) {
                    Progress::Step(step) => {
                        self.phase = Phase::Asking { setup, share };
                        step
                    }
                    Progress::Ready(_) => self.answered(setup.answer.take()),
                    Progress::NotConnected(err) => {
                        let err = err.into_store_error(&sentinel, &sentinel, share);
                        self.failed(err)
                    }
                    Progress::Broke(failure) => {
                        let err = set_up_broke(sentinel, failure, share, |message| message);
                        self.failed(err)
                    }
                    Progress::Refused(message) => {
                        self.failed(refused(sentinel, message, str::to_owned))
                    }
                    Progress::Replica | Progress::Unexpected(_) => {
                        self.failed(StoreError::Command {
                            addr: sentinel,
                            message: "ERR an unexpected reply from the sentinel".into(),
                        })
                    }
                }
            }
            Phase::Master {
                mut setup,
                host,
                port,
            } => {
                let master = shown_at(&host, port);
                let timeout = self.target.settings.connect_timeout;
                match setup.step(event) {
                    Progress::Step(step) => {
                        self.phase = Phase::Master { setup, host, port };
                        step
                    }
                    Progress::Ready(client_id) => {
                        self.target
                            .first
                            .store(self.order[self.at], Ordering::Relaxed);
                        self.target.note_master(&host, port);
                        DialStep::Ready { client_id }
                    }
                    Progress::Replica => {
                        self.replica = Some(master);
                        self.pass_over()
                    }
                    Progress::NotConnected(err) => {
                        let err = err.into_store_error(&master, &master, timeout);
                        self.failed(the_master(err, &master))
                    }
                    Progress::Broke(Failure::TimedOut(_)) => self.failed(StoreError::Timeout {
                        addr: master,
                        timeout,
                    }),
                    Progress::Broke(failure) => {
                        let err = set_up_broke(master.clone(), failure, timeout, |m| m);
                        self.failed(the_master(err, &master))
                    }
                    Progress::Refused(message) => {
                        let err = refused(master.clone(), message, |message| {
                            format!("{message} (from the master {master})")
                        });
                        self.failed(err)
                    }
                    Progress::Unexpected(_) => self.failed(StoreError::Command {
                        message: format!("ERR an unexpected reply from the master {master}"),
                        addr: master,
                    }),
                }
            }
        }
    }
}
