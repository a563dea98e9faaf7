-- cancel.lua: cancel a task, or discard a dead one. A waiting task never
-- runs; a running task (or one a strict queue holds for its next attempt)
-- finishes its current call but is not called again.
-- KEYS[1] spec  KEYS[2] state
-- ARGV[1] partition prefix  ARGV[2] task id  ARGV[3] now (ms)
-- ARGV[4] retention (ms) for a queue that does not say its own
-- Returns {'notfound'} | {'final', state} | {'deleted'} (a dead task was
-- discarded) | {'cancelled'} | {'cancelling'} (it is running now)
local pp, id, now, keep = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local spec = redis.call('GET', KEYS[1])
if not spec then return reply({'notfound'}) end
local q = string.sub(spec, 1, string.find(spec, '\n', 1, true) - 1)
keep = redis.call('HGET', pp .. 'm:' .. q, 'ret') or keep
local st = redis.call('HGET', KEYS[2], 'st')
if st == 'dead' then
  redis.call('ZREM', pp .. 'x:' .. q, id)
  redis.call('DEL', KEYS[1], KEYS[2])
  return reply({'deleted'})
end
if st == 'succeeded' or st == 'cancelled' then return reply({'final', st}) end
local delayed = pp .. 'z:' .. q
if redis.call('ZREM', delayed, id) == 1 then
  fix_timer(delayed, pp .. 'timers', q)
  finish(pp, id, 'cancelled', now, keep)
  return reply({'cancelled'})
end
if st == 'active' or st == 'retrying' then
  redis.call('HSET', KEYS[2], 'cx', '1', 'keep', keep)
  return reply({'cancelling'})
end
-- queued in the stream: the dispatcher skips it when it gets there; "ce"
-- records that its entry is still there (retry.lua reuses it)
finish(pp, id, 'cancelled', now, keep)
if (tonumber(keep) or 0) > 0 then redis.call('HSET', KEYS[2], 'ce', '1') end
return reply({'cancelled'})
