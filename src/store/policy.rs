//! The call policy: for each store operation, what a connection lost
//! before the request left, a reply lost after it, a timeout and a
//! cancellation mean. One table, read by both Redis drivers (the blocking
//! and the async one) and by [`MemoryStore`](crate::MemoryStore)'s
//! injected faults, so that the three behave alike and the documented
//! guarantees are this table.
//!
//! - **A connection found closed, or lost, before the request left** (a
//!   pooled connection the server closed while it was idle, a connect that
//!   failed, a write that failed): nothing ran, whatever the operation; the
//!   drivers open a new connection and send the request there.
//! - **A reply lost after the request left** (the connection broke while
//!   the server had the request): [`AfterLostReply`] says, per operation.
//! - **A timeout** (no reply within the response timeout): the request may
//!   have run and may still run; it is never sent again, and the caller
//!   gets [`StoreError::Timeout`](crate::StoreError::Timeout).
//! - **A cancellation** (an async call's future dropped): [`OnCancel`].

/// A store operation, as the policy names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Op {
    /// `push`: RPUSH, or the push-and-expire script.
    Push,
    /// `pop`: LPOP.
    Pop,
    /// `pop_many`: LPOP with a count.
    PopMany,
    /// `blocking_pop`, `blocking_pop_many`: BLPOP, BLMPOP.
    BlockingPop,
    /// `index`: LINDEX.
    Index,
    /// `take_last`: the take-last script.
    TakeLast,
    /// The wait of a blocking take-last or a blocking lease: `BLMOVE` of a
    /// list onto itself, which takes nothing.
    WaitForElement,
    /// `scan`: SCAN.
    Scan,
    /// `ping`: PING.
    Ping,
    /// `lease`, `ack_and_lease`, and each look of a blocking lease: the
    /// lease script, under its call id.
    Lease,
    /// `ack`.
    Ack,
    /// `nack`.
    Nack,
    /// `extend`.
    Extend,
    /// `dead_letter`.
    DeadLetter,
    /// `reclaim`.
    Reclaim,
    /// `dead_letters`: LRANGE of the dead letters.
    DeadLetters,
    /// Dead letters put back on their list.
    RequeueDead,
    /// `purge_dead`.
    PurgeDead,
    /// `lease_snapshot`, `lease_stats`.
    Snapshot,
    /// `release`: deliveries handed back without spending one.
    Release,
    /// Elements a cancelled receive took, pushed back to the head of
    /// their list (LPUSH).
    #[cfg_attr(not(feature = "tokio"), allow(dead_code, reason = "async calls only"))]
    PutBack,
    /// `CLIENT UNBLOCK` of a cancelled blocked call's connection.
    #[cfg_attr(not(feature = "tokio"), allow(dead_code, reason = "async calls only"))]
    Unblock,
}

/// What a reply lost after the request left means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AfterLostReply {
    /// The operation changes nothing (or sending it again changes nothing
    /// more and answers the same): it is sent again, once, on a new
    /// connection.
    SendAgain,
    /// The operation is made idempotent by the call id it carries: the same
    /// call is sent again, once, and the server recognises its own earlier
    /// run and answers with that run's result.
    SendSameCallAgain,
    /// Sending it again could change its effect: it is not, and the caller
    /// gets [`StoreError::ReplyLost`](crate::StoreError::ReplyLost): the
    /// operation may have been applied.
    Report,
}

/// What dropping an async call's future does (a sync call cannot be
/// cancelled).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum OnCancel {
    /// Dropped before its request left, nothing ran; after, it runs or
    /// has run to its end, as if the caller had not waited.
    Completes,
    /// A receive: the call stops waiting at once (a blocked one is
    /// unblocked from another connection, its connection back in the pool
    /// within milliseconds), and whatever it had taken is pushed back to
    /// the head of its list.
    PutsBack,
    /// A leased receive: the call stops waiting at once, and whatever it
    /// had leased is handed back without spending a delivery.
    HandsBack,
}

