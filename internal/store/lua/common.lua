-- common.lua: helpers prepended to every script when it is loaded. Nothing
-- here runs on its own. Key names are built the way keys.go builds them:
-- pp is a partition's prefix "<prefix>{pNNN}:"; fields.go lists every hash
-- field these scripts read or write.
--
-- Every script answers {ready mark, timer mark, dead mark, schedule mark,
-- body}: a mark is the earliest time (ms) the script added to, or moved
-- earlier in, the partition's ready, timer, dead-letter or schedule index
-- (0: none). The caller lowers
-- the partition's entry in the matching global due index to it (keys.go:
-- DueIndex), which is how pollers find the partitions that need a look
-- without reading all of them.
--
-- Times and durations that are only written, not computed with, are passed
-- as the caller's strings (nowS, keepS): Lua turns a number argument of
-- redis.call into text with printf, which costs more on the hot path than
-- the command itself.

local GROUP = 'htq'
-- The ready-index score of a paused queue that has work: never claimable,
-- but still listed (backlog metrics read the ready index).
local PARKED = 4503599627370496 -- 2^52
local marks = {0, 0, 0, 0}

local function mark(i, t)
  t = tonumber(t)
  if t and (marks[i] == 0 or t < marks[i]) then marks[i] = t end
end
local function mark_ready(t) mark(1, t) end
local function mark_timer(t) mark(2, t) end
local function mark_dead(t) mark(3, t) end
local function mark_sched(t) mark(4, t) end

-- reply wraps a script's answer with its marks.
local function reply(body) return {marks[1], marks[2], marks[3], marks[4], body} end

local function spec_key(pp, id) return pp .. 't:' .. id end
local function state_key(pp, id) return pp .. 'u:' .. id end
local function hint_channel(pp) return pp .. 'hint' end

-- event announces a task event on the partition's event channel (see
-- events.go): one SPUBLISH, which costs a dictionary lookup when nobody
-- listens. The payload is "<type>\n<ids>\n<ms>\n<attempt>\n<status>\n<queue>",
-- ids comma-separated (several for one enqueue), the queue last (names
-- hold no control characters, but may hold anything else). EVENTS is set
-- before this file: false in the quiet variant the store runs while no
-- event stream is open (listeners.go).
local function event(pp, typ, ids, q, nowS, a, sc)
  if not EVENTS then return end
  redis.call('SPUBLISH', pp .. 'ev', typ .. '\n' .. ids .. '\n' .. nowS .. '\n' .. (a or '') .. '\n' .. (sc or '') .. '\n' .. q)
end

-- idem_key is the key that remembers the task an idempotency key created in
-- queue q (created: the queue's creation time, so a re-created queue starts
-- afresh).
local function idem_key(pp, created, q, key)
  return pp .. 'i:' .. redis.sha1hex(created .. '\0' .. q .. '\0' .. key)
end

-- new_task stores a new task's spec under a fresh id of the partition and
-- returns the id.
local function new_task(pp, counter, parthex, q, payload)
  local id
  local spec = q .. '\n' .. payload
  -- SET NX both stores the spec and refuses an id in use (a counter
  -- rewound by a failover or an AOF loss): one command, not EXISTS + SET
  repeat
    id = parthex .. string.format('%012x', redis.call('INCR', counter))
  until redis.call('SET', spec_key(pp, id), spec, 'NX')
  return id
end

-- spec_timeout returns the task's own timeout (ms) from its stored spec, or
-- nil. The spec is "<queue>\n<json>"; inside the JSON every string is
-- escaped, so an unescaped '"o":' can only be the top-level key.
local function spec_timeout(spec)
  local nl = string.find(spec, '\n', 1, true) or 0
  local o = tonumber(string.match(spec, '[{,]"o":(%d+)', nl + 1))
  if o and o > 0 then return o end
  return nil
end

-- spec_start_k returns a variable task's call count at creation from its
-- spec ('"vk":'), or nil; read only until its state has a k of its own.
local function spec_start_k(spec)
  local nl = string.find(spec, '\n', 1, true) or 0
  return string.match(spec, '[{,]"vk":(%d+)', nl + 1)
end

