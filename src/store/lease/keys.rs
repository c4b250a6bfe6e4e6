//! [`LeaseKeys`]: the names of a list's lease state, in its cluster slot.

use std::sync::Arc;

/// The keys of a list's lease state, each in the list's Redis Cluster slot.
///
/// For a list `L` without a hash tag they are:
///
/// - `{L}:pending`, a sorted set of the leased receives whose messages are
///   not all settled: each receive's messages are one unit, `<unit>` while
///   in flight until its score (a deadline in ms since 1970), `<unit>+`
///   once they wait to be delivered again from its score on;
/// - `{L}:body`, a hash of each unit's record (its messages' attempts and
///   ids, and the body of a unit of one message) and state (which of them
///   it still holds);
/// - `{L}:dead`, a stream of dead letters: each entry holds the message's
///   `id`, its `deliveries`, the `reason` it died and its `body`, and the
///   entry's id tells when;
/// - `{L}:unit:<unit>`, a list per leased receive of more than one
///   message: their bodies, in order, until the last of them is settled.
///
/// `{L}` makes the cluster hash them by `L`, as it hashes `L` itself. When
/// `L` has a hash tag of its own (`/{jobs}/a/server`), they are
/// `L:pending` and so on, which keep it.
///
/// Channel lists end in `/client` or `/server`; these end in a `:` word,
/// so no channel list and no lease key share a name. A list that cannot
/// share its slot this way (one with a `}` but no hash tag, such as
/// `/a}b/server`) has no lease keys.
///
/// ```
/// use redisutil::store::LeaseKeys;
///
/// let keys = LeaseKeys::for_list("/jobs/server").unwrap();
/// assert_eq!(keys.pending(), "{/jobs/server}:pending");
/// assert_eq!(keys.dead(), "{/jobs/server}:dead");
/// let tagged = LeaseKeys::for_list("/{jobs}/a/server").unwrap();
/// assert_eq!(tagged.bodies(), "/{jobs}/a/server:body");
/// assert!(LeaseKeys::for_list("/a}b/server").is_none());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LeaseKeys {
    keys: Arc<[String; 4]>,
}

impl LeaseKeys {
    /// The lease keys of the list `list`; `None` when they could not share
    /// its cluster slot.
    pub fn for_list(list: &str) -> Option<Self> {
        let stem = if hash_tag(list).is_some() {
            list.to_owned()
        } else if list.contains('}') {
            return None;
        } else {
            format!("{{{list}}}")
        };
        let key = |suffix: &str| format!("{stem}:{suffix}");
        Some(Self {
            keys: Arc::new([list.to_owned(), key("pending"), key("body"), key("dead")]),
        })
    }

    /// The list messages are leased from.
    pub fn list(&self) -> &str {
        &self.keys[0]
    }

    /// The sorted set of the units in flight and waiting to be delivered
    /// again.
    pub fn pending(&self) -> &str {
        &self.keys[1]
    }

    /// The hash of the units' records.
    pub fn bodies(&self) -> &str {
        &self.keys[2]
    }

    /// The stream of dead letters.
    pub fn dead(&self) -> &str {
        &self.keys[3]
    }

    /// The key that remembers, for a while, how many deliveries the lease
    /// call `unit` acked when it leased nothing (so that the call sent again
    /// answers the same).
    pub(crate) fn ack_marker(&self, unit: &str) -> String {
        format!("{}:acked:{unit}", self.stem())
    }

    /// The list that holds the bodies of the leased receive `unit`, when
    /// it took more than one message.
    pub(crate) fn unit_list(&self, unit: &str) -> String {
        format!("{}:unit:{unit}", self.stem())
    }

    /// What the keys' names begin with: `{L}`, or `L` with a hash tag.
    fn stem(&self) -> &str {
        self.keys[1]
            .strip_suffix(":pending")
            .unwrap_or(&self.keys[1])
    }

    /// All four keys, the list first, in the order the scripts take them.
    pub(crate) fn all(&self) -> &[String; 4] {
        &self.keys
    }
}

/// The hash tag of `key`: what Redis Cluster hashes instead of the whole key.
pub(crate) fn hash_tag(key: &str) -> Option<&str> {
    let open = key.find('{')?;
    let close = open + 1 + key[open + 1..].find('}')?;
    (close > open + 1).then(|| &key[open + 1..close])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_tags_follow_redis_cluster() {
        assert_eq!(hash_tag("{user1000}.following"), Some("user1000"));
        assert_eq!(hash_tag("foo{}{bar}"), None);
        assert_eq!(hash_tag("foo{{bar}}zap"), Some("{bar"));
        assert_eq!(hash_tag("foo{bar}{zap}"), Some("bar"));
        assert_eq!(hash_tag("/a/{b"), None);
        assert_eq!(hash_tag("plain"), None);
    }

    #[test]
    fn lease_keys_hash_like_their_list() {
        for list in [
            "/a/server",
            "/{jobs}/a/client",
            "/a{/client",
            "/x{}y/server",
        ] {
            let keys = LeaseKeys::for_list(list);
            if list.contains('}') && hash_tag(list).is_none() {
                assert!(keys.is_none(), "{list}");
                continue;
            }
            let keys = keys.unwrap();
            let tag = hash_tag(list).unwrap_or(list);
            for key in &keys.all()[1..] {
                assert_eq!(hash_tag(key), Some(tag), "{key}");
                assert!(!key.ends_with("/client") && !key.ends_with("/server"));
            }
        }
    }
}
