-- schedule_put.lua: create or update a schedule in its queue's partition:
-- its definition, a new version, its next instant, and its entry in the
-- partition's schedule index (only while it is neither paused nor ended).
-- The last run (lt, la) is kept. An earlier next instant is marked and
-- announced, so the scheduler leader wakes for it.
--
-- KEYS[1] schedule hash  KEYS[2] schedule index  KEYS[3] queue meta
-- ARGV[1] name  ARGV[2] definition JSON  ARGV[3] next instant (ms, '' = none)
-- ARGV[4] paused ('1' or '0')  ARGV[5] expected version ('' = any)
-- ARGV[6] schedule hint channel  ARGV[7] partition number
-- Returns {'created' | 'updated', version}, {'stale', version} when the
-- version is not the expected one, or {'noqueue'}.
local shash, idx, meta = KEYS[1], KEYS[2], KEYS[3]
local name, def, nxt, paused, want = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local hintch, part = ARGV[6], ARGV[7]

if redis.call('EXISTS', meta) == 0 then return reply({'noqueue'}) end
local ver = redis.call('HGET', shash, 'ver')
if want ~= '' and (ver or '0') ~= want then return reply({'stale', ver or 0}) end
local status = 'updated'
if not ver then status = 'created' end
local v = redis.call('HINCRBY', shash, 'ver', 1)
redis.call('HSET', shash, 'def', def, 'paused', paused)
if nxt == '' then
  redis.call('HDEL', shash, 'next')
else
  redis.call('HSET', shash, 'next', nxt)
end
if nxt == '' or paused == '1' then
  redis.call('ZREM', idx, name)
else
  local first = redis.call('ZRANGE', idx, 0, 0, 'WITHSCORES')
  redis.call('ZADD', idx, nxt, name)
  if #first == 0 or tonumber(nxt) < tonumber(first[2]) then
    mark_sched(nxt)
    redis.call('PUBLISH', hintch, 'r' .. part .. ':' .. nxt)
  end
end
return reply({status, v})
