-- release.lua: hand a queue back (graceful shutdown, yielding to other
-- queues, or a long retry backoff). A clean release (ARGV[8] = 1) means the
-- caller knows none of its calls for this queue can still be running, so the
-- next owner may take the pending entries at once; otherwise (a call was
-- aborted mid-flight) it waits for them as for a dead owner's.
--
-- KEYS[1] meta  KEYS[2] stream  KEYS[3] lease  KEYS[4] ready
-- ARGV[1] queue  ARGV[2] consumer  ARGV[3] epoch  ARGV[4] now (ms)
-- ARGV[5] hold until (ms, 0 for none)  ARGV[6] dispatch hint channel  ARGV[7] partition number
-- ARGV[8] 1 for a clean release
-- Returns 1, or 0 when the caller no longer owned the queue.
local meta, stream, lease, ready = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local q, epoch, now, hold = ARGV[1], ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5])
local v = redis.call('GET', lease)
if v ~= ARGV[2] .. ':' .. epoch and not (v == false and redis.call('HGET', meta, 'epoch') == epoch) then
  return 0
end
redis.call('DEL', lease)
if ARGV[8] == '1' then redis.call('HSET', meta, 'clean', epoch) end
if hold > now then redis.call('HSET', meta, 'hold', hold) end
if redis.call('XLEN', stream) == 0 or redis.call('HGET', meta, 'paused') == '1' then
  redis.call('ZREM', ready, q)
elseif hold > now then
  redis.call('ZADD', ready, hold, q)
else
  redis.call('ZADD', ready, now, q)
  if ARGV[6] ~= '' then redis.call('PUBLISH', ARGV[6], ARGV[7] .. ':' .. q) end
end
return 1
