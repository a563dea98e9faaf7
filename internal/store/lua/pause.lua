-- pause.lua: pause or resume a queue. A paused queue starts no new call;
-- calls in flight finish, then its owner lets it go.
-- KEYS[1] meta  KEYS[2] stream  KEYS[3] lease  KEYS[4] ready
-- ARGV[1] queue  ARGV[2] now (ms)  ARGV[3] '1' to pause, '0' to resume
-- ARGV[4] dispatch hint channel  ARGV[5] partition number
-- Returns 0 when there is no such queue, else 1.
local meta, stream, lease, ready = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local q, now = ARGV[1], tonumber(ARGV[2])
if redis.call('EXISTS', meta) == 0 then return 0 end
if ARGV[3] == '1' then
  redis.call('HSET', meta, 'paused', '1')
  if redis.call('EXISTS', lease) == 0 then redis.call('ZREM', ready, q) end
  return 1
end
redis.call('HDEL', meta, 'paused')
if redis.call('EXISTS', lease) == 0 and redis.call('XLEN', stream) > 0 then
  local hold = tonumber(redis.call('HGET', meta, 'hold')) or 0
  if hold > now then
    redis.call('ZADD', ready, hold, q)
  elseif redis.call('ZADD', ready, now, q) == 1 and ARGV[4] ~= '' then
    redis.call('PUBLISH', ARGV[4], ARGV[5] .. ':' .. q)
  end
end
return 1
