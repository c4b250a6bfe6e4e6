//! [`Exchange`]: one call to a target, from its route to its result, as
//! steps a driver does ([`Step`]) and events it answers with ([`Event`]).
//!
//! This is where the call policy is applied, once for both drivers: a
//! request that never left is sent again on a new connection; a reply
//! lost after it left is sent again only when the operation's policy says
//! so ([`AfterLostReply`]); a timeout is never sent again; a cluster's
//! redirections are followed up to the target's limit; a script the server
//! does not know yet is sent with its text; a Sentinel master that turned
//! replica is left for the new one.

use std::time::Duration;

use super::resp::Reply;
use super::{Failure, Node, Request, Route, Wait};
use crate::store::StoreError;
use crate::store::policy::{AfterLostReply, Op, policy};
use crate::store::target::{Located, Target, Verdict};

mod mapping;

/// One call: what it is (for its policy), where it goes, the request, and
/// how long its reply may take.
#[derive(Debug)]
pub(crate) struct Call {
    pub(crate) op: Op,
    pub(crate) route: Route,
    pub(crate) request: Request,
    pub(crate) wait: Wait,
}

impl Call {
    /// A call of `op` on `key`.
    pub(crate) fn on_key(op: Op, key: &str, request: Request) -> Self {
        Self {
            op,
            route: Route::Key(key.to_owned()),
            request,
            wait: Wait::Response,
        }
    }

    /// The same, waiting as `wait` says.
    pub(crate) fn waiting(mut self, wait: Wait) -> Self {
        self.wait = wait;
        self
    }
}

/// What the driver does next.
#[derive(Debug)]
pub(crate) enum Step<'a> {
    /// Hold a connection to `node`: an idle one still open, or a new one;
    /// `dedicated` for a call that blocks (an async driver's shared
    /// connection would be held up by it).
    Checkout { node: Node, dedicated: bool },
    /// Write `bytes` on the held connection and read `replies` replies,
    /// each read waiting at most `timeout` (`None`: without limit).
    Send {
        bytes: &'a [u8],
        replies: usize,
        timeout: Option<Duration>,
    },
    /// Give the held connection back for reuse.
    Checkin,
    /// Close the held connection; with `clear`, also the node's idle ones
    /// (they most likely broke with it).
    Discard { clear: bool },
    /// Wait, then go on.
    Pause(Duration),
    /// The call's result.
    Done(Result<Reply, StoreError>),
}

/// What the last [`Step`] came to.
#[derive(Debug)]
pub(crate) enum Event {
    /// The first step, or a step that cannot fail (check in, discard, pause).
    Go,
    CheckedOut,
    /// No connection could be had: nothing was sent.
    CheckoutFailed(StoreError),
    Replied(Vec<Reply>),
    Failed(Failure),
}

/// What a step awaits.
enum Awaiting {
    Start,
    Checkout,
    Send,
    MapCheckout,
    MapSend,
    /// A step that cannot fail, then this.
    Then(Then),
}

/// What comes after a step that cannot fail.
enum Then {
    Locate,
    Checkout,
    NextMapSource,
    NextMaster(Reply),
    PauseThenCheckout(Duration),
    Finish(Result<Reply, StoreError>),
}

/// What to do, before it borrows the request.
enum Action {
    Checkout,
    Send,
    SendMap,
    Checkin(Then),
    Discard(bool, Then),
    Pause(Duration, Then),
    Done(Result<Reply, StoreError>),
}

/// One call in progress; see the [module](self).
pub(crate) struct Exchange<'t, T: Target> {
    target: &'t T,
    call: Call,
    awaiting: Awaiting,
    /// The node of the current attempt.
    node: Option<Node>,
    /// `ASKING` and the request, for a call redirected by `ASK`.
    asking: Option<Vec<u8>>,
    /// For a call to every master: those left, and the replies so far.
    masters: Option<(Vec<Node>, Vec<Reply>)>,
    /// The layout request and its sources, while the layout is learnt.
    mapping: Option<(Request, Vec<Node>, Option<StoreError>)>,
    /// Whether the layout was learnt again during this call.
    remapped: bool,
    resent: bool,
    not_sent: u32,
    redirects: u32,
    rediscovered: bool,
}

