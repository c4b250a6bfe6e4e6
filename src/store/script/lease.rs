//! The lease scripts: every transition of at-least-once delivery is one of
//! them, one atomic step on the six keys of [`LeaseKeys`](crate::LeaseKeys)
//! (`KEYS[1]` the list, then leased, retry, body, tries, dead).
//!
//! Each begins with the same prelude: it checks the type of all six keys
//! before anything is written, so a key of another type fails the script
//! with `WRONGTYPE` and changes nothing, and reads the server's clock in
//! milliseconds (`now`). Times are whole milliseconds since 1970, which a
//! Lua number and a sorted-set score hold exactly.

use std::time::SystemTime;

use redis::Value;

use super::Script;
use crate::store::lease::{DeliveryTag, LeaseEntry, LeaseSnapshot, Leased, from_epoch_millis};

/// Type checks, `now`, and the functions the scripts share.
macro_rules! prelude {
    () => {
        "\
local kinds = {'list', 'zset', 'zset', 'hash', 'hash', 'list'}
for i = 1, 6 do
  local kind = redis.call('TYPE', KEYS[i])['ok']
  if kind ~= kinds[i] and kind ~= 'none' then
    return redis.error_reply('WRONGTYPE Operation against a key holding the wrong kind of value')
  end
end
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
-- Whether delivery `attempt` (a decimal string) of `id` is the last one.
local function holds(id, attempt)
  return redis.call('HGET', KEYS[5], id) == attempt
end
-- Ends a delivery of `id`, already out of the leased set: due again at
-- `at`, or a dead letter once delivered `max` times. 1 or 2.
local function release(id, at, max)
  if tonumber(redis.call('HGET', KEYS[5], id)) >= max then
    redis.call('RPUSH', KEYS[6], redis.call('HGET', KEYS[4], id))
    redis.call('HDEL', KEYS[4], id)
    redis.call('HDEL', KEYS[5], id)
    return 2
  end
  redis.call('ZADD', KEYS[3], at, id)
  return 1
end
-- Releases up to `limit` expired leases; how many.
local function reclaim(limit, max)
  local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, limit)
  for _, id in ipairs(expired) do
    redis.call('ZREM', KEYS[2], id)
    release(id, now, max)
  end
  return #expired
end
"
    };
}

