-- schedule_fire.lua: fire occurrences of one schedule and advance it, in one
-- script, so that each occurrence creates exactly one task whoever fires it:
-- the schedule's version and next instant must still be what the caller
-- read (compare and set: a second leader that read the same state finds it
-- moved and does nothing), and each task is created under the occurrence's
-- idempotency key (idem_key, as enqueue does), so that an occurrence fired
-- again after a change of the schedule returns the task it created before.
-- With overlap 'skip', an occurrence is skipped while the schedule's last
-- task is still waiting or running.
--
-- KEYS[1] schedule hash  KEYS[2] schedule index  KEYS[3] meta  KEYS[4] stream
-- KEYS[5] delayed  KEYS[6] timers  KEYS[7] ready  KEYS[8] task-id counter
-- KEYS[9] lease
-- ARGV[1] partition prefix  ARGV[2] queue  ARGV[3] now (ms)
-- ARGV[4] partition number as two hex digits  ARGV[5] partition number
-- ARGV[6] schedule hint channel  ARGV[7] idempotency window (ms)
-- ARGV[8] name  ARGV[9] expected version ('' = a manual trigger: no compare
-- and set, the next instant is left alone)  ARGV[10] expected next instant
-- ARGV[11] new next instant ('' = the schedule has ended)
-- ARGV[12] overlap ('skip' or 'allow')  ARGV[13] occurrence count n, then
-- per occurrence: instant (ms), due (ms, after now with jitter), spec JSON,
-- idempotency key
-- Returns {'ok', outcome1, id1, ...} with outcome 'fired', 'existed',
-- 'skipped' (id: the task still running), 'full' or 'noqueue' (id ''),
-- or {'stale'} / {'gone'}.
local shash, idx, meta, stream, delayed, timers, ready, counter, lease =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8], KEYS[9]
local pp, q, now, parthex, part, hintch = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4], ARGV[5], ARGV[6]
local idemttl, name, wantver, wantnext, newnext = tonumber(ARGV[7]), ARGV[8], ARGV[9], ARGV[10], ARGV[11]
local overlap, n = ARGV[12], tonumber(ARGV[13])

local h = redis.call('HMGET', shash, 'ver', 'next', 'lt', 'la')
if not h[1] then return reply({'gone'}) end
local trigger = wantver == ''
if not trigger and (h[1] ~= wantver or (h[2] or '') ~= wantnext) then return reply({'stale'}) end

-- waiting reports whether task id still waits or runs.
local function waiting(id)
  if not id or id == '' or redis.call('EXISTS', spec_key(pp, id)) == 0 then return false end
  local st = redis.call('HGET', state_key(pp, id), 'st')
  return st == false or st == 'queued' or st == 'active' or st == 'retrying' or st == 'scheduled'
end

local m = redis.call('HMGET', meta, 'created', 'maxbl', 'paused', 'want')
local out = {'ok'}
local last, lastat = h[3], nil
local now_added = false
for i = 1, n do
  local b = 13 + 4 * (i - 1)
  local at, due, payload, key = ARGV[b + 1], tonumber(ARGV[b + 2]), ARGV[b + 3], ARGV[b + 4]
  if not m[1] then
    out[#out + 1], out[#out + 2] = 'noqueue', ''
  elseif overlap == 'skip' and waiting(last) then
    out[#out + 1], out[#out + 2] = 'skipped', last
  else
    local ik = idem_key(pp, m[1], q, key)
    local id = redis.call('GET', ik)
    if id then
      out[#out + 1], out[#out + 2] = 'existed', id
      last, lastat = id, at
    else
      local maxbl = tonumber(m[2]) or 0
      if maxbl > 0 and redis.call('XLEN', stream) + redis.call('ZCARD', delayed) >= maxbl then
        out[#out + 1], out[#out + 2] = 'full', ''
      else
        id = new_task(pp, counter, parthex, q, payload)
        if due <= now then
          redis.call('XADD', stream, '*', 't', id)
          now_added = true
        else
          schedule(delayed, timers, q, id, due, hintch, part)
        end
        redis.call('SET', ik, id, 'PX', idemttl)
        out[#out + 1], out[#out + 2] = 'fired', id
        last, lastat = id, at
      end
    end
  end
end

if lastat then redis.call('HSET', shash, 'lt', last, 'la', lastat) end
if not trigger then
  if newnext == '' then
    redis.call('HDEL', shash, 'next')
    redis.call('ZREM', idx, name)
  else
    -- later than the entry it replaces: the due index needs no mark
    redis.call('HSET', shash, 'next', newnext)
    redis.call('ZADD', idx, newnext, name)
  end
end
if now_added then announce(pp, meta, lease, ready, q, now, {m[3], m[4]}) end
return reply(out)
