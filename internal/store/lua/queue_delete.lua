-- queue_delete.lua: remove a queue at once. Its keys are renamed into the
-- partition's trash (the queue is gone for every reader and writer in this
-- one step) and its tasks are deleted afterwards in batches by
-- trash_drain.lua, so a queue of millions of tasks never blocks Redis. The
-- sequence number the queue reached is kept in the partition's 'seqs' hash
-- for a queue of the same name created later.
--
-- KEYS[1] meta  KEYS[2] stream  KEYS[3] delayed  KEYS[4] dead  KEYS[5] lease
-- KEYS[6] ready  KEYS[7] timers  KEYS[8] registry  KEYS[9] trash  KEYS[10] epoch counter
-- ARGV[1] partition prefix  ARGV[2] queue
-- Returns the trash token (a string), or 0 when there is no such queue.
local pp, q = ARGV[1], ARGV[2]
if redis.call('EXISTS', KEYS[1]) == 0 then return reply(0) end
local seq = redis.call('HGET', KEYS[1], 'seq')
if seq then redis.call('HSET', pp .. 'seqs', q, seq) end
local token = tostring(redis.call('INCR', KEYS[10]))
local tp = pp .. 'trash:' .. token .. ':'
local names = {'m', 's', 'z', 'x'}
for i = 1, 4 do
  if redis.call('EXISTS', KEYS[i]) == 1 then redis.call('RENAME', KEYS[i], tp .. names[i]) end
end
redis.call('DEL', KEYS[5])
redis.call('ZREM', KEYS[6], q)
redis.call('ZREM', KEYS[7], q)
redis.call('ZREM', pp .. 'deadq', q)
redis.call('SREM', KEYS[8], q)
redis.call('SADD', KEYS[9], token)
return reply(token)
