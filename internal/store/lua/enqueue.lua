-- enqueue.lua: add one or more tasks to a queue, all or nothing. A task due
-- now is appended to the queue's stream at once (the fast path: it never
-- waits for the scheduler), behind the queue's delayed tasks already due
-- (promoted here first); a later one goes to the queue's delayed set.
--
-- KEYS[1] meta      KEYS[2] stream    KEYS[3] delayed   KEYS[4] timers
-- KEYS[5] ready     KEYS[6] registry  KEYS[7] task-id counter  KEYS[8] lease
-- ARGV[1] partition prefix  ARGV[2] queue  ARGV[3] now (ms)
-- ARGV[4] partition number as two hex digits (task-id prefix)
-- ARGV[5] partition number  ARGV[6] schedule hint channel
-- ARGV[7] idempotency window (ms)
-- ARGV[8] number of meta field/value pairs that create a missing queue (0: the queue must exist)
-- ARGV[9..] those pairs, then the task count n, then per task:
--   due (ms, 0 = now), spec JSON (without the queue line), idempotency key ('' = none)
-- Returns {'ok', queue type, young, id1, existed1, id2, existed2, ...},
-- where young is the queue's creation time (ms) when this call created it
-- or it was created less than YOUNG_MS ago, else 0 (the caller then adds
-- its name to the names index, once per queue and process: the
-- creator does so only after its own script, so a caller that enqueues into
-- a queue created a moment ago by another request would otherwise return
-- before the queue is listed), existed is 1 when
-- an idempotency key returned an earlier task, or {'noqueue'}, or
-- {'full', backlog, max_backlog, tasks that would have been added}.
local meta, stream, delayed, timers, ready, registry, counter, lease =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8]
local pp, q, now, parthex = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4]
local part, shint, idemttl = ARGV[5], ARGV[6], tonumber(ARGV[7])
local ncreate = tonumber(ARGV[8])
local base = 9 + 2 * ncreate
local n = tonumber(ARGV[base])

local YOUNG_MS = 5000

local m = redis.call('HMGET', meta, 'created', 'maxbl', 'type', 'paused', 'want')
local created, young = m[1], 0
if created then
  if now - tonumber(created) < YOUNG_MS then young = tonumber(created) end
else
  if ncreate == 0 then return reply({'noqueue'}) end
  for i = 9, base - 1, 2 do redis.call('HSET', meta, ARGV[i], ARGV[i + 1]) end
  created = ARGV[3]
  create_queue(pp, meta, stream, registry, q, created)
  redis.call('HSET', meta, 'ver', 1)
  m[2] = redis.call('HGET', meta, 'maxbl')
  m[3] = redis.call('HGET', meta, 'type')
  young = now
end

-- Resolve idempotency keys first, so that a repeat does not count against the
-- backlog and the batch stays all-or-nothing.
local idem, fresh, counted = {}, 0, {}
for i = 1, n do
  local key = ARGV[base + 3 * i]
  if key ~= '' then
    local ik = idem_key(pp, created, q, key)
    idem[i] = {ik, redis.call('GET', ik)}
    if not idem[i][2] and not counted[ik] then
      fresh = fresh + 1
      counted[ik] = true
    end
  else
    fresh = fresh + 1
  end
end
local maxbl = tonumber(m[2]) or 0
local ndelayed = nil -- the queue's delayed tasks, when counted
if maxbl > 0 then
  ndelayed = redis.call('ZCARD', delayed)
  local backlog = redis.call('XLEN', stream) + ndelayed
  if backlog + fresh > maxbl then return reply({'full', backlog, maxbl, fresh}) end
end

local out = {'ok', m[3] or 'realtime', young}
local created = {}
local seen = {}
local now_added, first_due = false, nil
-- A task due now goes behind the queue's tasks that fell due earlier but
-- wait for a scheduler (one may be down): those are promoted here first, up
-- to PROMOTE_INLINE of them; when more are due, the task joins them in the
-- delayed set at now, behind them, for the scheduler.
local PROMOTE_INLINE = 100
local behind = nil -- nil: not looked yet; true: due tasks remain delayed
local function due_now()
  if behind == nil and ndelayed == 0 then
    behind = false -- nothing delayed was due (tasks delayed by this call are later)
  elseif behind == nil then
    local moved = promote_due(pp, delayed, stream, now, PROMOTE_INLINE)
    if moved > 0 then
      now_added = true
      fix_timer(delayed, timers, q)
    end
    -- Fewer than the limit moved: every due one did (the script runs
    -- alone). Only a full batch needs a second look.
    behind = moved == PROMOTE_INLINE and
      #redis.call('ZRANGEBYSCORE', delayed, '-inf', now, 'LIMIT', 0, 1) > 0
  end
  return not behind
end
for i = 1, n do
  local due = tonumber(ARGV[base + 3 * i - 2])
  local payload = ARGV[base + 3 * i - 1]
  local id = idem[i] and (idem[i][2] or seen[idem[i][1]])
  if id then
    out[#out + 1] = id
    out[#out + 1] = 1
  else
    id = new_task(pp, counter, parthex, q, payload)
    created[#created + 1] = id
    if due <= now and due_now() then
      redis.call('XADD', stream, '*', 't', id)
      now_added = true
    else
      if due <= now then due = now end
      redis.call('ZADD', delayed, due, id)
      if not first_due or due < first_due then first_due = due end
    end
    if idem[i] then
      redis.call('SET', idem[i][1], id, 'PX', idemttl)
      seen[idem[i][1]] = id
    end
    out[#out + 1] = id
    out[#out + 1] = 0
  end
end

if first_due then
  local first = redis.call('ZRANGE', timers, 0, 0, 'WITHSCORES')
  redis.call('ZADD', timers, 'LT', first_due, q)
  if #first == 0 or first_due < tonumber(first[2]) then
    mark_timer(first_due)
    redis.call('PUBLISH', shint, part .. ':' .. first_due)
  end
end
if now_added then announce(pp, meta, lease, ready, q, now, {m[4], m[5]}) end
if #created > 0 then event(pp, 'created', table.concat(created, ','), q, ARGV[3]) end
return reply(out)
