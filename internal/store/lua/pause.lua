-- pause.lua: pause or resume a queue. A paused queue starts no new call;
-- calls in flight finish, then its owner lets it go. A paused queue with
-- work stays in the ready index, parked (never claimable), so that it is
-- still counted.
-- KEYS[1] meta  KEYS[2] stream  KEYS[3] lease  KEYS[4] ready
-- ARGV[1] partition prefix  ARGV[2] queue  ARGV[3] now (ms)  ARGV[4] '1' to pause, '0' to resume
-- Returns 0 when there is no such queue, else 1.
local meta, stream, lease, ready = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local pp, q, now = ARGV[1], ARGV[2], tonumber(ARGV[3])
if redis.call('EXISTS', meta) == 0 then return reply(0) end
if ARGV[4] == '1' then
  redis.call('HSET', meta, 'paused', '1')
  if redis.call('EXISTS', lease) == 0 and redis.call('ZSCORE', ready, q) then
    redis.call('ZADD', ready, PARKED, q)
  end
  return reply(1)
end
redis.call('HDEL', meta, 'paused')
if redis.call('EXISTS', lease) == 0 then
  if redis.call('XLEN', stream) > 0 then
    local hold = tonumber(redis.call('HGET', meta, 'hold')) or 0
    make_ready(pp, ready, q, math.max(hold, now), now)
  else
    redis.call('ZREM', ready, q)
  end
end
return reply(1)
