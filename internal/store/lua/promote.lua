-- promote.lua: move a partition's due delayed tasks into their queues'
-- streams. Each move is gated by its ZREM, in the same script as its XADD, so
-- two schedulers running at once never promote a task twice.
--
-- KEYS[1] timers  KEYS[2] ready
-- ARGV[1] partition prefix  ARGV[2] now (ms)  ARGV[3] most tasks to move
-- Returns {moved, next due (ms, -1 when nothing is delayed), due1, due2, ...}
-- with the due time of every task moved (for the promotion-lag histogram).
local timers, ready = KEYS[1], KEYS[2]
local pp, now, limit = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local out = {0, -1}
local moved = 0
local queues = redis.call('ZRANGEBYSCORE', timers, '-inf', now, 'LIMIT', 0, limit)
for _, q in ipairs(queues) do
  local delayed, stream, meta = pp .. 'z:' .. q, pp .. 's:' .. q, pp .. 'm:' .. q
  local here = promote_due(pp, delayed, stream, now, limit - moved, out)
  fix_timer(delayed, timers, q)
  if here > 0 then
    moved = moved + here
    announce(pp, meta, pp .. 'l:' .. q, ready, q, now)
  end
  if moved >= limit then break end
end
out[1] = moved
local first = redis.call('ZRANGE', timers, 0, 0, 'WITHSCORES')
if #first > 0 then out[2] = first[2] end
return reply(out)