/// How many times a request that never left is sent on a new connection.
const NOT_SENT_RETRIES: u32 = 2;

/// The pause before a cluster's `TRYAGAIN` is tried again.
const TRY_AGAIN_PAUSE: Duration = Duration::from_millis(10);

impl<'t, T: Target> Exchange<'t, T> {
    pub(crate) fn new(target: &'t T, call: Call) -> Self {
        Self {
            target,
            call,
            awaiting: Awaiting::Start,
            node: None,
            asking: None,
            masters: None,
            mapping: None,
            remapped: false,
            resent: false,
            not_sent: 0,
            redirects: 0,
            rediscovered: false,
        }
    }

    /// The next step, given what the last one came to.
    pub(crate) fn next(&mut self, event: Event) -> Step<'_> {
        let action = self.decide(event);
        self.render(action)
    }

    fn render(&mut self, action: Action) -> Step<'_> {
        let dedicated = self.call.wait.blocks();
        let response_timeout = self.target.settings().response_timeout;
        match action {
            Action::Checkout => {
                self.awaiting = if self.mapping.is_some() {
                    Awaiting::MapCheckout
                } else {
                    Awaiting::Checkout
                };
                Step::Checkout {
                    node: self.node.clone().expect("a node to check out"),
                    dedicated: dedicated && self.mapping.is_none(),
                }
            }
            Action::Send => {
                self.awaiting = Awaiting::Send;
                let timeout = self.call.wait.read_timeout(response_timeout);
                let replies = self.call.request.replies();
                match &self.asking {
                    Some(bytes) => Step::Send {
                        bytes,
                        replies: replies + 1,
                        timeout,
                    },
                    None => Step::Send {
                        bytes: self.call.request.bytes(),
                        replies,
                        timeout,
                    },
                }
            }
            Action::SendMap => {
                self.awaiting = Awaiting::MapSend;
                let (request, _, _) = self.mapping.as_ref().expect("a layout request");
                Step::Send {
                    bytes: request.bytes(),
                    replies: 1,
                    timeout: response_timeout,
                }
            }
            Action::Checkin(then) => {
                self.awaiting = Awaiting::Then(then);
                Step::Checkin
            }
            Action::Discard(clear, then) => {
                self.awaiting = Awaiting::Then(then);
                Step::Discard { clear }
            }
            Action::Pause(pause, then) => {
                self.awaiting = Awaiting::Then(then);
                Step::Pause(pause)
            }
            Action::Done(result) => Step::Done(result),
        }
    }

    fn decide(&mut self, event: Event) -> Action {
        match (
            std::mem::replace(&mut self.awaiting, Awaiting::Start),
            event,
        ) {
            (Awaiting::Start, _) => self.locate(),
            (Awaiting::Checkout, Event::CheckedOut) => Action::Send,
            (Awaiting::Checkout, Event::CheckoutFailed(err)) => self.unreachable(err),
            (Awaiting::Send, Event::Replied(replies)) => self.replied(replies),
            (Awaiting::Send, Event::Failed(failure)) => self.failed(failure),
            (Awaiting::MapCheckout, Event::CheckedOut) => Action::SendMap,
            (Awaiting::MapCheckout, Event::CheckoutFailed(err)) => {
                self.note_map_error(err);
                self.next_map_source()
            }
            (Awaiting::MapSend, Event::Replied(replies)) => self.learn_map(replies),
            (Awaiting::MapSend, Event::Failed(failure)) => {
                let err = self.failure_error(failure, false);
                self.note_map_error(err);
                Action::Discard(true, Then::NextMapSource)
            }
            (Awaiting::Then(then), _) => self.then(then),
            (_, event) => Action::Done(Err(StoreError::Command {
                addr: self.shown(),
                message: format!("internal error: unexpected {event:?}"),
            })),
        }
    }

    fn then(&mut self, then: Then) -> Action {
        match then {
            Then::Locate => self.locate(),
            Then::Checkout => Action::Checkout,
            Then::NextMapSource => self.next_map_source(),
            Then::NextMaster(reply) => self.next_master(reply),
            Then::PauseThenCheckout(pause) => Action::Pause(pause, Then::Checkout),
            Then::Finish(result) => Action::Done(result),
        }
    }

    fn shown(&self) -> String {
        self.target.settings().shown.to_string()
    }

    /// `message`, prefixed by the node when it is not the whole target.
    fn at_node(&self, message: impl std::fmt::Display) -> String {
        match &self.node {
            Some(node) if node.name() != &*self.target.settings().shown => {
                format!("{node}: {message}")
            }
            _ => message.to_string(),
        }
    }

    /// Finds the node of the call, or learns the layout first.
    fn locate(&mut self) -> Action {
        if let Some((left, _)) = &mut self.masters {
            return match left.pop() {
                Some(node) => self.start_on(node),
                None => {
                    let (_, replies) = self.masters.take().expect("the masters' replies");
                    Action::Done(Ok(Reply::Array(replies)))
                }
            };
        }
        match self.target.locate(&self.call.route) {
            Located::Unknown => self.start_mapping(),
            Located::Node(node) => self.start_on(node),
            Located::Nodes(mut nodes) => {
                if matches!(self.call.route, Route::EveryMaster) {
                    nodes.reverse();
                    self.masters = Some((nodes, Vec::new()));
                    return self.locate();
                }
                match nodes.into_iter().next() {
                    Some(node) => self.start_on(node),
                    None => self.start_mapping(),
                }
            }
        }
    }

    fn start_on(&mut self, node: Node) -> Action {
        self.node = Some(node);
        Action::Checkout
    }

    fn replied(&mut self, mut replies: Vec<Reply>) -> Action {
        let asking = self.asking.take();
        let asked = match &asking {
            // The reply to ASKING comes first: an error there is the error.
            Some(_) if !replies.is_empty() => Some(replies.remove(0)),
            _ => None,
        };
        let reply = match asked {
            Some(refused @ Reply::Error(_)) => refused,
            _ => self.call.request.reply(replies),
        };
        let Reply::Error(message) = reply else {
            return Action::Checkin(self.success(reply));
        };
        let message = match message.trim() {
            "" => "an error reply with no text".to_owned(),
            _ => message,
        };
        let node = self.node.clone().expect("the node asked");
        match self.target.verdict(&node, &message) {
            Verdict::NoScript if self.call.request.as_eval() => Action::Send,
            Verdict::Moved { slot, node } => {
                self.target.moved(slot, &node);
                self.redirect(node, &message)
            }
            Verdict::Ask { node } => {
                let mut bytes = Request::new(&["ASKING"]).bytes().to_vec();
                bytes.extend_from_slice(self.call.request.bytes());
                let action = self.redirect(node, &message);
                if matches!(action, Action::Checkin(Then::Checkout)) {
                    self.asking = Some(bytes);
                }
                action
            }
            Verdict::TryAgain => {
                self.redirects += 1;
                if self.redirects > self.target.max_redirects() {
                    return Action::Checkin(Then::Finish(Err(self.unavailable(&message))));
                }
                // Asked of the node a slot moves to: asked again there.
                self.asking = asking;
                Action::Checkin(Then::PauseThenCheckout(TRY_AGAIN_PAUSE))
            }
            Verdict::Gone => {
                self.target.forget(&node);
                if self.rediscovered {
                    return Action::Discard(true, Then::Finish(Err(self.unavailable(&message))));
                }
                self.rediscovered = true;
                Action::Discard(true, Then::Locate)
            }
            Verdict::Unavailable { closes } => {
                let err = self.unavailable(&message);
                let err = match (closes, err) {
                    (
                        true,
                        StoreError::Connection {
                            addr,
                            message,
                            source,
                        },
                    ) => StoreError::Connection {
                        addr,
                        message: format!("the server closed the connection, saying: {message}"),
                        source,
                    },
                    (_, err) => err,
                };
                match closes {
                    true => Action::Discard(true, Then::Finish(Err(err))),
                    false => Action::Checkin(Then::Finish(Err(err))),
                }
            }
            Verdict::Refused | Verdict::NoScript => {
                Action::Checkin(Then::Finish(Err(StoreError::Command {
                    addr: self.shown(),
                    message,
                })))
            }
        }
    }

    /// What follows a reply: the result, or the next master.
    fn success(&mut self, reply: Reply) -> Then {
        match &self.masters {
            Some(_) => {
                let node = self.node.clone().expect("the node asked");
                Then::NextMaster(Reply::Array(vec![
                    Reply::Bulk(node.name().as_bytes().to_vec()),
                    reply,
                ]))
            }
            None => Then::Finish(Ok(reply)),
        }
    }

    fn next_master(&mut self, reply: Reply) -> Action {
        if let Some((_, replies)) = &mut self.masters {
            replies.push(reply);
        }
        self.resent = false;
        self.not_sent = 0;
        self.redirects = 0;
        self.locate()
    }

    fn redirect(&mut self, node: Node, message: &str) -> Action {
        self.redirects += 1;
        if self.redirects > self.target.max_redirects() {
            return Action::Checkin(Then::Finish(Err(StoreError::Connection {
                addr: self.shown(),
                message: format!(
                    "still redirected after {} redirections: {message}",
                    self.target.max_redirects()
                ),
                source: None,
            })));
        }
        self.node = Some(node);
        Action::Checkin(Then::Checkout)
    }

    fn unavailable(&self, message: &str) -> StoreError {
        StoreError::Connection {
            addr: self.shown(),
            message: self.at_node(message),
            source: None,
        }
    }

    /// The exchange failed; what follows is the call policy.
    fn failed(&mut self, failure: Failure) -> Action {
        let node = self.node.clone().expect("the node asked");
        match failure {
            Failure::NotSent(err) => {
                self.not_sent += 1;
                if self.not_sent <= NOT_SENT_RETRIES {
                    return Action::Discard(true, Then::Checkout);
                }
                let err = StoreError::Connection {
                    addr: self.shown(),
                    message: self.at_node(format_args!("the request could not be sent: {err}")),
                    source: Some(Box::new(err)),
                };
                Action::Discard(true, Then::Finish(Err(err)))
            }
            Failure::Lost(_) | Failure::Garbled(_) => {
                self.target.forget(&node);
                let again = policy(self.call.op).after_lost_reply != AfterLostReply::Report;
                if again && !self.resent && !matches!(failure, Failure::Garbled(_)) {
                    self.resent = true;
                    // A call to every master goes again to this one.
                    let then = match self.masters {
                        Some(_) => Then::Checkout,
                        None => Then::Locate,
                    };
                    crate::trace::event!(
                        INFO,
                        addr = %self.shown(),
                        op = ?self.call.op,
                        "the reply was lost; the request is sent again, as its policy allows"
                    );
                    return Action::Discard(true, then);
                }
                let err = self.failure_error(failure, true);
                Action::Discard(true, Then::Finish(Err(err)))
            }
            Failure::TimedOut(_) => {
                let err = self.failure_error(failure, true);
                Action::Discard(false, Then::Finish(Err(err)))
            }
        }
    }

    /// The error of a failed exchange; `sent` when the request had left.
    fn failure_error(&self, failure: Failure, sent: bool) -> StoreError {
        let addr = self.shown();
        match failure {
            Failure::TimedOut(timeout) => StoreError::Timeout { addr, timeout },
            Failure::NotSent(err) => StoreError::Connection {
                message: self.at_node(&err),
                addr,
                source: Some(Box::new(err)),
            },
            Failure::Lost(err) if sent => StoreError::ReplyLost {
                message: self.at_node(&err),
                addr,
                source: Some(Box::new(err)),
            },
            Failure::Lost(err) => StoreError::Connection {
                message: self.at_node(&err),
                addr,
                source: Some(Box::new(err)),
            },
            Failure::Garbled(err) => StoreError::ReplyLost {
                message: self.at_node(&err),
                addr,
                source: Some(Box::new(err)),
            },
        }
    }
}
