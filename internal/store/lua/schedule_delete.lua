-- schedule_delete.lua: remove a schedule from its queue's partition. The
-- tasks it created are not touched.
--
-- KEYS[1] schedule hash  KEYS[2] schedule index
-- ARGV[1] name
-- Returns 1 when the schedule existed.
redis.call('ZREM', KEYS[2], ARGV[1])
return reply(redis.call('DEL', KEYS[1]))
