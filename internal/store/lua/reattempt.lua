-- reattempt.lua: start the next attempt of the entry a strict queue holds at
-- its head (after its retry backoff), or renew the claim of an entry
-- delivered to the owner a while ago and not called yet. Claiming the entry
-- again resets its idle time and delivering it stamps a new call deadline,
-- so a later owner waits for this attempt's timeout too.
--
-- KEYS[1] meta  KEYS[2] stream  KEYS[3] lease  KEYS[4] ready
-- ARGV[1] partition prefix  ARGV[2] queue  ARGV[3] consumer  ARGV[4] fencing token
-- ARGV[5] now (ms)  ARGV[6] lease ttl (ms)  ARGV[7] entry id  ARGV[8] task id
-- ARGV[9] '1' when this is a new call (a retry: it needs a rate token), '0'
--   when it only renews the claim of an entry delivered but not yet called
-- Returns {'stale'} | {'paused'} | {'gone'} (the entry was purged) |
--   {'cancelled'} | {'ratewait', cfg version, until} (no token for the call yet) |
--   {'next', cfg version, eid, tid, spec, seq, attempt, k, since, timeout}
local meta, stream, lease, ready = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local pp, q, consumer, token = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local now, ttl, eid, tid = tonumber(ARGV[5]), tonumber(ARGV[6]), ARGV[7], ARGV[8]

if not fenced(meta, lease, token, ttl) then return reply({'stale'}) end
redis.call('PEXPIRE', lease, ttl)
redis.call('ZADD', ready, 'XX', now + ttl, q)
local m = redis.call('HMGET', meta, 'paused', 'ver', 'tmo', 'seq')
if m[1] == '1' then return reply({'paused'}) end
local ver = m[2] or '0'
local skey = state_key(pp, tid)
if redis.call('HGET', skey, 'cx') == '1' then
  redis.call('XACK', stream, GROUP, eid)
  redis.call('XDEL', stream, eid)
  finish(pp, tid, 'cancelled', ARGV[5], redis.call('HGET', skey, 'keep') or '0')
  return reply({'cancelled'})
end
-- A retry is a call like any other: it waits for a token.
local spend, tok = ARGV[9] == '1', nil
if spend then
  local room, untilms
  room, untilms, tok = tokens(meta, now, 1)
  if room == 0 then return reply({'ratewait', ver, untilms}) end
end
local c = redis.call('XCLAIM', stream, GROUP, consumer, 0, eid)
if #c == 0 or type(c[1]) ~= 'table' then
  redis.call('XACK', stream, GROUP, eid)
  return reply({'gone'})
end
redis.call('HDEL', skey, 'rt')
local out = {'next', ver}
local dc = delivery_ctx(pp, meta, stream, consumer, now, ARGV[5], m[3], m[4])
if not deliver(dc, eid, tid, out) then return reply({'gone'}) end
if spend then spend_tokens(dc, tok, 1) end
flush_meta(dc)
return reply(out)
