-- complete.lua: record the end of one call and deliver the queue's next
-- entries in the same round trip (the hot path: one script per task, kept
-- to about a dozen commands). It extends the lease when asked, so a busy
-- owner needs no separate renewals.
--
-- KEYS[1] meta  KEYS[2] stream  KEYS[3] lease  KEYS[4] ready
-- KEYS[5] delayed  KEYS[6] timers  KEYS[7] dead
-- ARGV[1] partition prefix  ARGV[2] queue  ARGV[3] consumer  ARGV[4] fencing token
-- ARGV[5] now (ms)  ARGV[6] lease ttl (ms)  ARGV[7] entry id  ARGV[8] task id
-- ARGV[9] outcome:
--   succeeded  the task is done; ARGV[10] = retention (ms)
--   dead       attempts exhausted or permanent failure; ARGV[10] = retention (ms)
--   again      a variable task's next call; ARGV[10] = due (ms), ARGV[11] = its new k
--   retry      relaxed ordering: step aside until ARGV[10] (due ms)
--   hold       strict ordering: keep the entry at the head, retry at ARGV[10]
--   cancelled  the task was cancelled; ARGV[10] = retention (ms)
-- ARGV[11] k ('' keeps it)  ARGV[12] attempt record (a JSON line, '' none)
-- ARGV[13] history length  ARGV[14] entries wanted
-- ARGV[15] schedule hint channel  ARGV[16] partition number
-- ARGV[17] last status code  ARGV[18] last error
-- ARGV[19] '1' to extend the lease (the caller does it every third of it)
-- ARGV[20] the owner's wake-up channel ('' none): see more() in common.lua
-- A task whose cancellation was requested while it ran is not called again:
-- again, retry and hold become cancelled.
-- Returns {'stale'} when the caller no longer owns the queue (nothing was
-- written), else {status, cfg version, ...} with status
--   'next'      followed by eid, tid, spec, seq, attempt, k, since, timeout for each delivered entry
--   'held'      the entry stays pending (outcome hold)
--   'idle'      nothing to deliver, other calls still in flight
--   'released'  nothing left: the lease was dropped
--   'ratewait'  followed by the time the rate limit lets the next call start
local meta, stream, lease, ready, delayed, timers, dead =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7]
local pp, q, consumer, token = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local now, ttl, eid, tid = tonumber(ARGV[5]), tonumber(ARGV[6]), ARGV[7], ARGV[8]
local outcome, when, k = ARGV[9], tonumber(ARGV[10]), ARGV[11]
local nowS, whenS = ARGV[5], ARGV[10]
local want = tonumber(ARGV[14])

if not fenced(meta, lease, token, ttl) then return reply({'stale'}) end
if ARGV[19] == '1' then
  redis.call('PEXPIRE', lease, ttl)
  redis.call('ZADD', ready, 'XX', now + ttl, q)
end

local skey = state_key(pp, tid)
local s = redis.call('HMGET', skey, 'cx', 'h', 'rt', 'keep', 'a')
if s[1] == '1' and outcome ~= 'succeeded' and outcome ~= 'dead' then
  outcome = 'cancelled'
  whenS = s[4] or '0'
  when = tonumber(whenS) or 0
end
local fields = {}
local h = with_history(s[2], ARGV[12], tonumber(ARGV[13]))
if h then fields[#fields + 1], fields[#fields + 2] = 'h', h end
if ARGV[17] ~= '' then
  local n = #fields
  fields[n + 1], fields[n + 2], fields[n + 3], fields[n + 4] = 'sc', ARGV[17], 'err', ARGV[18]
end

if outcome == 'hold' then
  -- A repeated call (the caller lost the first reply) finds nothing to do
  -- differently: the entry stays pending either way.
  redis.call('HSET', skey, 'st', 'retrying', 'rt', whenS, 'ts', nowS, unpack(fields))
  event(pp, 'failed', tid, q, nowS, s[5], ARGV[17])
  return reply({'held', redis.call('HGET', meta, 'ver') or '0'})
end

-- Acknowledge first: a repeated call (the caller lost the first reply)
-- finds the entry no longer pending, records nothing twice and only
-- delivers what is next.
if redis.call('XACK', stream, GROUP, eid) == 0 then
  return reply(more(pp, meta, stream, lease, ready, q, consumer, now, want, nowS, ARGV[20]))
end
redis.call('XDEL', stream, eid)
if outcome == 'succeeded' or outcome == 'again' then
  event(pp, 'succeeded', tid, q, nowS, s[5], ARGV[17])
elseif outcome ~= 'cancelled' then
  event(pp, outcome == 'dead' and 'dead' or 'failed', tid, q, nowS, s[5], ARGV[17])
end
if outcome == 'succeeded' or outcome == 'cancelled' or outcome == 'dead' then
  finish(pp, tid, outcome, nowS, whenS, fields, s[1] ~= false or s[3] ~= false)
  if outcome == 'dead' and when > 0 then
    redis.call('ZADD', dead, now, tid)
    redis.call('ZREMRANGEBYSCORE', dead, '-inf', now - when)
    -- the janitor trims the dead letters once they pass their retention
    redis.call('ZADD', pp .. 'deadq', 'LT', now + when, q)
    mark_dead(now + when)
  end
else
  local n = #fields
  if outcome == 'again' then
    fields[n + 1], fields[n + 2] = 'a', 0
    n = n + 2
  end
  if k ~= '' then fields[n + 1], fields[n + 2] = 'k', k end
  if when <= now then
    redis.call('XADD', stream, '*', 't', tid)
    redis.call('HSET', skey, 'st', 'queued', 'ts', nowS, unpack(fields))
  else
    schedule(delayed, timers, q, tid, when, ARGV[15], ARGV[16])
    local st = 'retrying'
    if outcome == 'again' then st = 'scheduled' end
    redis.call('HSET', skey, 'st', st, 'rt', whenS, 'ts', nowS, unpack(fields))
  end
end
return reply(more(pp, meta, stream, lease, ready, q, consumer, now, want, nowS, ARGV[20]))