/// ARGV: lease ms, count, max deliveries, id prefix. Reclaims up to 256
/// expired leases, then leases the due retries and the head of the list.
/// Answers the deadline, then how many ms until something may be due when
/// nothing was leased (-1: nothing in flight or waiting), then id, attempt
/// and body of each message.
pub(in crate::store) static LEASE: Script = Script::new(concat!(
    prelude!(),
    "\
local count, max = tonumber(ARGV[2]), tonumber(ARGV[3])
reclaim(256, max)
local deadline = now + tonumber(ARGV[1])
local out = {deadline, -1}
local due = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now, 'LIMIT', 0, count)
for _, id in ipairs(due) do
  redis.call('ZREM', KEYS[3], id)
  redis.call('ZADD', KEYS[2], deadline, id)
  out[#out + 1] = id
  out[#out + 1] = redis.call('HINCRBY', KEYS[5], id, 1)
  out[#out + 1] = redis.call('HGET', KEYS[4], id)
end
if #due < count then
  local popped = redis.call('LPOP', KEYS[1], count - #due)
  if popped then
    for i, body in ipairs(popped) do
      local id = ARGV[4] .. '-' .. i
      redis.call('HSET', KEYS[4], id, body)
      redis.call('HSET', KEYS[5], id, 1)
      redis.call('ZADD', KEYS[2], deadline, id)
      out[#out + 1] = id
      out[#out + 1] = 1
      out[#out + 1] = body
    end
  end
end
if #out == 2 then
  for _, set in ipairs({KEYS[2], KEYS[3]}) do
    local first = redis.call('ZRANGE', set, 0, 0, 'WITHSCORES')[2]
    if first then
      local wait = math.max(tonumber(first) - now, 0)
      if out[2] < 0 or wait < out[2] then out[2] = wait end
    end
  end
end
return out"
));

/// ARGV: id and attempt pairs. Deletes each message its delivery still
/// holds (leased, or waiting after it); how many.
pub(in crate::store) static ACK: Script = Script::new(concat!(
    prelude!(),
    "\
local acked = 0
for i = 1, #ARGV, 2 do
  local id = ARGV[i]
  if holds(id, ARGV[i + 1])
    and redis.call('ZREM', KEYS[2], id) + redis.call('ZREM', KEYS[3], id) > 0 then
    redis.call('HDEL', KEYS[4], id)
    redis.call('HDEL', KEYS[5], id)
    acked = acked + 1
  end
end
return acked"
));

/// ARGV: id, attempt, delay ms, max deliveries. 0: not held, 1: due again
/// after the delay, 2: dead letter.
pub(in crate::store) static NACK: Script = Script::new(concat!(
    prelude!(),
    "\
if not holds(ARGV[1], ARGV[2]) or redis.call('ZREM', KEYS[2], ARGV[1]) == 0 then
  return 0
end
return release(ARGV[1], now + tonumber(ARGV[3]), tonumber(ARGV[4]))"
));

/// ARGV: id, attempt, lease ms. The new deadline, or -1 when not in flight.
pub(in crate::store) static EXTEND: Script = Script::new(concat!(
    prelude!(),
    "\
if not holds(ARGV[1], ARGV[2]) or not redis.call('ZSCORE', KEYS[2], ARGV[1]) then
  return -1
end
local deadline = now + tonumber(ARGV[3])
redis.call('ZADD', KEYS[2], deadline, ARGV[1])
return deadline"
));

/// ARGV: id, attempt. Moves the leased message to the dead letters; 1 when
/// it was there.
pub(in crate::store) static DEAD_LETTER: Script = Script::new(concat!(
    prelude!(),
    "\
if not holds(ARGV[1], ARGV[2]) or redis.call('ZREM', KEYS[2], ARGV[1]) == 0 then
  return 0
end
release(ARGV[1], now, 0)
return 1"
));

/// ARGV: limit, max deliveries. Releases up to `limit` expired leases.
pub(in crate::store) static RECLAIM: Script = Script::new(concat!(
    prelude!(),
    "return reclaim(tonumber(ARGV[1]), tonumber(ARGV[2]))"
));

/// ARGV: max. Moves up to `max` dead letters to the tail of the list.
pub(in crate::store) static REQUEUE_DEAD: Script = Script::new(concat!(
    prelude!(),
    "\
local moved, max = 0, tonumber(ARGV[1])
while moved < max and redis.call('LMOVE', KEYS[6], KEYS[1], 'LEFT', 'RIGHT') do
  moved = moved + 1
end
return moved"
));

/// Deletes the dead letters; how many there were.
pub(in crate::store) static PURGE_DEAD: Script = Script::new(concat!(
    prelude!(),
    "\
local dead = redis.call('LLEN', KEYS[6])
redis.call('UNLINK', KEYS[6])
return dead"
));

/// The whole state: leased and retry with scores, bodies, tries, dead.
pub(in crate::store) static SNAPSHOT: Script = Script::new(concat!(
    prelude!(),
    "\
return {
  redis.call('ZRANGE', KEYS[2], 0, -1, 'WITHSCORES'),
  redis.call('ZRANGE', KEYS[3], 0, -1, 'WITHSCORES'),
  redis.call('HGETALL', KEYS[4]),
  redis.call('HGETALL', KEYS[5]),
  redis.call('LRANGE', KEYS[6], 0, -1)
}"
));

/// What a [`LEASE`] answered: the messages, or how long until one may be due.
pub(in crate::store) struct LeaseReply {
    pub(in crate::store) leased: Vec<Leased>,
    /// Milliseconds until a lease expires or a retry is due, when nothing
    /// was leased and something is in flight or waiting.
    pub(in crate::store) next_due: Option<u64>,
}

impl redis::FromRedisValue for LeaseReply {
    fn from_redis_value(value: Value) -> Result<Self, redis::ParsingError> {
        let broken = || redis::ParsingError::from(String::from("a lease reply of another shape"));
        let Value::Array(items) = value else {
            return Err(broken());
        };
        let mut items = items.into_iter();
        let (Some(Value::Int(deadline)), Some(Value::Int(next_due))) = (items.next(), items.next())
        else {
            return Err(broken());
        };
        let deadline = from_epoch_millis(u64::try_from(deadline).map_err(|_| broken())?);
        let mut leased = Vec::new();
        while let Some(id) = items.next() {
            let (Value::BulkString(id), Some(Value::Int(attempt)), Some(Value::BulkString(body))) =
                (id, items.next(), items.next())
            else {
                return Err(broken());
            };
            leased.push(Leased {
                tag: DeliveryTag {
                    id: String::from_utf8(id).map_err(|_| broken())?,
                    attempt: u32::try_from(attempt).map_err(|_| broken())?,
                },
                deadline,
                body,
            });
        }
        Ok(Self {
            leased,
            next_due: u64::try_from(next_due).ok(),
        })
    }
}

/// What [`SNAPSHOT`] answered.
pub(in crate::store) struct SnapshotReply(pub(in crate::store) LeaseSnapshot);

impl redis::FromRedisValue for SnapshotReply {
    fn from_redis_value(value: Value) -> Result<Self, redis::ParsingError> {
        let broken =
            || redis::ParsingError::from(String::from("a lease snapshot of another shape"));
        type Flat = Vec<Vec<u8>>;
        let parts: (Flat, Flat, Flat, Flat, Flat) =
            redis::from_redis_value(value).map_err(|_| broken())?;
        let (leased, retry, bodies, tries, dead) = parts;
        let pairs = |flat: Vec<Vec<u8>>| -> Result<Vec<(String, String)>, redis::ParsingError> {
            let mut flat = flat.into_iter();
            let mut pairs = Vec::new();
            while let (Some(first), Some(second)) = (flat.next(), flat.next()) {
                let text = |bytes| String::from_utf8(bytes).map_err(|_| broken());
                pairs.push((text(first)?, text(second)?));
            }
            Ok(pairs)
        };
        let mut bodies: std::collections::HashMap<Vec<u8>, Vec<u8>> = {
            let mut flat = bodies.into_iter();
            std::iter::from_fn(|| Some((flat.next()?, flat.next()?))).collect()
        };
        let tries: std::collections::HashMap<String, String> = pairs(tries)?.into_iter().collect();
        let mut entries =
            |scored: Vec<(String, String)>| -> Result<Vec<LeaseEntry>, redis::ParsingError> {
                scored
                    .into_iter()
                    .map(|(id, score)| {
                        let at: u64 = score.parse().map_err(|_| broken())?;
                        let attempt = tries
                            .get(&id)
                            .and_then(|n| n.parse().ok())
                            .ok_or_else(broken)?;
                        let body = bodies.remove(id.as_bytes()).ok_or_else(broken)?;
                        Ok(LeaseEntry {
                            tag: DeliveryTag { id, attempt },
                            at: from_epoch_millis(at),
                            body,
                        })
                    })
                    .collect()
            };
        Ok(Self(LeaseSnapshot {
            in_flight: entries(pairs(leased)?)?,
            retrying: entries(pairs(retry)?)?,
            dead,
        }))
    }
}

/// The deadline [`EXTEND`] answered; `None` for -1 (not in flight).
pub(in crate::store) fn extended(deadline: i64) -> Option<SystemTime> {
    u64::try_from(deadline).ok().map(from_epoch_millis)
}