-- fenced reports whether owner (the fencing token "<consumer>:<epoch>")
-- still holds the lease. A lease that expired while nobody claimed the queue
-- (the meta still names us as its owner) is taken back, so a slow but sole
-- owner is not thrown out. The token holds the consumer name, unique to one
-- dispatcher run, so a rewound epoch counter (a failover, an AOF loss) can
-- never make two owners' tokens equal; a release removes the meta's token,
-- so nothing sent after it can bring the lease back.
local function fenced(meta, lease, owner, ttl)
  local v = redis.call('GET', lease)
  if v == owner then return true end
  if v == false and redis.call('HGET', meta, 'tok') == owner then
    redis.call('SET', lease, owner, 'PX', ttl)
    return true
  end
  return false
end

-- with_history returns a task's history h (lines of JSON, or false) with
-- one more attempt record, keeping the newest maxn; nil when unchanged.
local function with_history(h, rec, maxn)
  if rec == '' or maxn <= 0 then return nil end
  if h then h = h .. '\n' .. rec else h = rec end
  local n = 1
  for _ in string.gmatch(h, '\n') do n = n + 1 end
  while n > maxn do
    h = string.sub(h, string.find(h, '\n', 1, true) + 1)
    n = n - 1
  end
  return h
end

-- finish ends a task in state st; its spec and state expire after keepS ms
-- (0 deletes them at once). extra holds more field/value pairs to set;
-- stale says whether rt, cx or dl may be set (they are removed then).
local function finish(pp, id, st, nowS, keepS, extra, stale)
  local skey, tkey = state_key(pp, id), spec_key(pp, id)
  if (tonumber(keepS) or 0) <= 0 then
    redis.call('DEL', skey, tkey)
    return
  end
  redis.call('HSET', skey, 'st', st, 'ts', nowS, 'fin', nowS, unpack(extra or {}))
  if stale ~= false then redis.call('HDEL', skey, 'rt', 'cx', 'dl') end
  redis.call('PEXPIRE', skey, keepS)
  redis.call('PEXPIRE', tkey, keepS)
end

-- schedule puts a task in its queue's delayed set and keeps the partition's
-- timer index right; it announces the due time when it is the partition's
-- earliest, so the scheduler can wake for it.
local function schedule(delayed, timers, q, id, due, hintch, part)
  redis.call('ZADD', delayed, due, id)
  local first = redis.call('ZRANGE', timers, 0, 0, 'WITHSCORES')
  redis.call('ZADD', timers, 'LT', due, q)
  if #first == 0 or due < tonumber(first[2]) then
    mark_timer(due)
    if hintch ~= '' then redis.call('PUBLISH', hintch, part .. ':' .. due) end
  end
end

-- promote_due moves a queue's delayed tasks due by now (at most limit) into
-- its stream, in due order, each move gated by its ZREM; the due time of
-- each task moved is appended to dues when given. Returns the number moved.
local function promote_due(pp, delayed, stream, now, limit, dues)
  local due = redis.call('ZRANGEBYSCORE', delayed, '-inf', now, 'WITHSCORES', 'LIMIT', 0, limit)
  local moved = 0
  for i = 1, #due, 2 do
    local id = due[i]
    if redis.call('ZREM', delayed, id) == 1 then
      redis.call('XADD', stream, '*', 't', id)
      local skey = state_key(pp, id)
      if redis.call('EXISTS', skey) == 1 then
        redis.call('HSET', skey, 'st', 'queued', 'ts', now)
        redis.call('HDEL', skey, 'rt')
      end
      moved = moved + 1
      if dues then dues[#dues + 1] = due[i + 1] end
    end
  end
  return moved
end

-- fix_timer sets a queue's entry in the timer index to its earliest due
-- time, or removes it when nothing is delayed.
local function fix_timer(delayed, timers, q)
  local first = redis.call('ZRANGE', delayed, 0, 0, 'WITHSCORES')
  if #first == 0 then
    redis.call('ZREM', timers, q)
  else
    redis.call('ZADD', timers, first[2], q)
  end
end

-- HINT_GRACE (ms, store.HintGrace): how long the pollers leave alone a
-- queue whose wake-up hint reached a dispatcher. That dispatcher claims it
-- at once (or, unable to, gives it back to the pollers: lua/unhint.lua), so
-- the due index is only the safety net for a hint lost after it was sent;
-- looking at the partition at once would cost every wake-up a settle.
local HINT_GRACE = 2000

-- hint tells the partition's dispatcher that queue q got work, and returns
-- when the pollers should look at q: now when no dispatcher heard the hint,
-- else now + HINT_GRACE.
local function hint(pp, q, now)
  if redis.call('SPUBLISH', hint_channel(pp), q) > 0 then return now + HINT_GRACE end
  return now
end

-- make_ready puts a queue in its partition's ready index at time t (or
-- moves it there); when t is now it tells the dispatchers (and the entry's
-- time is what hint returns).
local function make_ready(pp, ready, q, t, now)
  if t <= now then t = hint(pp, q, now) end
  redis.call('ZADD', ready, t, q)
  mark_ready(t)
