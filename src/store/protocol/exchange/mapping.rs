//! Learning a cluster's slot map within a call: asking a node for
//! `CLUSTER SLOTS`, the next one when it cannot answer, and the call
//! going on once the map is known.

use super::*;

impl<T: Target> Exchange<'_, T> {
    pub(super) fn start_mapping(&mut self) -> Action {
        if self.remapped {
            return Action::Done(Err(StoreError::Connection {
                addr: self.shown(),
                message: "no node knows where the key is served".into(),
                source: None,
            }));
        }
        self.remapped = true;
        match self.target.map_request() {
            Some((request, mut sources)) => {
                sources.reverse();
                self.mapping = Some((request, sources, None));
                self.next_map_source()
            }
            None => Action::Done(Err(StoreError::Connection {
                addr: self.shown(),
                message: "no node to send the call to".into(),
                source: None,
            })),
        }
    }

    pub(super) fn note_map_error(&mut self, err: StoreError) {
        if let Some((_, _, last)) = &mut self.mapping {
            *last = Some(err);
        }
    }

    pub(super) fn next_map_source(&mut self) -> Action {
        let (_, sources, last) = self.mapping.as_mut().expect("a layout being learnt");
        match sources.pop() {
            Some(node) => {
                self.node = Some(node);
                Action::Checkout
            }
            None => {
                let err = last.take().unwrap_or_else(|| StoreError::Connection {
                    addr: self.target.settings().shown.to_string(),
                    message: "no node to learn the layout from".into(),
                    source: None,
                });
                self.mapping = None;
                Action::Done(Err(err))
            }
        }
    }

    pub(super) fn learn_map(&mut self, mut replies: Vec<Reply>) -> Action {
        let node = self.node.clone().expect("the node asked");
        let reply = replies.pop().unwrap_or(Reply::Nil);
        let learnt = match reply {
            Reply::Error(message) => Err(message),
            reply => self.target.learn_map(&node, reply),
        };
        match learnt {
            Ok(()) => {
                self.mapping = None;
                Action::Checkin(Then::Locate)
            }
            Err(why) => {
                let err = StoreError::Command {
                    addr: self.shown(),
                    message: format!("{node} answered the layout request with {why}"),
                };
                self.note_map_error(err);
                Action::Checkin(Then::NextMapSource)
            }
        }
    }

    /// No connection could be had to the node: nothing was sent. On a
    /// cluster the node may have died and its slots moved: the layout is
    /// learnt again, once.
    pub(super) fn unreachable(&mut self, err: StoreError) -> Action {
        let node = self.node.clone().expect("the node tried");
        self.target.forget(&node);
        if self.target.max_redirects() > 0 && !self.remapped {
            return self.start_mapping_or(err);
        }
        Action::Done(Err(err))
    }

    pub(super) fn start_mapping_or(&mut self, err: StoreError) -> Action {
        match self.start_mapping() {
            Action::Done(Err(_)) => Action::Done(Err(err)),
            action => action,
        }
    }
}
