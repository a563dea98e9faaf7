-- renew.lua: extend a lease and push the queue's ready time past it.
-- KEYS[1] meta  KEYS[2] lease  KEYS[3] ready
-- ARGV[1] queue  ARGV[2] consumer  ARGV[3] epoch  ARGV[4] now (ms)  ARGV[5] lease ttl (ms)
-- Returns 1, or 0 when the caller no longer owns the queue.
local meta, lease, ready = KEYS[1], KEYS[2], KEYS[3]
local q, epoch, now, ttl = ARGV[1], ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5])
if not fenced(meta, lease, ARGV[2] .. ':' .. epoch, epoch, ttl) then return 0 end
redis.call('PEXPIRE', lease, ttl)
redis.call('ZADD', ready, now + ttl, q)
return 1
