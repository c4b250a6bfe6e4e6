-- The functions the lease scripts other than the ack share; they follow
-- settle.lua (src/store/script/lease/mod.rs).
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
local function state_of(unit)
  return codes(redis.call('HGET', KEYS[3], unit .. '#'))
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
