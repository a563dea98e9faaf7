-- dead_trim.lua: drop the dead letters of a partition's queues that are past
-- their queue's dead-letter retention (their task records have expired by
-- then). The partition's 'deadq' index holds, per queue with dead letters,
-- the time its oldest one passes retention.
-- KEYS[1] deadq
-- ARGV[1] partition prefix  ARGV[2] now (ms)  ARGV[3] most queues to trim
-- Returns the number of dead letters dropped.
local deadq = KEYS[1]
local pp, now, limit = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local dropped = 0
for _, q in ipairs(redis.call('ZRANGEBYSCORE', deadq, '-inf', now, 'LIMIT', 0, limit)) do
  local m = redis.call('HMGET', pp .. 'm:' .. q, 'dret', 'cfg')
  local ret = tonumber(m[1])
  if not ret and m[2] then
    local ok, c = pcall(cjson.decode, m[2])
    if ok and type(c) == 'table' and tonumber(c.dead_retention) then ret = tonumber(c.dead_retention) * 1000 end
  end
  if not ret then
    redis.call('ZREM', deadq, q) -- the queue is gone
  else
    local dead = pp .. 'x:' .. q
    dropped = dropped + redis.call('ZREMRANGEBYSCORE', dead, '-inf', now - ret)
    local oldest = redis.call('ZRANGE', dead, 0, 0, 'WITHSCORES')
    if #oldest > 0 then
      redis.call('ZADD', deadq, tonumber(oldest[2]) + ret, q)
    else
      redis.call('ZREM', deadq, q)
    end
  end
end
return reply(dropped)
