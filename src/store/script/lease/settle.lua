-- What settling a delivery needs: the ack script is this file, then its
-- own body; the other lease scripts are this file, then prelude.lua
-- (and, for those acting on one delivery, holder.lua), then their own
-- body (src/store/script/lease/mod.rs).
local kinds = {'list', 'zset', 'hash', 'stream'}
-- Whether the key at index i holds another type.
local function wrong(i)
  local kind = redis.call('TYPE', KEYS[i])['ok']
  return kind ~= kinds[i] and kind ~= 'none'
end
-- Whether one of the keys at these indexes (one to three) holds
-- another type.
local function foreign(a, b, c)
  return wrong(a) or (b ~= nil and wrong(b)) or (c ~= nil and wrong(c))
end
local wrongtype = 'WRONGTYPE Operation against a key holding the wrong kind of value'
-- The list of a unit of more than one message, which holds its bodies.
local function unit_list(unit)
  return string.sub(KEYS[2], 1, -9) .. ':unit:' .. unit
end
-- A unit's state string `unit#` as byte codes: 49 held, 120 moved to
-- unit.j, 48 gone. Only a unit of one message keeps none: it is held.
local function codes(state)
  if state then return {string.byte(state, 1, -1)} end
  return {49}
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
