-- The functions of the scripts that act on one delivery wherever it is
-- held (nack, extend, dead-letter, release); they follow prelude.lua
-- (src/store/script/lease/mod.rs).
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
