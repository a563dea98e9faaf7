-- queue_put.lua: create or update a queue.
-- KEYS[1] meta  KEYS[2] stream  KEYS[3] registry
-- ARGV[1] partition prefix  ARGV[2] queue  ARGV[3] now (ms)
-- ARGV[4] mode: 'create' (refuse an existing queue), 'update' (refuse a
--   missing one) or 'upsert'
-- ARGV[5..] meta field/value pairs to set
-- Returns 'created', 'updated', 'exists' (mode create) or 'missing' (mode update).
local meta, stream, registry = KEYS[1], KEYS[2], KEYS[3]
local pp, q, mode = ARGV[1], ARGV[2], ARGV[4]
local exists = redis.call('EXISTS', meta) == 1
if exists and mode == 'create' then return reply('exists') end
if not exists and mode == 'update' then return reply('missing') end
for i = 5, #ARGV, 2 do redis.call('HSET', meta, ARGV[i], ARGV[i + 1]) end
redis.call('HINCRBY', meta, 'ver', 1)
if exists then
  -- a new rate or burst takes effect from now; keep the tokens already earned
  return reply('updated')
end
create_queue(pp, meta, stream, registry, q, ARGV[3])
return reply('created')
