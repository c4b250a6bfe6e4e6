//! The lease scripts: every transition of at-least-once delivery is one of
//! them, one atomic step on the keys of [`LeaseKeys`](crate::store::LeaseKeys)
//! (`KEYS[1]` the list, then pending, records, dead letters; the lease
//! script also takes its call's ack marker, `KEYS[5]`, and its unit's
//! list, `KEYS[6]`).
//!
//! # The layout: units
//!
//! A leased receive takes its messages as one **unit**, named by the
//! call's id `U`:
//!
//! - `{L}:pending`, a sorted set: `U` while the unit is in flight, scored
//!   by its lease deadline; `U+` once its messages wait to be delivered
//!   again, scored by when they are due;
//! - `{L}:body`, a hash: `U` → the unit's record (one MessagePack array:
//!   the body of a unit of one message, or how many a unit of more holds;
//!   the attempts — `false` when all are first deliveries —, the messages'
//!   ids — `false` when each is its place in this unit, `U-j` —, and how
//!   many deliveries the call acked); `U#` → its state, a character per
//!   message: `1` held in the unit, `x` moved to a unit of its own `U.j`
//!   (a nack, an extend or a release of that one message), `0` gone. A
//!   unit of one message keeps no state: it is held while its record is.
//! - `{L}:unit:U`, a list: the bodies of a unit of more than one message,
//!   in order, from its lease until the unit is dropped.
//! - `{L}:dead`, a stream of dead letters: `id`, `deliveries`, `reason`,
//!   `body`; the entry's id tells when it died.
//!
//! So a batch costs Redis one sorted-set entry, one hash record and one
//! list, not an entry per message; its bodies go from the channel's list
//! to the unit's without passing through Lua (a batch that takes the
//! whole list renames it, and drops the TTL a sender may have given it;
//! else a `SORT … BY nosort LIMIT … STORE` copies the head and an `LTRIM`
//! drops it), and the client reads them back with an `LRANGE` in the
//! same transaction (`MULTI`, the script, `LRANGE`, `EXEC`), so Lua never
//! holds them on the way in or out. A delivery is named by its unit and
//! place, `(U, j)`: a lease runs once per call id, and a call sent again
//! after its reply was lost finds its unit and answers what its first run
//! answered.
//!
//! Every script checks the types of the keys it writes before its first
//! write (`WRONGTYPE`, nothing changed). Times are whole milliseconds on
//! the server's clock.

use std::sync::Arc;
use std::time::SystemTime;

use super::Script;
use crate::store::lease::{
    DeadLetter, DeadReason, DeliveryTag, LeaseEntry, LeaseSnapshot, LeaseStats, Leased,
    from_epoch_millis,
};
use crate::store::protocol::resp::Reply;

mod reply;

pub(in crate::store) use reply::{LeaseReply, dead_letters, extended, snapshot, stats};

/// The functions settling a delivery needs, which every script shares.
macro_rules! settling {
    () => {
        include_str!("settle.lua")
    };
}

/// The functions the scripts other than the ack share (the ack script
/// defines only [`settling!`]'s: each function a script defines costs
/// every call).
macro_rules! prelude {
    () => {
        concat!(settling!(), include_str!("prelude.lua"))
    };
}

/// [`prelude!`]'s functions and those of the scripts that act on one
/// delivery wherever it is held.
macro_rules! holding {
    () => {
        concat!(prelude!(), include_str!("holder.lua"))
    };
}

