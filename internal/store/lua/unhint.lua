-- unhint.lua: a dispatcher heard a queue's wake-up hint but could not claim
-- the queue (no free slot, shutting down, or its own owner of the queue is
-- still exiting): give the queue back to the pollers at once, so the next
-- dispatchers in its partition's order (or this one, when a slot frees) take
-- it without waiting out the hint's grace (HINT_GRACE in common.lua). Only
-- an unowned queue's entry within that grace moves: an owner's lease
-- expiry, a retry hold or a rate wait stays.
-- KEYS[1] ready  KEYS[2] lease
-- ARGV[1] queue  ARGV[2] now (ms)
-- Returns 1 when it moved the entry.
local ready, lease, q, now = KEYS[1], KEYS[2], ARGV[1], tonumber(ARGV[2])
local t = tonumber(redis.call('ZSCORE', ready, q))
if t == nil or t <= now or t > now + HINT_GRACE then return reply(0) end
if redis.call('EXISTS', lease) == 1 then return reply(0) end
redis.call('ZADD', ready, now, q)
mark_ready(now)
return reply(1)