end

-- tokens returns how many of want calls the queue's rate limit lets start
-- now, or 0 and the time the next token arrives. It only reads the bucket
-- (b: the meta's rate, burst, tbt, tbts, or nil to read them); spend_tokens
-- takes what was used.
local function tokens(meta, now, want, b)
  b = b or redis.call('HMGET', meta, 'rate', 'burst', 'tbt', 'tbts')
  local rate = tonumber(b[1]) or 0
  if rate <= 0 then return want, 0, nil end
  local burst = tonumber(b[2]) or 1
  local tok = tonumber(b[3]) or burst
  local ts = tonumber(b[4]) or now
  if now > ts then tok = tok + (now - ts) * rate / 1000 end
  tok = math.min(burst, tok)
  local n = math.min(want, math.floor(tok))
  if n < 1 then return 0, now + math.ceil((1 - tok) * 1000 / rate), tok end
  return n, 0, tok
end

-- delivery_ctx gathers what delivering entries of one queue needs: the
-- queue's current timeout (tmo, ms) and the last sequence number handed out
-- (seq), both read from the meta by the caller. The meta fields a delivery
-- changes are gathered in it and written once, by flush_meta.
local function delivery_ctx(pp, meta, stream, consumer, now, nowS, tmo, seq)
  return {pp = pp, meta = meta, stream = stream, consumer = consumer, now = now, nowS = nowS,
    tmo = tonumber(tmo) or 30000, seq = tonumber(seq) or 0, mf = {}}
end

-- flush_meta writes the meta fields gathered in c, and the pairs in extra,
-- in one HSET.
local function flush_meta(c, extra)
  local f = c.mf
  if c.seqS then f[#f + 1], f[#f + 2] = 'seq', c.seqS end
  for _, v in ipairs(extra or {}) do f[#f + 1] = v end
  if #f > 0 then redis.call('HSET', c.meta, unpack(f)) end
  c.mf, c.seqS = {}, nil
end

-- spend_tokens takes the rate tokens used from the bucket (written by
-- flush_meta).
local function spend_tokens(c, tok, used)
  if tok == nil then return end
  local f = c.mf
  f[#f + 1], f[#f + 2], f[#f + 3], f[#f + 4] = 'tbt', tok - used, 'tbts', c.now
end

-- next_seq returns the queue's next sequence number, as text: above the
-- last one and never below now * 1000, so that it keeps rising across a
-- queue's deletion and re-creation and across a failover that lost the last
-- writes (see docs/api.md, "What a target may assume").
local function next_seq(c)
  local seq = c.seq + 1
  local floor = c.now * 1000
  if seq < floor then seq = floor end
  c.seq = seq
  c.seqS = string.format('%.0f', seq)
  return c.seqS
end

-- deliver hands one stream entry to the caller: it gives it the queue's
-- next sequence number, bumps the task's attempt count, marks the task
-- active and stamps in its state the deadline of the call it is handed out
-- for ('dl': now + the timeout in force, which the caller must use), so that
-- a later owner waits for that call even if the queue's timeout is lowered
-- meanwhile. A task that was cancelled, or whose spec is gone, is
-- acknowledged and skipped; so is one cancelled while it was active (a dead
-- owner's call, recovered now), which is finished as cancelled: it is not
-- called again.
-- On success it appends eid, tid, spec, seq, attempt, k, since, timeout to
-- out, where since is when the task became due again (0: use its spec's
-- times).
local function deliver(c, eid, tid, out)
  local pp = c.pp
  local spec = redis.call('GET', spec_key(pp, tid))
  local skey = state_key(pp, tid)
  local st = redis.call('HMGET', skey, 'st', 'k', 'ts', 'rt', 'cx', 'keep', 'a')
  if spec == false or st[1] == 'cancelled' or st[5] == '1' then
    redis.call('XACK', c.stream, GROUP, eid)
    redis.call('XDEL', c.stream, eid)
    if spec and st[5] == '1' and st[1] ~= 'cancelled' then
      finish(pp, tid, 'cancelled', c.nowS, st[6] or '0')
    elseif spec then
      redis.call('HDEL', skey, 'ce')
    end
    return false
  end
  local seq = next_seq(c)
  local a = (tonumber(st[7]) or 0) + 1
  local tmo = spec_timeout(spec) or c.tmo
  redis.call('HSET', skey, 'st', 'active', 'ts', c.nowS, 'dl', c.now + tmo, 'a', a)
  event(pp, 'started', tid, string.sub(c.meta, #pp + 3), c.nowS, a)
  local since = 0
  if st[1] == 'queued' then since = st[3] elseif st[1] == 'retrying' then since = st[4] end
  local n = #out
  out[n + 1], out[n + 2], out[n + 3], out[n + 4] = eid, tid, spec, seq
  out[n + 5], out[n + 6], out[n + 7], out[n + 8] = a, st[2] or spec_start_k(spec) or '0', since or 0, tmo
  return true
end

-- read_new delivers up to want entries that no consumer has read yet.
local function read_new(c, want, out)
  local got = 0
  while got < want do
    local r = redis.call('XREADGROUP', 'GROUP', GROUP, c.consumer, 'COUNT', want - got, 'STREAMS', c.stream, '>')
    if not r or #r[1][2] == 0 then break end
    for _, e in ipairs(r[1][2]) do
      if deliver(c, e[1], e[2][2], out) then got = got + 1 end
    end
  end
  return got
end

-- redeliver delivers up to want of the entries a claim took over from a
-- previous owner (ids, space-separated, in order) and keeps the rest aside,
-- in order, in the meta's 'recov' until there are rate tokens for them.
local function redeliver(c, ids, want, out)
  local got, rest = 0, {}
  for id in string.gmatch(ids, '%S+') do
    if got >= want then
      rest[#rest + 1] = id
    else
      local r = redis.call('XCLAIM', c.stream, GROUP, c.consumer, 0, id)
      if #r > 0 and type(r[1]) == 'table' and deliver(c, id, r[1][2][2], out) then
        got = got + 1
      end
    end
  end
  if #rest > 0 then
    redis.call('HSET', c.meta, 'recov', table.concat(rest, ' '))
  else
    redis.call('HDEL', c.meta, 'recov')
  end
  return got
end

-- pending_count is the number of entries delivered and not yet acknowledged.
local function pending_count(stream)
  return redis.call('XPENDING', stream, GROUP)[1]
end

-- drop_lease ends an ownership: the lease and the meta's token go (so no
-- late write of the owner can bring the lease back), and so do the owner's
-- consumer in the stream's group and the meta's 'cons' when it holds no
-- entry (a consumer is unique to one dispatcher run: left behind, they
-- would pile up). Only the last claimer can hold entries (a claim takes
-- over all that are pending), so without 'cons' none is pending and the
-- next claim need not look for them.
local function drop_lease(meta, stream, lease, consumer, pend)
  redis.call('DEL', lease)
  if pend == 0 then
    redis.call('HDEL', meta, 'tok', 'want', 'cons')
    redis.call('XGROUP', 'DELCONSUMER', stream, GROUP, consumer)
  else
    redis.call('HDEL', meta, 'tok', 'want')
  end
end

-- release_if_idle drops the lease when the owner has no entry left in hand,
-- and puts the queue back in the ready index (announced) if unread work
-- remains. drained says the caller just read the stream and found nothing
-- new (so nothing remains when nothing is pending).
local function release_if_idle(c, lease, ready, q, paused, drained)
  if pending_count(c.stream) > 0 then return false end
  drop_lease(c.meta, c.stream, lease, c.consumer, 0)
  if drained or redis.call('XLEN', c.stream) == 0 then
    redis.call('ZREM', ready, q)
  elseif paused == '1' then
    redis.call('ZADD', ready, PARKED, q)
  else
    make_ready(c.pp, ready, q, c.now, c.now)
  end
  return true
end

-- announce puts a queue that got work in the ready index and tells the
-- dispatchers, unless it is owned or paused. An owner that said it has room
-- for more while its calls run (meta 'want': its wake-up channel) is told
-- instead, once. m holds the meta's paused and want, when the caller has
-- read them.
local function announce(pp, meta, lease, ready, q, now, m)
  m = m or redis.call('HMGET', meta, 'paused', 'want')
  if redis.call('EXISTS', lease) == 1 then
    if m[2] then
      redis.call('HDEL', meta, 'want')
      redis.call('PUBLISH', m[2], q)
    end
    return
  end
  if m[1] == '1' then
    redis.call('ZADD', ready, 'NX', PARKED, q)
    return
  end
  -- listed as if a dispatcher hears the hint; listed at once if none did
  if redis.call('ZADD', ready, 'NX', now + HINT_GRACE, q) == 1 then
    local t = hint(pp, q, now)
    if t == now then redis.call('ZADD', ready, now, q) end
    mark_ready(t)
  end
end

-- want_more records in the meta whether the owner has room for more work
-- while its calls run (room), as its wake-up channel wantch, so that the
-- next enqueue tells it; cur is the meta's current 'want'.
local function want_more(meta, cur, wantch, room)
  if room and wantch ~= '' then
    if cur ~= wantch then redis.call('HSET', meta, 'want', wantch) end
  elseif cur then
    redis.call('HDEL', meta, 'want')
  end
end

-- more delivers up to want further entries to the owner, or says why not:
-- {'next', ver, ...entries}, {'ratewait', ver, until}, {'released', ver}
-- (nothing left: the lease was dropped) or {'idle', ver} (calls in flight).
-- wantch, when not empty, is the owner's wake-up channel: on 'idle' it is
-- written to the meta, so that the next enqueue tells the owner.
local function more(pp, meta, stream, lease, ready, q, consumer, now, want, nowS, wantch)
  local m = redis.call('HMGET', meta, 'ver', 'paused', 'rate', 'burst', 'tbt', 'tbts', 'recov', 'tmo', 'seq', 'want')
  local ver = m[1] or '0'
  local c = delivery_ctx(pp, meta, stream, consumer, now, nowS, m[8], m[9])
  local out = {'next', ver}
  local drained = false
  if want > 0 and m[2] ~= '1' then
    local room, untilms, tok = tokens(meta, now, want, {m[3], m[4], m[5], m[6]})
    if room > 0 then
      local got = 0
      if m[7] then got = redeliver(c, m[7], room, out) end
      if got < room then got = got + read_new(c, room - got, out) end
      spend_tokens(c, tok, got)
      flush_meta(c)
      if got > 0 then
        want_more(meta, m[10], wantch, got < want)
        return out
      end
      drained = true
    elseif m[7] or redis.call('XLEN', stream) > pending_count(stream) then
      return {'ratewait', ver, untilms}
    end
  end
  if release_if_idle(c, lease, ready, q, m[2], drained) then return {'released', ver} end
  want_more(meta, m[10], wantch, want > 0 and m[2] ~= '1')
  return {'idle', ver}
end

-- create_queue writes what every new queue has: its name and creation time,
-- its stream and consumer group, its place in the partition's registry, and
-- the sequence its name reached before, if a queue of that name was deleted
-- (so X-HTQ-Sequence keeps rising across a delete and re-create).
local function create_queue(pp, meta, stream, registry, q, nowS)
  redis.call('HSET', meta, 'name', q, 'created', nowS)
  local seqs = pp .. 'seqs'
  local s = redis.call('HGET', seqs, q)
  if s then
    redis.call('HSET', meta, 'seq', s)
    redis.call('HDEL', seqs, q)
  end
  redis.call('DEL', stream)
  redis.call('XGROUP', 'CREATE', stream, GROUP, '0', 'MKSTREAM')
  redis.call('SADD', registry, q)
end