/// ARGV: lease ms, count, max deliveries, the call id (the unit), then
/// (unit, places) pairs to ack first. KEYS[5]: the call's ack marker;
/// KEYS[6]: its unit's list (only a lease of more than one message uses
/// it, and only such a lease passes it).
/// Answers: deadline, ms until something is due when nothing was leased
/// (-1: nothing pending), how many were acked, whether anything is
/// pending (more than 0: yes; a lease that took something answers 1, and
/// does not count), the unit, the attempts (nil: all 1), the ids (nil: `U-j`),
/// the bodies (or, when they are in the unit's list, how many). A call
/// that ran already answers with its unit again.
pub(in crate::store) static LEASE: Script = Script::new(concat!(
    prelude!(),
    "\
if foreign(2, 4) then return redis.error_reply(wrongtype) end
-- The list's length and the call's own record are the first reads of
-- the list and of the records' hash: another type there is refused by
-- them (WRONGTYPE, nothing changed) without a TYPE of its own.
local queued = redis.pcall('LLEN', KEYS[1])
if type(queued) == 'table' then return queued end
local unit = ARGV[4]
local ran = redis.pcall('HGET', KEYS[3], unit)
if type(ran) == 'table' then return ran end
ran = ran and cmsgpack.unpack(ran)
if ran then
  local score = redis.call('ZSCORE', KEYS[2], unit) or redis.call('ZSCORE', KEYS[2], unit .. '+') or 0
  local ids = {}
  for j = 1, count_of(ran) do ids[j] = id_of(unit, ran, j) end
  return {tonumber(score), -1, ran[4], redis.call('ZCARD', KEYS[2]), unit, ran[2], ids, ran[1]}
end
-- (Only a call that acks leaves a marker.)
local marked = #ARGV > 4 and redis.call('GET', KEYS[5])
if marked then
  return {0, -1, tonumber(marked), redis.call('ZCARD', KEYS[2]), unit, false, false, {}}
end
local acked = ack(5)
-- (Numbers are converted only where arithmetic needs them, and formatted
-- once, as integers: a conversion costs Redis about two thirds of a
-- redis.call, see prelude.lua's now().)
local count = tonumber(ARGV[2])
local t, t_arg = now()
local deadline = t + tonumber(ARGV[1])
local max = nil
local bodies, attempts, ids = {}, {}, {}
local mixed = false
while #bodies < count do
  local due = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', t_arg, 'LIMIT', '0', '1')
  if #due == 0 then break end
  local member = due[1]
  local waiting = string.sub(member, -1) == '+'
  local from = member
  if waiting then from = string.sub(member, 1, -2) end
  local rec = record(from)
  if not rec then
    redis.call('ZREM', KEYS[2], member)
  else
    local chars = state_of(from)
    local held = nil
    for j = 1, count_of(rec) do
      if #bodies >= count then break end
      if chars[j] == 49 then
        local a = attempt_of(rec, j)
        max = max or tonumber(ARGV[3])
        if a >= max then
          if waiting then bury(from, rec, j, 'nacked') else bury(from, rec, j, 'expired') end
        else
          held = held or bodies_of(from, rec)
          mixed = true
          bodies[#bodies + 1] = held[j]
          attempts[#bodies] = a + 1
          ids[#bodies] = id_of(from, rec, j)
        end
        chars[j] = 48
      end
    end
    settle(from, member, chars)
  end
end
-- The messages of the list: first deliveries. Many of them, and nothing
-- else, go from the list to the unit's list (KEYS[6]) without passing
-- through Lua: the whole list renamed (no copy; without the TTL a
-- sender may have given it) when the batch takes it all, else a copy of
-- the head (SORT without sorting), then the head trimmed off.
local stored = 0
local want = count - #bodies
-- (The count as it came, when nothing was delivered again.)
local want_arg = want == count and ARGV[2] or string.format('%d', want)
-- (A unit of one message keeps its body in its record: when the list
-- holds one, one LPOP, as a single lease's.)
if want > 1 and not mixed and queued > 1 then
  if queued <= want then
    redis.call('RENAME', KEYS[1], KEYS[6])
    redis.call('PERSIST', KEYS[6])
    stored = queued
  else
    -- (The list holds more than `want`: the copy holds `want`.)
    stored = redis.call('SORT', KEYS[1], 'BY', 'nosort', 'LIMIT', '0', want_arg, 'STORE', KEYS[6])
    redis.call('LTRIM', KEYS[1], want_arg, '-1')
  end
elseif want > 0 and queued > 0 then
  local popped = redis.call('LPOP', KEYS[1], want_arg)
  if popped then
    if mixed then
      for _, body in ipairs(popped) do
        bodies[#bodies + 1] = body
        attempts[#bodies] = 1
        ids[#bodies] = ''
      end
    else
      bodies = popped
    end
  end
end
if not mixed then attempts, ids = false, false end
local n = math.max(#bodies, stored)
if n > 1 then
  -- A unit of many messages keeps their bodies in its list; its record
  -- and the reply give their count.
  for i = 1, #bodies, 1000 do
    redis.call('RPUSH', KEYS[6], unpack(bodies, i, math.min(i + 999, #bodies)))
  end
  bodies = n
end
if n > 0 then
  local packed = cmsgpack.pack({bodies, attempts, ids, acked})
  if n > 1 then
    redis.call('HSET', KEYS[3], unit, packed, unit .. '#', string.rep('1', n))
  else
    redis.call('HSET', KEYS[3], unit, packed)
  end
  redis.call('ZADD', KEYS[2], string.format('%d', deadline), unit)
elseif acked > 0 then
  redis.call('SET', KEYS[5], acked, 'PX', 600000)
end
local next_due, pending = -1, 1
if n == 0 then
  local first = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')[2]
  if first then next_due = math.max(tonumber(first) - t, 0) else pending = 0 end
end
return {deadline, next_due, acked, pending, unit, attempts, ids, bodies}"
));

/// ARGV: (unit, places) pairs. How many were held.
pub(in crate::store) static ACK: Script = Script::new(concat!(
    settling!(),
    "\
if foreign(2, 3) then return redis.error_reply(wrongtype) end
return ack(1)"
));

/// ARGV: unit, place, delay ms, max deliveries. 0: not in flight, 1: due
/// again after the delay, 2: a dead letter.
pub(in crate::store) static NACK: Script = Script::new(concat!(
    holding!(),
    "\
if foreign(2, 3, 4) then return redis.error_reply(wrongtype) end
local holder, j, rec, chars, member, waiting = find(ARGV[1], tonumber(ARGV[2]))
if not holder or waiting then return 0 end
local a = attempt_of(rec, j)
if a >= tonumber(ARGV[4]) then
  bury(holder, rec, j, 'nacked')
  take_out(holder, j, chars, member, 48)
  return 2
end
local due = now() + tonumber(ARGV[3])
if count_of(rec) == 1 then
  redis.call('ZREM', KEYS[2], member)
  redis.call('ZADD', KEYS[2], due, holder .. '+')
else
  extract(holder, rec, j, chars, member, a, true, due)
end
return 1"
));

/// ARGV: unit, place, lease ms. The new deadline, or -1 when not in flight.
pub(in crate::store) static EXTEND: Script = Script::new(concat!(
    holding!(),
    "\
if foreign(2, 3) then return redis.error_reply(wrongtype) end
local holder, j, rec, chars, member, waiting = find(ARGV[1], tonumber(ARGV[2]))
if not holder or waiting then return -1 end
local deadline = now() + tonumber(ARGV[3])
if count_of(rec) == 1 then
  redis.call('ZADD', KEYS[2], deadline, member)
else
  extract(holder, rec, j, chars, member, attempt_of(rec, j), false, deadline)
end
return deadline"
));

/// ARGV: unit, place, reason. Moves the message in flight to the dead
/// letters; 1 when it was there.
pub(in crate::store) static DEAD_LETTER: Script = Script::new(concat!(
    holding!(),
    "\
if foreign(2, 3, 4) then return redis.error_reply(wrongtype) end
local holder, j, rec, chars, member, waiting = find(ARGV[1], tonumber(ARGV[2]))
if not holder or waiting then return 0 end
bury(holder, rec, j, ARGV[3])
take_out(holder, j, chars, member, 48)
return 1"
));

/// ARGV: (unit, places) pairs. Each delivery still in flight waits to be
/// delivered again from now, its delivery not counted: its attempt goes
/// back by one. How many.
pub(in crate::store) static RELEASE: Script = Script::new(concat!(
    holding!(),
    "\
if foreign(2, 3) then return redis.error_reply(wrongtype) end
local released, t = 0, now()
for i = 1, #ARGV - 1, 2 do
  for _, place in ipairs(places(ARGV[i + 1])) do
    local holder, j, rec, chars, member, waiting = find(ARGV[i], place)
    if holder and not waiting then
      local a = attempt_of(rec, j) - 1
      if count_of(rec) == 1 then
        redis.call('HSET', KEYS[3], holder, cmsgpack.pack({rec[1], {a}, {id_of(holder, rec, 1)}, rec[4]}))
        redis.call('ZREM', KEYS[2], member)
        redis.call('ZADD', KEYS[2], t, holder .. '+')
      else
        extract(holder, rec, j, chars, member, a, true, t)
      end
      released = released + 1
    end
  end
end
return released"
));

/// ARGV: max deliveries. Every expired lease waits (same time) or, after
/// `max` deliveries, is buried; how many messages moved.
pub(in crate::store) static RECLAIM: Script = Script::new(concat!(
    prelude!(),
    "\
if foreign(2, 3, 4) then return redis.error_reply(wrongtype) end
local max, moved = tonumber(ARGV[1]), 0
local _, t_arg = now()
local due = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', t_arg, 'WITHSCORES')
for i = 1, #due, 2 do
  local member = due[i]
  if string.sub(member, -1) ~= '+' then
    local rec = record(member)
    if not rec then
      redis.call('ZREM', KEYS[2], member)
    else
      local chars = state_of(member)
      for j = 1, count_of(rec) do
        if chars[j] == 49 then
          moved = moved + 1
          if attempt_of(rec, j) >= max then
            bury(member, rec, j, 'expired')
            chars[j] = 48
          end
        end
      end
      settle(member, member, chars)
      if redis.call('ZREM', KEYS[2], member) == 1 then
        redis.call('ZADD', KEYS[2], due[i + 1], member .. '+')
      end
    end
  end
end
return moved"
));

/// ARGV: how many of the oldest (0: none), then ids. Moves those dead
/// letters to the tail of the list; how many.
pub(in crate::store) static REQUEUE_DEAD: Script = Script::new(concat!(
    prelude!(),
    "\
if foreign(1, 4) then return redis.error_reply(wrongtype) end
local entries = {}
local oldest = tonumber(ARGV[1])
if oldest > 0 then entries = redis.call('XRANGE', KEYS[4], '-', '+', 'COUNT', oldest) end
for i = 2, #ARGV do
  local found = redis.call('XRANGE', KEYS[4], ARGV[i], ARGV[i])
  if found[1] then entries[#entries + 1] = found[1] end
end
local moved = 0
for _, entry in ipairs(entries) do
  -- An id named twice moves once.
  if redis.call('XDEL', KEYS[4], entry[1]) == 1 then
    local fields = entry[2]
    for f = 1, #fields - 1, 2 do
      if fields[f] == 'body' then
        redis.call('RPUSH', KEYS[1], fields[f + 1])
        moved = moved + 1
      end
    end
  end
end
return moved"
));

/// ARGV: how many of the oldest (`all`: every one), then ids. Deletes
/// those dead letters; how many.
pub(in crate::store) static PURGE_DEAD: Script = Script::new(concat!(
    prelude!(),
    "\
if foreign(4) then return redis.error_reply(wrongtype) end
if ARGV[1] == 'all' then
  local dead = redis.call('XLEN', KEYS[4])
  redis.call('UNLINK', KEYS[4])
  return dead
end
local purged = 0
local oldest = tonumber(ARGV[1])
if oldest > 0 then
  for _, entry in ipairs(redis.call('XRANGE', KEYS[4], '-', '+', 'COUNT', oldest)) do
    purged = purged + redis.call('XDEL', KEYS[4], entry[1])
  end
end
for i = 2, #ARGV, 1000 do
  purged = purged + redis.call('XDEL', KEYS[4], unpack(ARGV, i, math.min(i + 999, #ARGV)))
end
return purged"
));

/// The whole state: every unit (member, score, unit, bodies, attempts,
/// ids, state) and the dead letters.
pub(in crate::store) static SNAPSHOT: Script = Script::new(concat!(
    prelude!(),
    "\
local pending = redis.call('ZRANGE', KEYS[2], 0, -1, 'WITHSCORES')
local units = {}
for i = 1, #pending, 2 do
  local member = pending[i]
  local unit = member
  if string.sub(member, -1) == '+' then unit = string.sub(member, 1, -2) end
  local rec = record(unit)
  if rec then
    local ids = {}
    for j = 1, count_of(rec) do ids[j] = id_of(unit, rec, j) end
    local state = redis.call('HGET', KEYS[3], unit .. '#') or '1'
    units[#units + 1] = {member, tonumber(pending[i + 1]), unit, bodies_of(unit, rec), rec[2], ids, state}
  end
end
return {units, redis.call('XRANGE', KEYS[4], '-', '+')}"
));

/// How many messages wait in the list, are in flight, wait to be
/// delivered again and are dead, and the nearest lease deadline (-1:
/// none).
pub(in crate::store) static STATS: Script = Script::new(concat!(
    prelude!(),
    "\
local pending = redis.call('ZRANGE', KEYS[2], 0, -1, 'WITHSCORES')
local in_flight, waiting, nearest = 0, 0, -1
for i = 1, #pending, 2 do
  local member = pending[i]
  local waits = string.sub(member, -1) == '+'
  local unit = member
  if waits then unit = string.sub(member, 1, -2) end
  -- A member without a record (its hash deleted under it) holds nothing.
  local held = redis.call('HEXISTS', KEYS[3], unit)
  local state = redis.call('HGET', KEYS[3], unit .. '#')
  if held == 1 and state then held = held_in(state) end
  if waits then
    waiting = waiting + held
  elseif held > 0 then
    in_flight = in_flight + held
    if nearest < 0 then nearest = tonumber(pending[i + 1]) end
  end
end
local depth = 0
if redis.call('TYPE', KEYS[1])['ok'] == 'list' then depth = redis.call('LLEN', KEYS[1]) end
local dead = 0
if redis.call('TYPE', KEYS[4])['ok'] == 'stream' then dead = redis.call('XLEN', KEYS[4]) end
return {depth, in_flight, waiting, dead, nearest}"
));
