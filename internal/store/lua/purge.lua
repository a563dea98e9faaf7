-- purge.lua: remove up to a batch of a queue's waiting tasks (undelivered
-- stream entries and delayed tasks). Calls in flight, and the entry a strict
-- queue holds for its next attempt, are left alone; dead letters too.
-- KEYS[1] meta  KEYS[2] stream  KEYS[3] delayed  KEYS[4] timers  KEYS[5] ready  KEYS[6] lease
-- ARGV[1] partition prefix  ARGV[2] queue  ARGV[3] batch size
-- Returns the number of tasks removed (0: nothing waits any more), or -1
-- when there is no such queue.
local meta, stream, delayed, timers, ready, lease = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local pp, q, batch = ARGV[1], ARGV[2], tonumber(ARGV[3])
if redis.call('EXISTS', meta) == 0 then return reply(-1) end
local done = 0
local start = '-'
for _, g in ipairs(redis.call('XINFO', 'GROUPS', stream)) do
  local name, last
  for i = 1, #g, 2 do
    if g[i] == 'name' then name = g[i + 1] elseif g[i] == 'last-delivered-id' then last = g[i + 1] end
  end
  if name == GROUP and last and last ~= '0-0' then start = '(' .. last end
end
for _, e in ipairs(redis.call('XRANGE', stream, start, '+', 'COUNT', batch)) do
  redis.call('DEL', spec_key(pp, e[2][2]), state_key(pp, e[2][2]))
  redis.call('XDEL', stream, e[1])
  done = done + 1
end
if done < batch then
  for _, id in ipairs(redis.call('ZRANGE', delayed, 0, batch - done - 1)) do
    redis.call('DEL', spec_key(pp, id), state_key(pp, id))
    redis.call('ZREM', delayed, id)
    done = done + 1
  end
  fix_timer(delayed, timers, q)
end
if redis.call('EXISTS', lease) == 0 and redis.call('XLEN', stream) == 0 then
  redis.call('ZREM', ready, q)
end
return reply(done)
