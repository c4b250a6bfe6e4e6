//! The lease scripts: every transition of at-least-once delivery is one of
//! them, one atomic step on the four keys of [`LeaseKeys`](crate::LeaseKeys)
//! (`KEYS[1]` the list, then pending, body, dead).
//!
//! Each begins with the same prelude of shared functions. A script checks
//! the type of every key it writes before its first write (a key it reads
//! first checks itself), so a key of another type fails it with
//! `WRONGTYPE` and changes nothing. Times are whole milliseconds since 1970
//! on the server's clock, which a Lua number and a sorted-set score hold
//! exactly. Commands that take many arguments go in chunks of 1,000: Lua's
//! stack is bounded.

use std::time::SystemTime;

use redis::Value;

use super::Script;
use crate::store::lease::{
    DeliveryTag, LeaseEntry, LeaseSnapshot, Leased, from_epoch_millis, parse_member,
};

/// The functions the scripts share.
macro_rules! prelude {
    () => {
        "\
local kinds = {'list', 'zset', 'hash', 'list'}
-- Whether one of the keys at these indexes holds another type.
local function foreign(...)
  for _, i in ipairs({...}) do
    local kind = redis.call('TYPE', KEYS[i])['ok']
    if kind ~= kinds[i] and kind ~= 'none' then return true end
  end
  return false
end
local wrongtype = 'WRONGTYPE Operation against a key holding the wrong kind of value'
local function now()
  local clock = redis.call('TIME')
  return tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
end
-- `command key args...` in chunks; the array replies, concatenated.
local function chunked(command, key, args)
  local replies = {}
  for first = 1, #args, 1000 do
    local reply = redis.call(command, key, unpack(args, first, math.min(first + 999, #args)))
    if type(reply) == 'table' then
      for _, item in ipairs(reply) do replies[#replies + 1] = item end
    end
  end
  return replies
end
-- A pending member: id, deliveries, whether it waits.
local function parse(member)
  local id, n, waiting = string.match(member, '^(.*)#(%d+)(%+?)$')
  return id, tonumber(n), waiting == '+'
end
-- Moves the bodies of `ids` to the dead letters, in order.
local function bury(ids)
  if #ids == 0 then return end
  local bodies = {}
  for _, body in ipairs(chunked('HMGET', KEYS[3], ids)) do
    if body then bodies[#bodies + 1] = body end
  end
  chunked('RPUSH', KEYS[4], bodies)
  chunked('HDEL', KEYS[3], ids)
end
-- Acks the id and attempt pairs of ARGV from `first` on: each message held
-- by that delivery (in flight, or waiting after it) is deleted. How many.
local function ack(first)
  local in_flight, ids, seen = {}, {}, {}
  for i = first, #ARGV - 1, 2 do
    local member = ARGV[i] .. '#' .. ARGV[i + 1]
    if not seen[member] then
      seen[member] = true
      in_flight[#in_flight + 1] = member
      ids[#ids + 1] = ARGV[i]
    end
  end
  if #in_flight == 0 then return 0 end
  local held, held_ids, waiting, waiting_ids = {}, {}, {}, {}
  for i, score in ipairs(chunked('ZMSCORE', KEYS[2], in_flight)) do
    if score then
      held[#held + 1] = in_flight[i]
      held_ids[#held_ids + 1] = ids[i]
    else
      waiting[#waiting + 1] = in_flight[i] .. '+'
      waiting_ids[#waiting_ids + 1] = ids[i]
    end
  end
  if #waiting > 0 then
    for i, score in ipairs(chunked('ZMSCORE', KEYS[2], waiting)) do
      if score then
        held[#held + 1] = waiting[i]
        held_ids[#held_ids + 1] = waiting_ids[i]
      end
    end
  end
  if #held > 0 then
    chunked('ZREM', KEYS[2], held)
    chunked('HDEL', KEYS[3], held_ids)
  end
  return #held
end
"
    };
}

/// ARGV: lease ms, count, max deliveries, id prefix, then id and attempt
/// pairs to ack first. Leases the due pending messages (burying those
/// delivered `max` times), then the head of the list. Answers the
/// deadline; how many ms until something is due when nothing was leased
/// (-1: nothing pending); how many were acked; then id, attempt and body of
/// each message.
pub(in crate::store) static LEASE: Script = Script::new(concat!(
    prelude!(),
    "\
if foreign(1, 3, 4) then return redis.error_reply(wrongtype) end
local acked = ack(5)
local t = now()
local count, max = tonumber(ARGV[2]), tonumber(ARGV[3])
local deadline = t + tonumber(ARGV[1])
local out = {deadline, -1, acked}
local taken = 0
while taken < count do
  local due = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', t, 'LIMIT', 0, count - taken)
  if #due == 0 then break end
  local live, attempts, exhausted = {}, {}, {}
  for _, member in ipairs(due) do
    local id, n = parse(member)
    if n >= max then
      exhausted[#exhausted + 1] = id
    else
      live[#live + 1] = id
      attempts[#attempts + 1] = n + 1
    end
  end
  chunked('ZREM', KEYS[2], due)
  local renewed = {}
  for i, body in ipairs(chunked('HMGET', KEYS[3], live)) do
    -- A message whose body is gone (its hash was replaced) cannot come back.
    if body then
      renewed[#renewed + 1] = deadline
      renewed[#renewed + 1] = live[i] .. '#' .. attempts[i]
      out[#out + 1] = live[i]
      out[#out + 1] = attempts[i]
      out[#out + 1] = body
    end
  end
  chunked('ZADD', KEYS[2], renewed)
  bury(exhausted)
  taken = taken + #renewed / 2
end
if taken < count then
  local popped = redis.call('LPOP', KEYS[1], count - taken)
  if popped then
    local fields, members = {}, {}
    for i, body in ipairs(popped) do
      local id = ARGV[4] .. '-' .. i
      fields[#fields + 1] = id
      fields[#fields + 1] = body
      members[#members + 1] = deadline
      members[#members + 1] = id .. '#1'
      out[#out + 1] = id
      out[#out + 1] = 1
      out[#out + 1] = body
    end
    chunked('HSET', KEYS[3], fields)
    chunked('ZADD', KEYS[2], members)
  end
end
if #out == 3 then
  local first = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')[2]
  if first then out[2] = math.max(tonumber(first) - t, 0) end
end
return out"
));

/// ARGV: id and attempt pairs. How many were acked.
pub(in crate::store) static ACK: Script = Script::new(concat!(
    prelude!(),
    "\
if foreign(3) then return redis.error_reply(wrongtype) end
return ack(1)"
));

/// ARGV: id, attempt, delay ms, max deliveries. 0: not in flight, 1: due
/// again after the delay, 2: a dead letter.
pub(in crate::store) static NACK: Script = Script::new(concat!(
    prelude!(),
    "\
if foreign(3, 4) then return redis.error_reply(wrongtype) end
local member = ARGV[1] .. '#' .. ARGV[2]
if redis.call('ZREM', KEYS[2], member) == 0 then return 0 end
if tonumber(ARGV[2]) >= tonumber(ARGV[4]) then
  bury({ARGV[1]})
  return 2
end
redis.call('ZADD', KEYS[2], now() + tonumber(ARGV[3]), member .. '+')
return 1"
));

/// ARGV: id, attempt, lease ms. The new deadline, or -1 when not in flight.
pub(in crate::store) static EXTEND: Script = Script::new(concat!(
    prelude!(),
    "\
local member = ARGV[1] .. '#' .. ARGV[2]
if not redis.call('ZSCORE', KEYS[2], member) then return -1 end
local deadline = now() + tonumber(ARGV[3])
redis.call('ZADD', KEYS[2], deadline, member)
return deadline"
));

/// ARGV: id, attempt. Moves the message in flight to the dead letters; 1
/// when it was there.
pub(in crate::store) static DEAD_LETTER: Script = Script::new(concat!(
    prelude!(),
    "\
if foreign(3, 4) then return redis.error_reply(wrongtype) end
if redis.call('ZREM', KEYS[2], ARGV[1] .. '#' .. ARGV[2]) == 0 then return 0 end
bury({ARGV[1]})
return 1"
));

/// ARGV: max deliveries. Every expired lease waits (same time) or, after
/// `max` deliveries, is buried; how many moved.
pub(in crate::store) static RECLAIM: Script = Script::new(concat!(
    prelude!(),
    "\
if foreign(3, 4) then return redis.error_reply(wrongtype) end
local max = tonumber(ARGV[1])
local due = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now(), 'WITHSCORES')
local expired, waiting, exhausted = {}, {}, {}
for i = 1, #due, 2 do
  local id, n, waits = parse(due[i])
  if not waits then
    expired[#expired + 1] = due[i]
    if n >= max then
      exhausted[#exhausted + 1] = id
    else
      waiting[#waiting + 1] = due[i + 1]
      waiting[#waiting + 1] = due[i] .. '+'
    end
  end
end
chunked('ZREM', KEYS[2], expired)
chunked('ZADD', KEYS[2], waiting)
bury(exhausted)
return #expired"
));

/// ARGV: max. Moves up to `max` dead letters to the tail of the list.
pub(in crate::store) static REQUEUE_DEAD: Script = Script::new(concat!(
    prelude!(),
    "\
local moved, max = 0, tonumber(ARGV[1])
while moved < max and redis.call('LMOVE', KEYS[4], KEYS[1], 'LEFT', 'RIGHT') do
  moved = moved + 1
end
return moved"
));

/// Deletes the dead letters; how many there were.
pub(in crate::store) static PURGE_DEAD: Script = Script::new(concat!(
    prelude!(),
    "\
local dead = redis.call('LLEN', KEYS[4])
redis.call('UNLINK', KEYS[4])
return dead"
));

/// The whole state: pending with scores, bodies, dead letters.
pub(in crate::store) static SNAPSHOT: Script = Script::new(concat!(
    prelude!(),
    "\
return {
  redis.call('ZRANGE', KEYS[2], 0, -1, 'WITHSCORES'),
  redis.call('HGETALL', KEYS[3]),
  redis.call('LRANGE', KEYS[4], 0, -1)
}"
));

/// What a [`LEASE`] answered: the messages, or how long until one may be due.
pub(in crate::store) struct LeaseReply {
    /// How many of the deliveries to ack were.
    pub(in crate::store) acked: u64,
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
        let (Some(Value::Int(deadline)), Some(Value::Int(next_due)), Some(Value::Int(acked))) =
            (items.next(), items.next(), items.next())
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
            acked: u64::try_from(acked).map_err(|_| broken())?,
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
        let (pending, bodies, dead): (Flat, Flat, Flat) =
            redis::from_redis_value(value).map_err(|_| broken())?;
        let mut bodies: std::collections::HashMap<Vec<u8>, Vec<u8>> = {
            let mut flat = bodies.into_iter();
            std::iter::from_fn(|| Some((flat.next()?, flat.next()?))).collect()
        };
        let mut snapshot = LeaseSnapshot {
            dead,
            ..LeaseSnapshot::default()
        };
        let mut pending = pending.into_iter();
        while let (Some(member), Some(score)) = (pending.next(), pending.next()) {
            let member = String::from_utf8(member).map_err(|_| broken())?;
            let (id, attempt, waiting) = parse_member(&member).ok_or_else(broken)?;
            let at: u64 = std::str::from_utf8(&score)
                .ok()
                .and_then(|score| score.parse().ok())
                .ok_or_else(broken)?;
            let entry = LeaseEntry {
                // A body whose hash was replaced is gone: shown empty.
                body: bodies.remove(id.as_bytes()).unwrap_or_default(),
                tag: DeliveryTag {
                    id: id.to_owned(),
                    attempt,
                },
                at: from_epoch_millis(at),
            };
            if waiting {
                snapshot.retrying.push(entry);
            } else {
                snapshot.in_flight.push(entry);
            }
        }
        Ok(Self(snapshot))
    }
}

/// The deadline [`EXTEND`] answered; `None` for -1 (not in flight).
pub(in crate::store) fn extended(deadline: i64) -> Option<SystemTime> {
    u64::try_from(deadline).ok().map(from_epoch_millis)
}
