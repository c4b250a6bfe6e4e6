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
//! to the unit's without passing through Lua (a `SORT … BY nosort LIMIT
//! … STORE` copies the head, an `LTRIM` drops it), and the client reads
//! them back with an `LRANGE` in the same transaction (`MULTI`, the
//! script, `LRANGE`, `EXEC`), so Lua never holds them on the way in or
//! out. A delivery is named by its unit and place, `(U, j)`:
//! a lease runs once per call id, and a call sent again after its reply
//! was lost finds its unit and answers what its first run answered.
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

/// The functions the scripts share.
macro_rules! prelude {
    () => {
        "\
local kinds = {'list', 'zset', 'hash', 'stream'}
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
-- A unit's record {bodies, attempts or false, ids or false, acked}; nil.
local function record(unit)
  local packed = redis.call('HGET', KEYS[3], unit)
  if not packed then return nil end
  return cmsgpack.unpack(packed)
end
-- The list of a unit of more than one message, which holds its bodies.
local function unit_list(unit)
  return string.sub(KEYS[2], 1, -9) .. ':unit:' .. unit
end
-- A record's bodies are its own (a unit of one message) or its list's
-- (the record holds their count).
local function count_of(rec)
  if type(rec[1]) == 'number' then return rec[1] end
  return #rec[1]
end
local function bodies_of(unit, rec)
  if type(rec[1]) == 'number' then return redis.call('LRANGE', unit_list(unit), 0, -1) end
  return rec[1]
end
local function body_at(unit, rec, j)
  if type(rec[1]) == 'number' then
    return redis.call('LINDEX', unit_list(unit), string.format('%d', j - 1))
  end
  return rec[1][j]
end
local function attempt_of(rec, j)
  if rec[2] then return rec[2][j] end
  return 1
end
local function id_of(unit, rec, j)
  if rec[3] and rec[3][j] ~= '' then return rec[3][j] end
  return unit .. '-' .. j
end
-- A unit's state string `unit#` as byte codes: 49 held, 120 moved to
-- unit.j, 48 gone. Only a unit of one message keeps none: it is held.
local function codes(state)
  if state then return {string.byte(state, 1, -1)} end
  return {49}
end
local function state_of(unit)
  return codes(redis.call('HGET', KEYS[3], unit .. '#'))
end
-- How many messages a state string says are held.
local function held_in(state)
  return select(2, string.gsub(state, '1', ''))
end
-- The codes of a unit whose state string is `state`, read without its
-- record (an ack needs no body); nil when there is no such unit.
local function held_state(unit, state)
  if state or redis.call('HEXISTS', KEYS[3], unit) == 1 then return codes(state) end
  return nil
end
-- Keeps the state, or drops the unit once it holds nothing (and its
-- list: a unit of more than one message has one).
local function settle(unit, member, chars)
  for _, c in ipairs(chars) do
    if c == 49 then
      if #chars > 1 then redis.call('HSET', KEYS[3], unit .. '#', string.char(unpack(chars))) end
      return
    end
  end
  redis.call('HDEL', KEYS[3], unit, unit .. '#')
  redis.call('ZREM', KEYS[2], member)
  if #chars > 1 then redis.call('UNLINK', unit_list(unit)) end
end
-- The unit's member in pending and whether it waits; nil when none.
local function member_of(unit)
  if redis.call('ZSCORE', KEYS[2], unit) then return unit, false end
  if redis.call('ZSCORE', KEYS[2], unit .. '+') then return unit .. '+', true end
  return nil, false
end
-- Where delivery (unit, j) is held now: holder, its index there, record,
-- state codes, member, whether it waits; nil when it is not.
local function find(unit, j)
  local rec = record(unit)
  if rec then
    local chars = state_of(unit)
    if chars[j] == 49 then
      local member, waiting = member_of(unit)
      if member then return unit, j, rec, chars, member, waiting end
      return nil
    end
    if chars[j] ~= 120 then return nil end
  end
  local sub = unit .. '.' .. j
  local sub_rec = record(sub)
  if not sub_rec then return nil end
  local member, waiting = member_of(sub)
  if not member then return nil end
  return sub, 1, sub_rec, {49}, member, waiting
end
-- Takes message j out of its holder (state and all).
local function take_out(holder, j, chars, member, mark)
  chars[j] = mark
  settle(holder, member, chars)
end
-- Moves message j of a unit to a unit of its own, `holder.j`, under
-- `attempt`, waiting or in flight until `score`.
local function extract(holder, rec, j, chars, member, attempt, waiting, score)
  local sub = holder .. '.' .. j
  redis.call('HSET', KEYS[3], sub, cmsgpack.pack({{body_at(holder, rec, j)}, {attempt}, {id_of(holder, rec, j)}, 0}))
  redis.call('ZADD', KEYS[2], score, waiting and (sub .. '+') or sub)
  take_out(holder, j, chars, member, 120)
end
local function bury(unit, rec, j, reason)
  redis.call('XADD', KEYS[4], '*', 'id', id_of(unit, rec, j), 'deliveries',
    attempt_of(rec, j), 'reason', reason, 'body', body_at(unit, rec, j))
end
-- The places an argument names: `3`, `1-40`, comma-separated.
local function places(list)
  local out = {}
  for first, last in string.gmatch(list, '(%d+)-?(%d*)') do
    local a = tonumber(first)
    local b = tonumber(last) or a
    for j = a, b do out[#out + 1] = j end
  end
  return out
end
-- Acks the places `list` of `unit`, whose state string is `state`, one
-- by one; how many were held.
local function ack_places(unit, list, state)
  local acked = 0
  local chars = held_state(unit, state)
  local member = nil
  if chars then member = member_of(unit) end
  local changed = false
  for _, j in ipairs(places(list)) do
    if chars and chars[j] == 49 and member then
      chars[j] = 48
      changed = true
      acked = acked + 1
    elseif not chars or chars[j] == 120 then
      local sub = unit .. '.' .. j
      if redis.call('HDEL', KEYS[3], sub) == 1 then
        redis.call('ZREM', KEYS[2], sub, sub .. '+')
        acked = acked + 1
        if chars then chars[j] = 48; changed = true end
      end
    end
  end
  if changed then settle(unit, member or unit, chars) end
  return acked
end
-- Acks the (unit, places) pairs of ARGV from `first` on; how many were held.
local function ack(first)
  local acked = 0
  for i = first, #ARGV - 1, 2 do
    local unit, list = ARGV[i], ARGV[i + 1]
    local state = redis.call('HGET', KEYS[3], unit .. '#')
    -- Every place of the unit, none of it moved to a unit of its own:
    -- while the unit is pending it goes in one step, its held messages
    -- acked, without a look at each place. (A unit that is gone may have
    -- left messages in units of their own: the place-by-place path finds
    -- them.)
    local whole = list == '1'
    if state then
      whole = list == string.format('1-%d', #state) and not string.find(state, 'x', 1, true)
    end
    if whole and redis.call('ZREM', KEYS[2], unit, unit .. '+') == 1 then
      local held = redis.call('HDEL', KEYS[3], unit, unit .. '#')
      if state then
        held = held_in(state)
        redis.call('UNLINK', unit_list(unit))
      end
      acked = acked + held
    else
      acked = acked + ack_places(unit, list, state)
    end
  end
  return acked
end
"
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
if foreign(1, 2, 3, 4) then return redis.error_reply(wrongtype) end
local unit = ARGV[4]
local ran = record(unit)
if ran then
  local score = redis.call('ZSCORE', KEYS[2], unit) or redis.call('ZSCORE', KEYS[2], unit .. '+') or 0
  local ids = {}
  for j = 1, count_of(ran) do ids[j] = id_of(unit, ran, j) end
  return {tonumber(score), -1, ran[4], redis.call('ZCARD', KEYS[2]), unit, ran[2], ids, ran[1]}
end
local marked = redis.call('GET', KEYS[5])
if marked then
  return {0, -1, tonumber(marked), redis.call('ZCARD', KEYS[2]), unit, false, false, {}}
end
local acked = ack(5)
local lease, count, max = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local t = now()
-- Numbers formatted once, as integers (Lua's own conversion goes through
-- floating point, the dearest part of a call's arguments).
local t_arg = string.format('%d', t)
local deadline = t + lease
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
-- through Lua: a copy of the head (SORT without sorting), then the head
-- trimmed off.
local stored = 0
local want = count - #bodies
if want > 1 and not mixed then
  stored = redis.call('SORT', KEYS[1], 'BY', 'nosort', 'LIMIT', '0', string.format('%d', want), 'STORE', KEYS[6])
  if stored > 0 then redis.call('LTRIM', KEYS[1], string.format('%d', stored), '-1') end
  -- A unit of one message keeps its body in its record.
  if stored == 1 then bodies, stored = {redis.call('LPOP', KEYS[6])}, 0 end
elseif want > 0 then
  local popped = redis.call('LPOP', KEYS[1], string.format('%d', want))
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
    prelude!(),
    "\
if foreign(2, 3) then return redis.error_reply(wrongtype) end
return ack(1)"
));

/// ARGV: unit, place, delay ms, max deliveries. 0: not in flight, 1: due
/// again after the delay, 2: a dead letter.
pub(in crate::store) static NACK: Script = Script::new(concat!(
    prelude!(),
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
    prelude!(),
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
    prelude!(),
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
    prelude!(),
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
local due = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now(), 'WITHSCORES')
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
