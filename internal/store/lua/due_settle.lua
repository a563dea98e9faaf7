-- due_settle.lua: move a partition's entry in a global due index to the
-- earliest entry its poller just read from the partition's own index (later
-- than the one it found), or remove it when that index was empty, but only
-- if nobody lowered it meanwhile: compare and set. The caller reads the
-- partition's index again afterwards and lowers the entry if an earlier one
-- arrived in between (see store/due.go).
-- KEYS[1] due index
-- ARGV[1] partition  ARGV[2] the score the poller saw  ARGV[3] the new score ('' removes)
-- Returns 1 when it changed the entry.
local cur = tonumber(redis.call('ZSCORE', KEYS[1], ARGV[1]))
if cur ~= tonumber(ARGV[2]) then return reply(0) end
if ARGV[3] == '' then
  redis.call('ZREM', KEYS[1], ARGV[1])
else
  redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
end
return reply(1)
