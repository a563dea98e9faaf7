-- claim.lua: take ownership of a queue (its lease, with a new fencing token)
-- and deliver its first entries. Entries a previous owner left pending are
-- recovered with XAUTOCLAIM first, in order; when that owner did not hand
-- them back cleanly, only once none of its calls can still be running: past
-- the later of the deadline stamped when the entry was handed out (state
-- 'dl') and its last delivery plus the timeout in force now, plus the
-- recovery grace.
--
-- KEYS[1] meta  KEYS[2] stream  KEYS[3] lease  KEYS[4] ready  KEYS[5] epoch counter
-- ARGV[1] partition prefix  ARGV[2] queue  ARGV[3] consumer  ARGV[4] now (ms)
-- ARGV[5] lease ttl (ms)  ARGV[6] recovery grace (ms)
-- ARGV[7] entries wanted (0: the queue's concurrency)
-- ARGV[8] the claimer's wake-up channel ('' none): see more() in common.lua
-- A consumer name is unique to one process run, so finding our own lease
-- means an earlier claim of ours ran but its reply was lost: its entries are
-- handed back (none was called) instead of waiting for the lease to expire.
-- Returns one of
--   {'gone'}            no such queue (dropped from the ready index)
--   {'paused'}          the queue is paused (parked in the ready index)
--   {'owned', pttl}     another consumer holds the lease
--   {'wait', until}     a retry backoff, the rate limit or a possibly running call holds the queue
--   {'empty'}           nothing to do (dropped from the ready index)
--   {'ok', token, cfg, ver, eid, tid, spec, seq, attempt, k, since, timeout, eid, ...}
local meta, stream, lease, ready = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local pp, q, consumer = ARGV[1], ARGV[2], ARGV[3]
local now, ttl, grace, want = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])

local m = redis.call('HMGET', meta, 'cfg', 'paused', 'hold', 'epoch', 'clean', 'cons', 'tmo', 'ver', 'conc', 'seq',
  'rate', 'burst', 'tbt', 'tbts', 'recov', 'want')
if not m[1] then
  redis.call('ZREM', ready, q)
  return reply({'gone'})
end
local c = delivery_ctx(pp, meta, stream, consumer, now, ARGV[4], m[7], m[10])
local mine = redis.call('GET', lease)
if mine and string.sub(mine, 1, #consumer + 1) == consumer .. ':' then
  redis.call('PEXPIRE', lease, ttl)
  redis.call('ZADD', ready, now + ttl, q)
  local out = {'ok', mine, m[1], m[8] or '0'}
  -- Hand back what the lost reply delivered (its tokens were spent then);
  -- recovered entries kept aside for tokens stay aside.
  local aside = {}
  for id in string.gmatch(redis.call('HGET', meta, 'recov') or '', '%S+') do aside[id] = true end
  local pend = redis.call('XPENDING', stream, GROUP, '-', '+', 1000)
  local ids = {}
  for _, p in ipairs(pend) do
    if p[2] == consumer and not aside[p[1]] then ids[#ids + 1] = p[1] end
  end
  local got = 0
  if #ids > 0 then
    for _, e in ipairs(redis.call('XCLAIM', stream, GROUP, consumer, 0, unpack(ids))) do
      if type(e) == 'table' and deliver(c, e[1], e[2][2], out) then got = got + 1 end
    end
  end
  flush_meta(c)
  if got == 0 and release_if_idle(c, lease, ready, q, m[2]) then return reply({'empty'}) end
  return reply(out)
end
local pttl = -2
if mine then pttl = redis.call('PTTL', lease) end
if pttl == -1 then
  -- a lease without expiry is never written by HTQ; give it one
  redis.call('PEXPIRE', lease, ttl)
  pttl = ttl
end
if pttl > 0 then
  redis.call('ZADD', ready, now + pttl, q)
  mark_ready(now + pttl)
  return reply({'owned', pttl})
end
if m[2] == '1' then
  if redis.call('XLEN', stream) > 0 then
    redis.call('ZADD', ready, PARKED, q)
  else
    redis.call('ZREM', ready, q)
  end
  return reply({'paused'})
end
local hold = tonumber(m[3])
if hold and hold > now then
  redis.call('ZADD', ready, hold, q)
  mark_ready(hold)
  return reply({'wait', hold})
end

if want <= 0 then want = tonumber(m[9]) or 1 end
-- Entries can be pending only if the last claimer did not release with
-- none (drop_lease removes 'cons' then).
local pend = {}
if m[6] then pend = redis.call('XPENDING', stream, GROUP, '-', '+', 1000) end
if #pend > 0 and m[5] ~= '1' and m[5] ~= m[4] then
  local qtmo = tonumber(m[7]) or 30000
  local waitms = 0
  for _, p in ipairs(pend) do
    local need = 0
    local e = redis.call('XRANGE', stream, p[1], p[1])
    if #e > 0 then
      local tid = e[1][2][2]
      local tmo = qtmo
      local spec = redis.call('GET', spec_key(pp, tid))
      if spec then tmo = spec_timeout(spec) or qtmo end
      local dl = tonumber(redis.call('HGET', state_key(pp, tid), 'dl')) or 0
      need = math.max(dl - now, tmo - p[3]) + grace
    end
    if need > waitms then waitms = need end
  end
  if waitms > 0 then
    redis.call('ZADD', ready, now + waitms, q)
    mark_ready(now + waitms)
    return reply({'wait', now + waitms})
  end
end

-- Recovered entries are calls like any other: they need tokens too, so a
-- change of owner never bursts above the rate limit. Without a rate limit,
-- an empty queue (rare: its work was taken between the hint and this claim)
-- is found empty by the read below, and released.
if #pend == 0 and (tonumber(m[11]) or 0) > 0 and redis.call('XLEN', stream) == 0 then
  redis.call('ZREM', ready, q)
  return reply({'empty'})
end
local room, untilms, tok = tokens(meta, now, want, {m[11], m[12], m[13], m[14]})
if room == 0 then
  redis.call('ZADD', ready, untilms, q)
  mark_ready(untilms)
  return reply({'wait', untilms})
end

local epoch = redis.call('INCR', KEYS[5])
local token = consumer .. ':' .. epoch
redis.call('SET', lease, token, 'PX', ttl)
local stale = {}
for i, f in pairs({[3] = 'hold', [5] = 'clean', [15] = 'recov', [16] = 'want'}) do
  if m[i] then stale[#stale + 1] = f end
end
if #stale > 0 then redis.call('HDEL', meta, unpack(stale)) end
redis.call('ZADD', ready, now + ttl, q)

local out = {'ok', token, m[1], m[8] or '0'}
local got = 0
if #pend > 0 then
  -- Take every pending entry over, in order; deliver as many as there is
  -- room for and keep the rest aside, in order, for more() to deliver next.
  local r = redis.call('XAUTOCLAIM', stream, GROUP, consumer, 0, '0-0', 'COUNT', #pend, 'JUSTID')
  got = redeliver(c, table.concat(r[2], ' '), room, out)
  if m[6] and m[6] ~= consumer then
    redis.call('XGROUP', 'DELCONSUMER', stream, GROUP, m[6])
  end
end
if room > got then
  got = got + read_new(c, room - got, out)
end
spend_tokens(c, tok, got)
flush_meta(c, {'epoch', epoch, 'cons', consumer, 'tok', token})
-- read_new ran (room > 0) and found nothing unread: drained
if got == 0 and release_if_idle(c, lease, ready, q, m[2], true) then
  return reply({'empty'})
end
want_more(meta, nil, ARGV[8], got < want)
return reply(out)
