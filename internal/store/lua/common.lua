-- common.lua: helpers prepended to every script when it is loaded. Nothing
-- here runs on its own. Key names are built the way keys.go builds them:
-- pp is a partition's prefix "<prefix>{pNNN}:".
--
-- Times and durations that are only written, not computed with, are passed
-- as the caller's strings (nowS, keepS): Lua turns a number argument of
-- redis.call into text with printf, which costs more on the hot path than
-- the command itself.

local GROUP = 'htq'

local function spec_key(pp, id) return pp .. 't:' .. id end
local function state_key(pp, id) return pp .. 'u:' .. id end

-- fenced reports whether owner ("<consumer>:<epoch>") still holds the lease.
-- A lease that expired while nobody claimed the queue (the meta epoch is
-- still ours) is taken back, so a slow but sole owner is not thrown out.
local function fenced(meta, lease, owner, epoch, ttl)
  local v = redis.call('GET', lease)
  if v == owner then return true end
  if v == false and redis.call('HGET', meta, 'epoch') == epoch then
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
-- stale says whether rt or cx may be set (they are removed then).
local function finish(pp, id, st, nowS, keepS, extra, stale)
  local skey, tkey = state_key(pp, id), spec_key(pp, id)
  if (tonumber(keepS) or 0) <= 0 then
    redis.call('DEL', skey, tkey)
    return
  end
  redis.call('HSET', skey, 'st', st, 'ts', nowS, 'fin', nowS, unpack(extra or {}))
  if stale ~= false then redis.call('HDEL', skey, 'rt', 'cx') end
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
  if hintch ~= '' and (#first == 0 or due < tonumber(first[2])) then
    redis.call('PUBLISH', hintch, part .. ':' .. due)
  end
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

local function spend_tokens(meta, now, tok, used)
  if tok == nil then return end
  redis.call('HSET', meta, 'tbt', tok - used, 'tbts', now)
end

-- deliver hands one stream entry to the caller: it bumps the queue's
-- sequence and the task's attempt count and marks the task active. A task
-- that was cancelled, or whose spec is gone, is acknowledged and skipped; so
-- is one cancelled while it was active (a dead owner's call, recovered now),
-- which is finished as cancelled: it is not called again.
-- On success it appends eid, tid, spec, seq, attempt, k, since to out,
-- where since is when the task became due again (0: use its spec's times).
local function deliver(pp, meta, stream, eid, tid, nowS, out)
  local spec = redis.call('GET', spec_key(pp, tid))
  local skey = state_key(pp, tid)
  local st = redis.call('HMGET', skey, 'st', 'k', 'ts', 'rt', 'cx', 'keep')
  if spec == false or st[1] == 'cancelled' or st[5] == '1' then
    redis.call('XACK', stream, GROUP, eid)
    redis.call('XDEL', stream, eid)
    if spec and st[5] == '1' and st[1] ~= 'cancelled' then
      finish(pp, tid, 'cancelled', nowS, st[6] or '0')
    elseif spec then
      redis.call('HDEL', skey, 'ce')
    end
    return false
  end
  local seq = redis.call('HINCRBY', meta, 'seq', 1)
  local a = redis.call('HINCRBY', skey, 'a', 1)
  redis.call('HSET', skey, 'st', 'active', 'ts', nowS)
  local since = 0
  if st[1] == 'queued' then since = st[3] elseif st[1] == 'retrying' then since = st[4] end
  local n = #out
  out[n + 1], out[n + 2], out[n + 3] = eid, tid, spec
  out[n + 4], out[n + 5], out[n + 6] = seq, a, st[2] or '0'
  out[n + 7] = since or 0
  return true
end

-- read_new delivers up to want entries that no consumer has read yet.
local function read_new(pp, meta, stream, consumer, want, nowS, out)
  local got = 0
  while got < want do
    local r = redis.call('XREADGROUP', 'GROUP', GROUP, consumer, 'COUNT', want - got, 'STREAMS', stream, '>')
    if not r or #r[1][2] == 0 then break end
    for _, e in ipairs(r[1][2]) do
      if deliver(pp, meta, stream, e[1], e[2][2], nowS, out) then got = got + 1 end
    end
  end
  return got
end

-- redeliver delivers up to want of the entries a claim took over from a
-- previous owner (ids, space-separated, in order) and keeps the rest aside,
-- in order, in the meta's 'recov' until there are rate tokens for them.
local function redeliver(pp, meta, stream, consumer, ids, want, nowS, out)
  local got, rest = 0, {}
  for id in string.gmatch(ids, '%S+') do
    if got >= want then
      rest[#rest + 1] = id
    else
      local c = redis.call('XCLAIM', stream, GROUP, consumer, 0, id)
      if #c > 0 and type(c[1]) == 'table' and deliver(pp, meta, stream, id, c[1][2][2], nowS, out) then
        got = got + 1
      end
    end
  end
  if #rest > 0 then
    redis.call('HSET', meta, 'recov', table.concat(rest, ' '))
  else
    redis.call('HDEL', meta, 'recov')
  end
  return got
end

-- pending_count is the number of entries delivered and not yet acknowledged.
local function pending_count(stream)
  return redis.call('XPENDING', stream, GROUP)[1]
end

-- release_if_idle drops the lease when the owner has no entry left in hand,
-- and puts the queue back in the ready index if unread work remains.
local function release_if_idle(meta, stream, lease, ready, q, now)
  local pend = pending_count(stream)
  if pend > 0 then return false end
  redis.call('DEL', lease)
  if redis.call('XLEN', stream) > 0 and redis.call('HGET', meta, 'paused') ~= '1' then
    redis.call('ZADD', ready, now, q)
  else
    redis.call('ZREM', ready, q)
  end
  return true
end

-- announce puts an idle queue that got work in the ready index and tells the
-- dispatchers, unless it is owned or paused.
local function announce(meta, lease, ready, q, now, hintch, part)
  if redis.call('EXISTS', lease) == 1 or redis.call('HGET', meta, 'paused') == '1' then return end
  if redis.call('ZADD', ready, 'NX', now, q) == 1 and hintch ~= '' then
    redis.call('PUBLISH', hintch, part .. ':' .. q)
  end
end

-- more delivers up to want further entries to the owner, or says why not:
-- {'next', ver, ...entries}, {'ratewait', ver, until}, {'released', ver}
-- (nothing left: the lease was dropped) or {'idle', ver} (calls in flight).
local function more(pp, meta, stream, lease, ready, q, consumer, now, want, nowS)
  local m = redis.call('HMGET', meta, 'ver', 'paused', 'rate', 'burst', 'tbt', 'tbts', 'recov')
  local ver = m[1] or '0'
  local out = {'next', ver}
  if want > 0 and m[2] ~= '1' then
    local room, untilms, tok = tokens(meta, now, want, {m[3], m[4], m[5], m[6]})
    if room > 0 then
      local got = 0
      if m[7] then got = redeliver(pp, meta, stream, consumer, m[7], room, nowS, out) end
      if got < room then got = got + read_new(pp, meta, stream, consumer, room - got, nowS, out) end
      spend_tokens(meta, now, tok, got)
      if got > 0 then return out end
    elseif m[7] or redis.call('XLEN', stream) > pending_count(stream) then
      return {'ratewait', ver, untilms}
    end
  end
  if release_if_idle(meta, stream, lease, ready, q, now) then return {'released', ver} end
  return {'idle', ver}
end
