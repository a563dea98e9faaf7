-- trash_drain.lua: delete up to a batch of a deleted queue's tasks.
-- KEYS[1] trash set
-- ARGV[1] partition prefix  ARGV[2] trash token  ARGV[3] batch size
-- Returns the number of tasks deleted; 0 means the queue is fully gone
-- and its token left the trash set.
local pp, token, batch = ARGV[1], ARGV[2], tonumber(ARGV[3])
local tp = pp .. 'trash:' .. token .. ':'
local done = 0
local s = tp .. 's'
local es = redis.call('XRANGE', s, '-', '+', 'COUNT', batch)
for _, e in ipairs(es) do
  redis.call('DEL', spec_key(pp, e[2][2]), state_key(pp, e[2][2]))
  redis.call('XDEL', s, e[1])
  done = done + 1
end
for _, z in ipairs({tp .. 'z', tp .. 'x'}) do
  if done < batch then
    local ids = redis.call('ZRANGE', z, 0, batch - done - 1)
    for _, id in ipairs(ids) do
      redis.call('DEL', spec_key(pp, id), state_key(pp, id))
      redis.call('ZREM', z, id)
      done = done + 1
    end
  end
end
if done == 0 then
  redis.call('DEL', s, tp .. 'z', tp .. 'x', tp .. 'm')
  redis.call('SREM', KEYS[1], token)
end
return reply(done)