/// The policy of one operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Policy {
    /// Whether the operation changes what the store holds.
    pub(crate) changes_data: bool,
    /// What a reply lost after the request left means.
    pub(crate) after_lost_reply: AfterLostReply,
    /// What dropping an async call does.
    pub(crate) on_cancel: OnCancel,
}

/// The policy of `op`: the table.
pub(crate) const fn policy(op: Op) -> Policy {
    use AfterLostReply::{Report, SendAgain, SendSameCallAgain};
    use OnCancel::{Completes, HandsBack, PutsBack};
    let (changes_data, after_lost_reply, on_cancel) = match op {
        Op::Push => (true, Report, Completes),
        Op::Pop | Op::PopMany | Op::BlockingPop | Op::TakeLast => (true, Report, PutsBack),
        Op::WaitForElement => (false, SendAgain, PutsBack),
        Op::Index | Op::Scan | Op::Ping | Op::DeadLetters | Op::Snapshot => {
            (false, SendAgain, Completes)
        }
        Op::Unblock => (false, SendAgain, Completes),
        Op::Lease => (true, SendSameCallAgain, HandsBack),
        Op::Extend | Op::Release => (true, SendAgain, Completes),
        Op::Ack
        | Op::Nack
        | Op::DeadLetter
        | Op::Reclaim
        | Op::RequeueDead
        | Op::PurgeDead
        | Op::PutBack => (true, Report, Completes),
    };
    Policy {
        changes_data,
        after_lost_reply,
        on_cancel,
    }
}

#[cfg(test)]
impl Op {
    /// Every operation, in the order the guarantees list them.
    pub(crate) const ALL: [Op; 21] = [
        Op::Push,
        Op::Pop,
        Op::PopMany,
        Op::BlockingPop,
        Op::TakeLast,
        Op::WaitForElement,
        Op::Index,
        Op::Scan,
        Op::Ping,
        Op::Lease,
        Op::Ack,
        Op::Nack,
        Op::Extend,
        Op::DeadLetter,
        Op::Reclaim,
        Op::DeadLetters,
        Op::RequeueDead,
        Op::PurgeDead,
        Op::Snapshot,
        Op::Release,
        Op::PutBack,
    ];

    /// The public calls this operation is, and what it sends.
    fn calls(self) -> &'static str {
        match self {
            Op::Push => "`send_msg`, `send_msgs`, `push` (RPUSH; with a TTL, a script)",
            Op::Pop => "`recv_msg`, `pop` (LPOP)",
            Op::PopMany => "`recv_msgs`, `pop_many` (LPOP with a count)",
            Op::BlockingPop => "`brecv_msg`, `brecv_msgs`, `blocking_pop(_many)` (BLPOP, BLMPOP)",
            Op::TakeLast => "`recv_last_msg`, the take of `brecv_last_msg` (a script)",
            Op::WaitForElement => {
                "the wait of `brecv_last_msg` and of a blocking leased receive \
                 (BLMOVE of a list onto itself: takes nothing)"
            }
            Op::Index => "`peek_msg`, `rpeek_msg` (LINDEX)",
            Op::Scan => "`list_channel`, `scan` (SCAN)",
            Op::Ping => "`ping`, `wait_serve` (PING)",
            Op::Lease => {
                "`lease_msg(s)`, `ack_and_lease_msg(s)`, each look of `blease_msg(s)` \
                 (the lease script, under its call id)"
            }
            Op::Ack => "`ack`, `ack_all`",
            Op::Nack => "`nack`",
            Op::Extend => "`extend`",
            Op::DeadLetter => "the dead-lettering of a message that does not decode",
            Op::Reclaim => "`reclaim`",
            Op::DeadLetters => "`dead_letters` (XRANGE)",
            Op::RequeueDead => "the requeue of dead letters",
            Op::PurgeDead => "`purge_dead`",
            Op::Snapshot => "`lease_snapshot`, `lease_stats`",
            Op::Release => "`release`: deliveries handed back without spending one",
            Op::PutBack => "the put-back of what a cancelled receive took (LPUSH)",
            Op::Unblock => "the unblocking of a cancelled receive (CLIENT UNBLOCK)",
        }
    }
}

