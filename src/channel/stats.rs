//! Statistics of every channel under a prefix: [`channel_stats`], for
//! operators (the `redisutil` command-line tool reads them).

use std::collections::BTreeSet;

use crate::store::{LeaseKeys, LeaseStats, LeaseStore};

use super::{ChannelError, ChannelName, Peer, channels_pattern};

/// The statistics of one channel: each of its two lists as the end that
/// receives from it sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelStats {
    /// The channel's name.
    pub name: String,
    /// What the server end receives (the clients sent it): waiting, in
    /// flight, waiting to be delivered again, dead, the nearest deadline.
    pub to_server: LeaseStats,
    /// What the client end receives (the server sent it).
    pub to_client: LeaseStats,
}

/// The two patterns that find a channel's keys under `prefix`: its lists
/// (`<prefix>…/client`) and their lease state (`{<prefix>…/client}:dead`),
/// so that a channel whose lists are empty but which holds leases or
/// dead letters is found too.
fn patterns(prefix: &str) -> Result<[String; 2], ChannelError> {
    let lists = channels_pattern(prefix)?;
    Ok([format!("{{{lists}"), lists])
}

/// The channels under `prefix` that `keys` (lists, or lease keys
/// `{list}:…`) belong to, sorted, each once.
fn names_of(keys: &[String], prefix: &str) -> BTreeSet<String> {
    keys.iter()
        .filter_map(|key| {
            let list = match key.strip_prefix('{') {
                Some(tagged) => tagged.split_once("}:")?.0,
                None => key.as_str(),
            };
            ChannelName::from_list_key(list)
        })
        .map(|name| name.as_str().to_owned())
        .filter(|name| name.starts_with(prefix))
        .collect()
}

/// The lease keys of the lists the server and the client end of `name`
/// receive from.
fn keys_of(name: &str) -> Result<[LeaseKeys; 2], ChannelError> {
    let name = ChannelName::new(name)?;
    let keys = |peer: Peer| {
        LeaseKeys::for_list(&name.list_key(peer)).ok_or_else(|| ChannelError::InvalidName {
            name: name.as_str().to_owned(),
            reason: "its lists cannot have lease keys in their cluster slot",
        })
    };
    Ok([keys(Peer::Client)?, keys(Peer::Server)?])
}

/// The statistics of the first `max` channels (by name) under `prefix`:
/// the channels are found with SCAN (on every master of a cluster, never
/// KEYS, so a Redis with many keys is not held up), then each list is read
/// in one round trip (its depth and its lease state in one atomic step:
/// see [`LeaseStore::lease_stats`]). A channel is found while one of its
/// lists, leases or dead letters exists.
///
/// ```
/// use std::time::Duration;
/// use redisutil::{MemoryStore, Peer, RedisChannel, channel_stats};
///
/// let store = MemoryStore::new();
/// let client = RedisChannel::new(store.clone(), "/jobs/resize", Peer::Client)?;
/// client.send_msgs([1, 2, 3])?;
/// let server = RedisChannel::new(store.clone(), "/jobs/resize", Peer::Server)?;
/// let _held = server.lease_msg::<u32>(Duration::from_secs(30))?;
///
/// let stats = channel_stats(&store, "/jobs/", 100)?;
/// assert_eq!(stats[0].name, "/jobs/resize");
/// assert_eq!((stats[0].to_server.depth, stats[0].to_server.in_flight), (2, 1));
/// # Ok::<(), redisutil::ChannelError>(())
/// ```
pub fn channel_stats<S: LeaseStore + ?Sized>(
    store: &S,
    prefix: &str,
    max: usize,
) -> Result<Vec<ChannelStats>, ChannelError> {
    let mut keys = Vec::new();
    for pattern in patterns(prefix)? {
        keys.extend(store.scan(&pattern)?);
    }
    names_of(&keys, prefix)
        .into_iter()
        .take(max)
        .map(|name| {
            let [to_server, to_client] = keys_of(&name)?;
            Ok(ChannelStats {
                to_server: store.lease_stats(&to_server)?,
                to_client: store.lease_stats(&to_client)?,
                name,
            })
        })
        .collect()
}

/// [`channel_stats`] on an async store (feature `tokio`).
#[cfg(feature = "tokio")]
pub async fn channel_stats_async<S: crate::store::AsyncLeaseStore + ?Sized>(
    store: &S,
    prefix: &str,
    max: usize,
) -> Result<Vec<ChannelStats>, ChannelError> {
    let mut keys = Vec::new();
    for pattern in patterns(prefix)? {
        keys.extend(store.scan(&pattern).await?);
    }
    let mut stats = Vec::new();
    for name in names_of(&keys, prefix).into_iter().take(max) {
        let [to_server, to_client] = keys_of(&name)?;
        stats.push(ChannelStats {
            to_server: store.lease_stats(&to_server).await?,
            to_client: store.lease_stats(&to_client).await?,
            name,
        });
    }
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_come_from_lists_and_lease_keys_under_the_prefix_only() {
        let keys: Vec<String> = [
            "/a/x/client",
            "{/a/y/server}:dead",
            "{/a/y/server}:pending",
            "/a/x/server",
            "/ab/z/client",
            "{/a/w}:dead",
            "/a/v/other",
        ]
        .map(String::from)
        .to_vec();
        let names: Vec<String> = names_of(&keys, "/a/").into_iter().collect();
        assert_eq!(names, ["/a/x", "/a/y"]);
    }
}
