-- queue_put.lua: create or update a queue.
-- KEYS[1] meta  KEYS[2] stream  KEYS[3] registry  KEYS[4] ready  KEYS[5] lease
-- ARGV[1] queue  ARGV[2] now (ms)
-- ARGV[3] mode: 'create' (refuse an existing queue), 'update' (refuse a
--   missing one) or 'upsert'
-- ARGV[4] dispatch hint channel  ARGV[5] partition number
-- ARGV[6..] meta field/value pairs to set
-- Returns 'created', 'updated', 'exists' (mode create) or 'missing' (mode update).
local meta, stream, registry, ready, lease = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local q, now, mode = ARGV[1], tonumber(ARGV[2]), ARGV[3]
local exists = redis.call('EXISTS', meta) == 1
if exists and mode == 'create' then return 'exists' end
if not exists and mode == 'update' then return 'missing' end
for i = 6, #ARGV, 2 do redis.call('HSET', meta, ARGV[i], ARGV[i + 1]) end
redis.call('HINCRBY', meta, 'ver', 1)
if exists then
  -- a new rate or burst takes effect from now; keep the tokens already earned
  return 'updated'
end
redis.call('HSET', meta, 'name', q, 'created', now)
redis.call('DEL', stream)
redis.call('XGROUP', 'CREATE', stream, GROUP, '0', 'MKSTREAM')
redis.call('SADD', registry, q)
return 'created'
