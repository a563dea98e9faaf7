-- release.lua: hand a queue back (graceful shutdown, yielding to other
-- queues, a long retry backoff or rate wait). A clean release (ARGV[7] = 1)
-- means the caller knows none of its calls for this queue can still be
-- running, so the next owner may take the pending entries at once;
-- otherwise (a call was aborted mid-flight) it waits for them as for a dead
-- owner's. The meta's token goes with the lease: a renewal or a repeated
-- completion that arrives after the release finds nothing to take back.
--
-- KEYS[1] meta  KEYS[2] stream  KEYS[3] lease  KEYS[4] ready
-- ARGV[1] partition prefix  ARGV[2] queue  ARGV[3] consumer  ARGV[4] fencing token
-- ARGV[5] now (ms)  ARGV[6] hold until (ms, 0 for none)  ARGV[7] 1 for a clean release
-- Returns 1, or 0 when the caller no longer owned the queue.
local meta, stream, lease, ready = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local pp, q, consumer, token = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local now, hold = tonumber(ARGV[5]), tonumber(ARGV[6])
local v = redis.call('GET', lease)
if v ~= token and not (v == false and redis.call('HGET', meta, 'tok') == token) then
  return reply(0)
end
local mine = redis.call('XPENDING', stream, GROUP, '-', '+', 1, consumer)
drop_lease(meta, stream, lease, consumer, #mine)
if ARGV[7] == '1' then redis.call('HSET', meta, 'clean', '1') end
if hold > now then redis.call('HSET', meta, 'hold', hold) end
if redis.call('XLEN', stream) == 0 then
  redis.call('ZREM', ready, q)
elseif redis.call('HGET', meta, 'paused') == '1' then
  redis.call('ZADD', ready, PARKED, q)
elseif hold > now then
  make_ready(pp, ready, q, hold, now)
else
  make_ready(pp, ready, q, now, now)
end
return reply(1)