/// The guarantees of every operation, as a Markdown table: the call
/// policy in words. The documentation holds this table (a test checks it).
#[cfg(test)]
pub(crate) fn guarantees_table() -> String {
    let mut table = String::from(
        "| operation | connection lost before the request left | \
         reply lost after it left (or the connection reset on its way) | no reply in time | \
         future dropped (async) | runtime stopped while it waits (async) |\n\
         |---|---|---|---|---|---|\n",
    );
    for op in Op::ALL {
        let policy = policy(op);
        let lost_reply = match (policy.after_lost_reply, policy.changes_data) {
            (AfterLostReply::SendAgain, false) => "sent again, once: it changes nothing",
            (AfterLostReply::SendAgain, true) => {
                "sent again, once: a second run changes nothing more"
            }
            (AfterLostReply::SendSameCallAgain, _) => {
                "sent again, once, as the same call: the server answers with its first run's result"
            }
            (AfterLostReply::Report, _) => "`ReplyLost`: it may have been applied",
        };
        let timeout = match policy.changes_data {
            true => "`Timeout`: it may have been applied, or be later",
            false => "`Timeout`",
        };
        let cancel = match policy.on_cancel {
            OnCancel::Completes => "it runs (or has run) to its end",
            OnCancel::PutsBack => {
                "stops waiting at once (unblocked), frees its connection; \
                 what it took goes back to the head of the list"
            }
            OnCancel::HandsBack => {
                "stops waiting at once (unblocked), frees its connection; \
                 what it leased is handed back at once"
            }
        };
        let stopped = match policy.on_cancel {
            OnCancel::Completes => "it may or may not have run",
            OnCancel::PutsBack => {
                "nothing can put back what the server handed it in that instant: \
                 up to one message (one batch) may be lost"
            }
            OnCancel::HandsBack => "what it leased comes back when the lease runs out",
        };
        table.push_str(&format!(
            "| {} | sent on a new connection | {lost_reply} | {timeout} | {cancel} | {stopped} |\n",
            op.calls()
        ));
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every operation that changes data and is sent again is one whose
    /// second run changes nothing more: reads, the lease script under its
    /// call id, an extend (its deadline is set, not moved), a release
    /// (what is handed back stays handed back).
    #[test]
    fn only_operations_safe_to_repeat_are_sent_again() {
        for op in [
            Op::Push,
            Op::Pop,
            Op::PopMany,
            Op::BlockingPop,
            Op::TakeLast,
            Op::Ack,
            Op::Nack,
            Op::DeadLetter,
            Op::Reclaim,
            Op::RequeueDead,
            Op::PurgeDead,
            Op::PutBack,
        ] {
            assert_eq!(
                policy(op).after_lost_reply,
                AfterLostReply::Report,
                "{op:?}"
            );
            assert!(policy(op).changes_data, "{op:?}");
        }
        assert_eq!(
            policy(Op::Lease).after_lost_reply,
            AfterLostReply::SendSameCallAgain
        );
        // Every operation has its row.
        assert_eq!(guarantees_table().lines().count(), Op::ALL.len() + 2);
        // And the guarantees guide holds the table.
        let table = guarantees_table();
        assert!(
            include_str!("../../docs/guide/guarantees.md").contains(&table),
            "docs/guide/guarantees.md must hold the table:\n{table}"
        );
        for op in [
            Op::Index,
            Op::Scan,
            Op::Ping,
            Op::Snapshot,
            Op::WaitForElement,
        ] {
            assert!(!policy(op).changes_data, "{op:?}");
        }
    }
}
