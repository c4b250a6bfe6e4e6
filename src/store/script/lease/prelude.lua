-- The functions the lease scripts other than the ack share; they follow
-- settle.lua (src/store/script/lease/mod.rs).
-- The server's time in whole milliseconds, as a number and as the
-- digits of an integer (for a command's argument). Built from TIME's
-- digits: each number converted in a script costs Redis about 2,000
-- instructions (the C library's strtod and printf), two thirds of a
-- whole redis.call.
local function now()
  local clock = redis.call('TIME')
  local micros = clock[2]
  local millis = #micros > 3 and string.sub(micros, 1, -4) or ''
  local digits = clock[1] .. string.rep('0', 3 - #millis) .. millis
  return tonumber(digits), digits
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
local function bury(unit, rec, j, reason)
  redis.call('XADD', KEYS[4], '*', 'id', id_of(unit, rec, j), 'deliveries',
    attempt_of(rec, j), 'reason', reason, 'body', body_at(unit, rec, j))
end
