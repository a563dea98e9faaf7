-- pull.lua: deliver more entries to the queue's owner when it has no call
-- to complete (after waiting for the rate limit, after a strict hold ended
-- without a redelivery, or when told that work arrived while its calls run).
-- KEYS[1] meta  KEYS[2] stream  KEYS[3] lease  KEYS[4] ready
-- ARGV[1] partition prefix  ARGV[2] queue  ARGV[3] consumer  ARGV[4] fencing token
-- ARGV[5] now (ms)  ARGV[6] lease ttl (ms)  ARGV[7] entries wanted
-- ARGV[8] the owner's wake-up channel ('' none): see more() in common.lua
-- Returns {'stale'} or what complete.lua returns after its record.
local meta, stream, lease, ready = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local pp, q, consumer, token = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local now, ttl, want = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
if not fenced(meta, lease, token, ttl) then return reply({'stale'}) end
redis.call('PEXPIRE', lease, ttl)
redis.call('ZADD', ready, 'XX', now + ttl, q)
return reply(more(pp, meta, stream, lease, ready, q, consumer, now, want, ARGV[5], ARGV[8]))
