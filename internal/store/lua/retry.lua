-- retry.lua: run a dead or cancelled task again: it goes to the tail of its
-- queue with a fresh attempt count (its history is kept).
-- KEYS[1] spec  KEYS[2] state
-- ARGV[1] partition prefix  ARGV[2] task id  ARGV[3] now (ms)
-- Returns {'ok'} | {'notfound'} | {'noqueue'} | {'state', state} (not dead or cancelled)
local pp, id, now = ARGV[1], ARGV[2], tonumber(ARGV[3])
local spec = redis.call('GET', KEYS[1])
if not spec then return reply({'notfound'}) end
local q = string.sub(spec, 1, string.find(spec, '\n', 1, true) - 1)
local st = redis.call('HGET', KEYS[2], 'st')
if st ~= 'dead' and st ~= 'cancelled' then return reply({'state', st or 'queued'}) end
local meta = pp .. 'm:' .. q
if redis.call('EXISTS', meta) == 0 then return reply({'noqueue'}) end
redis.call('ZREM', pp .. 'x:' .. q, id)
redis.call('PERSIST', KEYS[1])
redis.call('PERSIST', KEYS[2])
-- a task cancelled while queued may still have its stream entry ("ce"):
-- it keeps that place instead of getting a second entry
local inStream = redis.call('HGET', KEYS[2], 'ce') == '1'
redis.call('HSET', KEYS[2], 'st', 'queued', 'a', 0, 'k', 0, 'ts', now)
redis.call('HDEL', KEYS[2], 'fin', 'cx', 'keep', 'rt', 'ce')
if inStream then return reply({'ok'}) end
redis.call('XADD', pp .. 's:' .. q, '*', 't', id)
announce(pp, meta, pp .. 'l:' .. q, pp .. 'ready', q, now)
return reply({'ok'})
