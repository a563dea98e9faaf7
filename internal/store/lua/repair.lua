-- repair.lua: the janitor's check of one queue. The scripts keep the ready
-- and timer indexes right; this puts back an entry that an operator's manual
-- change or a bug removed, so no queue with work can be forgotten.
-- KEYS[1] meta  KEYS[2] stream  KEYS[3] lease  KEYS[4] ready  KEYS[5] delayed  KEYS[6] timers
-- ARGV[1] queue  ARGV[2] now (ms)
-- Returns the number of index entries fixed.
local meta, stream, lease, ready, delayed, timers = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local q, now = ARGV[1], tonumber(ARGV[2])
if redis.call('EXISTS', meta) == 0 then return 0 end
local fixed = 0
local n = redis.call('ZCARD', delayed)
local t = redis.call('ZSCORE', timers, q)
if n > 0 then
  local first = redis.call('ZRANGE', delayed, 0, 0, 'WITHSCORES')
  if not t or tonumber(t) > tonumber(first[2]) then
    redis.call('ZADD', timers, first[2], q)
    fixed = fixed + 1
  end
elseif t then
  redis.call('ZREM', timers, q)
  fixed = fixed + 1
end
if redis.call('HGET', meta, 'paused') ~= '1' and redis.call('EXISTS', lease) == 0
    and redis.call('XLEN', stream) > 0 and not redis.call('ZSCORE', ready, q) then
  redis.call('ZADD', ready, now, q)
  fixed = fixed + 1
end
return fixed
