-- complete.lua: record the end of one call and deliver the queue's next
-- entries in the same round trip (the hot path: one script per task). It
-- also extends the lease, so a busy owner needs no separate renewals.
--
-- KEYS[1] meta  KEYS[2] stream  KEYS[3] lease  KEYS[4] ready
-- KEYS[5] delayed  KEYS[6] timers  KEYS[7] dead
-- ARGV[1] partition prefix  ARGV[2] queue  ARGV[3] consumer  ARGV[4] epoch
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
-- A task whose cancellation was requested while it ran is not called again:
-- again, retry and hold become cancelled.
-- Returns {'stale'} when the caller no longer owns the queue (nothing was
-- written), else {status, cfg version, ...} with status
--   'next'      followed by eid, tid, spec, seq, attempt, k, since for each delivered entry
--   'held'      the entry stays pending (outcome hold)
--   'idle'      nothing to deliver, other calls still in flight
--   'released'  nothing left: the lease was dropped
--   'ratewait'  followed by the time the rate limit lets the next call start
local meta, stream, lease, ready, delayed, timers, dead =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7]
local pp, q, consumer, epoch = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local now, ttl, eid, tid = tonumber(ARGV[5]), tonumber(ARGV[6]), ARGV[7], ARGV[8]
local outcome, when, k = ARGV[9], tonumber(ARGV[10]), ARGV[11]
local want = tonumber(ARGV[14])

if not fenced(meta, lease, consumer .. ':' .. epoch, epoch, ttl) then return {'stale'} end
redis.call('PEXPIRE', lease, ttl)
redis.call('ZADD', ready, 'XX', now + ttl, q)

-- A repeated call (the caller lost the first reply) finds the entry no
-- longer pending: it records nothing again and only delivers what is next.
local pend = redis.call('XPENDING', stream, GROUP, eid, eid, 1)
if #pend == 0 then return more(pp, meta, stream, lease, ready, q, consumer, now, want) end

local skey = state_key(pp, tid)
if outcome ~= 'succeeded' and outcome ~= 'dead' and redis.call('HGET', skey, 'cx') == '1' then
  outcome = 'cancelled'
  when = tonumber(redis.call('HGET', skey, 'keep')) or 0
end
add_history(skey, ARGV[12], tonumber(ARGV[13]))
if ARGV[17] ~= '' then redis.call('HSET', skey, 'sc', ARGV[17], 'err', ARGV[18]) end

if outcome == 'hold' then
  redis.call('HSET', skey, 'st', 'retrying', 'rt', when, 'ts', now)
  return {'held', redis.call('HGET', meta, 'ver') or '0'}
end

redis.call('XACK', stream, GROUP, eid)
redis.call('XDEL', stream, eid)
if outcome == 'succeeded' or outcome == 'cancelled' then
  finish(pp, tid, outcome, now, when)
elseif outcome == 'dead' then
  finish(pp, tid, 'dead', now, when)
  if when > 0 then
    redis.call('ZADD', dead, now, tid)
    redis.call('ZREMRANGEBYSCORE', dead, '-inf', now - when)
  end
else
  local st = 'scheduled'
  if outcome == 'again' then
    redis.call('HSET', skey, 'a', 0)
  else
    st = 'retrying'
  end
  if k ~= '' then redis.call('HSET', skey, 'k', k) end
  if when <= now then
    redis.call('XADD', stream, '*', 't', tid)
    redis.call('HSET', skey, 'st', 'queued', 'ts', now)
  else
    schedule(delayed, timers, q, tid, when, ARGV[15], ARGV[16])
    redis.call('HSET', skey, 'st', st, 'rt', when, 'ts', now)
  end
end

return more(pp, meta, stream, lease, ready, q, consumer, now, want)
