-- janitor.lua: the scheduler leader's slow pass over one partition. It
-- reports the earliest entry of each of the partition's indexes (schedules
-- too) as marks, so
-- the caller lowers the global due indexes to them (putting back a due entry
-- that a crash between a script and its mark lost), prunes the sequence
-- numbers kept for deleted queue names once the clock has passed them (the
-- sequence never goes below now * 1000, see common.lua's next_seq), and
-- counts the deleted queues still in the trash.
-- KEYS[1] ready  KEYS[2] timers  KEYS[3] deadq  KEYS[4] trash  KEYS[5] seqs  KEYS[6] schedule index
-- ARGV[1] now (ms)  ARGV[2] how many seqs entries to look at  ARGV[3] HSCAN cursor
-- Returns {deleted queues in the trash, next HSCAN cursor}.
local now, scan, cursor = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
local r = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if #r > 0 then mark_ready(r[2]) end
local t = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
if #t > 0 then mark_timer(t[2]) end
local d = redis.call('ZRANGE', KEYS[3], 0, 0, 'WITHSCORES')
if #d > 0 then mark_dead(d[2]) end
local sc = redis.call('ZRANGE', KEYS[6], 0, 0, 'WITHSCORES')
if #sc > 0 then mark_sched(sc[2]) end
if scan > 0 then
  local res = redis.call('HSCAN', KEYS[5], cursor, 'COUNT', scan)
  cursor = res[1]
  local kv = res[2]
  for i = 1, #kv, 2 do
    -- a sequence below the current floor can no longer hold one back
    if (tonumber(kv[i + 1]) or 0) < now * 1000 - 86400000000 then redis.call('HDEL', KEYS[5], kv[i]) end
  end
end
return reply({redis.call('SCARD', KEYS[4]), cursor})
