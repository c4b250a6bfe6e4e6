//! The Lua scripts behind the multi-step operations of both real stores.
//!
//! Redis runs a script atomically, but does not roll it back: a step that
//! fails aborts the script with the earlier steps applied. So each script
//! makes every step that can fail (a wrong key type, a TTL Redis refuses)
//! before its first write, or undoes its writes when a later step refuses,
//! and an error leaves the data as it was. (A
//! `MULTI`/`EXEC` transaction runs the later commands even when an earlier
//! one fails, and inside a cluster a redirection aborts it.)
//!
//! A script is sent by its SHA-1 (`EVALSHA`); a server that does not know it
//! yet (`NOSCRIPT`: first use, restart, failover) gets its text (`EVAL`),
//! which also caches it there (see the exchange).

pub(super) mod lease;

use std::sync::OnceLock;

use sha1::{Digest, Sha1};

/// A Lua script.
pub(crate) struct Script {
    text: &'static str,
    sha: OnceLock<String>,
}

impl Script {
    const fn new(text: &'static str) -> Self {
        Self {
            text,
            sha: OnceLock::new(),
        }
    }

    /// The script's text.
    pub(crate) fn text(&self) -> &'static str {
        self.text
    }

    /// The SHA-1 of its text, lower-case hex, as `EVALSHA` takes it.
    pub(crate) fn sha(&self) -> &str {
        self.sha.get_or_init(|| {
            Sha1::digest(self.text.as_bytes())
                .iter()
                .map(|byte| format!("{byte:02x}"))
                .collect()
        })
    }
}

/// RPUSH the values (ARGV[2..]) and PEXPIRE the list by ARGV[1] ms, in one
/// atomic step; an error changes nothing. RPUSH refuses a key of another
/// type before it writes anything. PEXPIRE refuses a deadline it cannot
/// represent (the server's clock decides which); the values just pushed
/// are then taken off the tail again, which leaves the list as it was (a
/// list the push created is gone again), and the refusal is the answer.
/// Pushes in chunks: Lua's `unpack` has a bounded stack.
pub(crate) static PUSH_WITH_TTL: Script = Script::new(
    "\
local len = 0
local last = #ARGV
for first = 2, last, 1000 do
  len = redis.call('RPUSH', KEYS[1], unpack(ARGV, first, math.min(first + 999, last)))
end
local set = redis.pcall('PEXPIRE', KEYS[1], ARGV[1])
if type(set) == 'table' and set.err then
  redis.call('LTRIM', KEYS[1], 0, -last)
  return set
end
return len",
);

/// The tail element of the list, then the list deleted (freed in the
/// background, whatever its length), in one atomic step. LINDEX refuses a
/// key of another type before anything is deleted.
pub(crate) static TAKE_LAST: Script = Script::new(
    "\
local last = redis.call('LINDEX', KEYS[1], -1)
redis.call('UNLINK', KEYS[1])
return last",
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha_is_the_sha1_of_the_text_in_lowercase_hex() {
        let script = Script::new("return 1");
        assert_eq!(script.sha(), "e0e1f9fabfc9d4800c877a703b823ac0578ff8db");
    }
}
