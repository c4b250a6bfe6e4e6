//! The commands of a channel as Redis takes them, built once for the sync
//! stores and the async one.

use std::time::Duration;

use redis::Cmd;

use super::super::{StoreError, ttl_millis};

/// The answer of BLMPOP: nil on a timeout, else the key and its elements.
pub(crate) type Popped = Option<(Vec<u8>, Vec<Vec<u8>>)>;

/// `RPUSH key values…`.
pub(crate) fn rpush(key: &str, values: &[&[u8]]) -> Cmd {
    let mut rpush = redis::cmd("RPUSH");
    rpush.arg(key);
    for value in values {
        rpush.arg(*value);
    }
    rpush
}

/// The arguments of the push-with-TTL script: the TTL in milliseconds,
/// then the values. `None` for no values, which the script would push
/// without a word: [`no_values`] is what RPUSH answers instead.
pub(crate) fn push_with_ttl_args<'a>(
    millis: &'a str,
    values: &[&'a [u8]],
) -> Option<Vec<&'a [u8]>> {
    if values.is_empty() {
        return None;
    }
    Some(
        std::iter::once(millis.as_bytes())
            .chain(values.iter().copied())
            .collect(),
    )
}

/// What RPUSH answers when given no values.
pub(crate) fn no_values(addr: String) -> StoreError {
    StoreError::Command {
        addr,
        message: "ERR wrong number of arguments for 'rpush' command".into(),
    }
}

/// `LPOP key`, or with a count `LPOP key count`.
pub(crate) fn lpop(key: &str, count: Option<usize>) -> Cmd {
    let mut lpop = redis::cmd("LPOP");
    lpop.arg(key);
    if let Some(count) = count {
        lpop.arg(redis_count(count));
    }
    lpop
}

/// `BLPOP key timeout`.
pub(crate) fn blpop(key: &str, timeout: Option<Duration>) -> Cmd {
    let mut blpop = redis::cmd("BLPOP");
    blpop.arg(key).arg(block_seconds(timeout));
    blpop
}

/// `BLMPOP timeout 1 key LEFT COUNT count`.
pub(crate) fn blmpop(key: &str, count: usize, timeout: Option<Duration>) -> Cmd {
    let mut blmpop = redis::cmd("BLMPOP");
    blmpop
        .arg(block_seconds(timeout))
        .arg(1)
        .arg(key)
        .arg("LEFT")
        .arg("COUNT")
        .arg(redis_count(count));
    blmpop
}

/// Whether the server does not know the command (BLMPOP before Redis 7).
pub(crate) fn unknown_command(err: &StoreError) -> bool {
    matches!(err, StoreError::Command { message, .. } if message.contains("unknown command"))
}

/// `LINDEX key index`.
pub(crate) fn lindex(key: &str, index: i64) -> Cmd {
    let mut lindex = redis::cmd("LINDEX");
    lindex.arg(key).arg(index);
    lindex
}

/// `BLMOVE key key RIGHT RIGHT timeout`: waits for the list to have an
/// element and leaves it as it is.
pub(crate) fn blmove_tail(key: &str, timeout: Option<Duration>) -> Cmd {
    blmove_in_place(key, "RIGHT", timeout)
}

/// `SCAN cursor MATCH pattern COUNT 1000`.
pub(crate) fn scan(cursor: u64, pattern: &str) -> Cmd {
    let mut scan = redis::cmd("SCAN");
    scan.arg(cursor)
        .arg("MATCH")
        .arg(pattern)
        .arg("COUNT")
        .arg(1000);
    scan
}

/// Adds the UTF-8 keys of one SCAN batch to `keys` (skipping the others).
pub(crate) fn scanned(keys: &mut Vec<String>, batch: Vec<Vec<u8>>) {
    keys.extend(
        batch
            .into_iter()
            .filter_map(|key| String::from_utf8(key).ok()),
    );
}

/// `keys` sorted, each once: SCAN may return a key more than once.
pub(crate) fn sorted_keys(mut keys: Vec<String>) -> Vec<String> {
    keys.sort_unstable();
    keys.dedup();
    keys
}

/// `BLMOVE key key LEFT LEFT timeout`: waits for the list to have an
/// element and leaves it as it is.
pub(crate) fn blmove_head(key: &str, timeout: Option<Duration>) -> Cmd {
    blmove_in_place(key, "LEFT", timeout)
}

/// `BLMOVE key key end end timeout`.
fn blmove_in_place(key: &str, end: &str, timeout: Option<Duration>) -> Cmd {
    let mut blmove = redis::cmd("BLMOVE");
    blmove
        .arg(key)
        .arg(key)
        .arg(end)
        .arg(end)
        .arg(block_seconds(timeout));
    blmove
}

/// A count as LPOP and BLMPOP take it: Redis refuses one beyond `i64::MAX`,
/// which no list reaches, so a larger one means the same: every element.
fn redis_count(count: usize) -> u64 {
    (count as u64).min(i64::MAX as u64)
}

/// A BLPOP or BLMOVE timeout in seconds with millisecond precision, rounded
/// up: Redis reads a timeout below one millisecond as 0, which would block
/// forever.
pub(crate) fn block_seconds(timeout: Option<Duration>) -> String {
    match timeout {
        None => "0".into(),
        Some(timeout) => {
            let millis = ttl_millis(timeout).max(1);
            format!("{}.{:03}", millis / 1000, millis % 1000)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blpop_timeouts_never_round_to_forever() {
        assert_eq!(block_seconds(None), "0");
        assert_eq!(block_seconds(Some(Duration::from_nanos(1))), "0.001");
        assert_eq!(block_seconds(Some(Duration::ZERO)), "0.001");
        assert_eq!(block_seconds(Some(Duration::from_millis(1500))), "1.500");
        assert_eq!(block_seconds(Some(Duration::from_secs(30))), "30.000");
    }
}
