//! What lease calls take and give: delivery tags, leased messages, the
//! policy, snapshots, dead letters, statistics.

use super::*;

/// Which delivery of which message: what an ack, nack or extend names.
///
/// A message keeps its [`id`](Self::id) across deliveries (dedupe by it);
/// each delivery is a place in the leased receive that took it, so that a
/// consumer whose lease ran out cannot settle the delivery another
/// consumer holds now. Only a store makes one.
#[derive(Clone)]
pub struct DeliveryTag {
    /// The message's id; a first delivery's, `unit-index`, is written
    /// only when asked for.
    id: OnceLock<String>,
    /// Which delivery: 1 for the first.
    pub attempt: u32,
    /// The leased receive (unit) that took it, shared by the tags of its
    /// messages, and its place there.
    pub(crate) unit: Arc<str>,
    pub(crate) index: u32,
}

impl DeliveryTag {
    /// The tag of the message `id` (`None`: a first delivery, whose id is
    /// its unit and place).
    pub(crate) fn new(id: Option<String>, attempt: u32, unit: Arc<str>, index: u32) -> Self {
        let known = OnceLock::new();
        if let Some(id) = id {
            let _ = known.set(id);
        }
        Self {
            id: known,
            attempt,
            unit,
            index,
        }
    }

    /// The message's id, the same for every delivery of it.
    pub fn id(&self) -> &str {
        self.id.get_or_init(|| place_id(&self.unit, self.index))
    }
}

impl PartialEq for DeliveryTag {
    fn eq(&self, other: &Self) -> bool {
        (self.attempt, self.index, &self.unit) == (other.attempt, other.index, &other.unit)
            && self.id() == other.id()
    }
}

impl Eq for DeliveryTag {}

impl std::hash::Hash for DeliveryTag {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.id().hash(state);
        self.attempt.hash(state);
        self.unit.hash(state);
        self.index.hash(state);
    }
}

impl fmt::Debug for DeliveryTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeliveryTag")
            .field("id", &self.id())
            .field("attempt", &self.attempt)
            .field("unit", &self.unit)
            .field("index", &self.index)
            .finish()
    }
}

/// A message handed out under a lease, as the store returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leased {
    /// Its id and attempt.
    pub tag: DeliveryTag,
    /// When the lease runs out, on the store's clock (the server's, for Redis).
    pub deadline: SystemTime,
    /// The message as the list held it.
    pub body: Vec<u8>,
}

/// How a leased receive hands out messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeasePolicy {
    /// How long a consumer holds each message before it may be delivered
    /// again (millisecond precision, at least 1 ms).
    pub lease: Duration,
    /// After this many deliveries without an ack, a message whose lease
    /// runs out, or that is refused, goes to the dead letters.
    pub max_deliveries: u32,
}

/// What a [`nack`](LeaseStore::nack) did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nacked {
    /// The message waits to be delivered again.
    Retrying,
    /// It had been delivered `max_deliveries` times: it is a dead letter now.
    DeadLettered,
    /// This delivery no longer held it (acked, reclaimed after its lease,
    /// or delivered again); nothing changed.
    NotHeld,
}

/// A message in the lease state, for [`LeaseSnapshot`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseEntry {
    /// Its id and the last delivery's attempt.
    pub tag: DeliveryTag,
    /// The lease deadline (in flight) or when it may be delivered again.
    pub at: SystemTime,
    /// The message.
    pub body: Vec<u8>,
}

/// Everything in a list's lease state, read in one atomic step.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LeaseSnapshot {
    /// Messages under a lease, by deadline (then leased receive and place).
    pub in_flight: Vec<LeaseEntry>,
    /// Messages waiting to be delivered again, by time (then leased
    /// receive and place).
    pub retrying: Vec<LeaseEntry>,
    /// Dead letters, oldest first.
    pub dead: Vec<DeadLetter>,
}

/// Why a message became a dead letter.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DeadReason {
    /// Its lease ran out after its last allowed delivery.
    Expired,
    /// It was refused ([`nack`](LeaseStore::nack)) after its last allowed
    /// delivery.
    Nacked,
    /// It did not decode: it was never handed to a consumer.
    Undecodable,
    /// A consumer refused it for good (a permanent failure).
    Refused,
    /// A reason written by another version of this crate.
    Other(String),
}

impl DeadReason {
    /// The word the dead-letter stream holds.
    pub fn as_word(&self) -> &str {
        match self {
            Self::Expired => "expired",
            Self::Nacked => "nacked",
            Self::Undecodable => "undecodable",
            Self::Refused => "refused",
            Self::Other(word) => word,
        }
    }

    /// The reason a word names.
    pub fn from_word(word: &str) -> Self {
        match word {
            "expired" => Self::Expired,
            "nacked" => Self::Nacked,
            "undecodable" => Self::Undecodable,
            "refused" => Self::Refused,
            other => Self::Other(other.to_owned()),
        }
    }
}

/// A dead letter: a message that will not be delivered again, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// The dead letter's own id (the stream entry's): what a
    /// [`Pick::Ids`] names, to requeue or purge it.
    pub id: String,
    /// The message's id while it was leased.
    pub message_id: String,
    /// How many times it had been delivered.
    pub deliveries: u32,
    /// Why it died.
    pub reason: DeadReason,
    /// When, on the store's clock.
    pub at: SystemTime,
    /// The message, as it was sent.
    pub body: Vec<u8>,
}

/// Which dead letters an operation takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pick<'a> {
    /// The oldest, up to this many (`usize::MAX`: all).
    Oldest(usize),
    /// These, by their [`DeadLetter::id`]; ids no longer there are
    /// skipped.
    Ids(&'a [String]),
}

impl Pick<'_> {
    /// Whether it names no dead letter: nothing to send.
    pub(crate) fn is_empty(&self) -> bool {
        matches!(self, Pick::Oldest(0)) || matches!(self, Pick::Ids(ids) if ids.is_empty())
    }

    /// Refuses, before anything is sent, an id no dead letter has: ids are
    /// `<milliseconds>-<sequence>` (a bare `<milliseconds>` would name
    /// every dead letter of that millisecond to Redis).
    pub(crate) fn check(&self) -> Result<(), StoreError> {
        let Pick::Ids(ids) = self else {
            return Ok(());
        };
        let number = |part: &str| {
            !part.is_empty()
                && part
                    .parse::<u64>()
                    .is_ok_and(|_| part.bytes().all(|b| b.is_ascii_digit()))
        };
        match ids.iter().find(|id| {
            !id.split_once('-')
                .is_some_and(|(ms, seq)| number(ms) && number(seq))
        }) {
            Some(id) => Err(StoreError::InvalidInput {
                message: format!("{id:?} is not a dead letter id (<milliseconds>-<sequence>)"),
            }),
            None => Ok(()),
        }
    }
}

/// The state of one list's messages, counted in one atomic step.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LeaseStats {
    /// Messages in the list, waiting for a receive.
    pub depth: u64,
    /// Messages under a lease (their deadline passed or not).
    pub in_flight: u64,
    /// Messages waiting to be delivered again (after a nack, an expired
    /// lease reclaimed, a hand-back).
    pub retrying: u64,
    /// Dead letters.
    pub dead: u64,
    /// The nearest deadline of a lease in flight.
    pub next_deadline: Option<SystemTime>,
}
