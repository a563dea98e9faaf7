-- renew.lua: extend a lease and push the queue's ready time past it.
-- KEYS[1] meta  KEYS[2] lease  KEYS[3] ready
-- ARGV[1] queue  ARGV[2] fencing token  ARGV[3] now (ms)  ARGV[4] lease ttl (ms)
-- Returns 1, or 0 when the caller no longer owns the queue.
local meta, lease, ready = KEYS[1], KEYS[2], KEYS[3]
local q, token, now, ttl = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
if not fenced(meta, lease, token, ttl) then return reply(0) end
redis.call('PEXPIRE', lease, ttl)
redis.call('ZADD', ready, now + ttl, q)
return reply(1)
