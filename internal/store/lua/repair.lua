-- repair.lua: the janitor's slow check of one queue. The scripts keep the
-- indexes right; this puts back an entry that an operator's manual change or
-- a bug removed, so no queue with work can be forgotten, and removes the
-- stream consumers that hold nothing (earlier versions left one per
-- dispatcher run behind).
-- KEYS[1] meta  KEYS[2] stream  KEYS[3] lease  KEYS[4] ready  KEYS[5] delayed
-- KEYS[6] timers  KEYS[7] dead
-- ARGV[1] partition prefix  ARGV[2] queue  ARGV[3] now (ms)
-- Returns {index entries fixed, consumers removed}.
local meta, stream, lease, ready, delayed, timers, dead = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7]
local pp, q, now = ARGV[1], ARGV[2], tonumber(ARGV[3])
if redis.call('EXISTS', meta) == 0 then return reply({0, 0}) end
local fixed, removed = 0, 0
local first = redis.call('ZRANGE', delayed, 0, 0, 'WITHSCORES')
local t = redis.call('ZSCORE', timers, q)
if #first > 0 then
  if not t or tonumber(t) > tonumber(first[2]) then
    redis.call('ZADD', timers, first[2], q)
    mark_timer(first[2])
    fixed = fixed + 1
  end
elseif t then
  redis.call('ZREM', timers, q)
  fixed = fixed + 1
end
local owner = redis.call('GET', lease)
local paused = redis.call('HGET', meta, 'paused') == '1'
if not owner and redis.call('XLEN', stream) > 0 then
  local r = tonumber(redis.call('ZSCORE', ready, q))
  if paused and r ~= PARKED then
    redis.call('ZADD', ready, PARKED, q)
    fixed = fixed + 1
  elseif not paused and (not r or r == PARKED) then
    make_ready(pp, ready, q, now, now)
    fixed = fixed + 1
  end
end
local oldest = redis.call('ZRANGE', dead, 0, 0, 'WITHSCORES')
if #oldest > 0 and not redis.call('ZSCORE', pp .. 'deadq', q) then
  redis.call('ZADD', pp .. 'deadq', oldest[2], q)
  mark_dead(oldest[2])
  fixed = fixed + 1
end
local cons = owner and string.match(owner, '^(.*):[^:]*$')
for _, ci in ipairs(redis.call('XINFO', 'CONSUMERS', stream, GROUP)) do
  local name, pending
  for i = 1, #ci, 2 do
    if ci[i] == 'name' then name = ci[i + 1] elseif ci[i] == 'pending' then pending = ci[i + 1] end
  end
  if name and pending == 0 and name ~= cons then
    redis.call('XGROUP', 'DELCONSUMER', stream, GROUP, name)
    removed = removed + 1
  end
end
return reply({fixed, removed})
