"""Lua for the MNS queue model (``app/notify/queues.py``), kept apart so the model reads as Python.

Each script takes the queue's base key in ARGV[1] and appends the suffixes documented in
``queues.py`` (``:m:{id}``, ``:ready``, ``:timer``, ``:seq``, ``:wake``). Times are the Redis
server's (``TIME``), in epoch milliseconds. The attribute-hash scripts at the end (shared with
topics) take their keys in KEYS instead. Lua numbers print with 14 significant digits, which
holds epoch ms and ``priority * 1e12 + seq`` exactly.
"""

PRIORITY_SPAN = 1_000_000_000_000  # seq stays below this, so priority-major ordering is exact in a double

# Returns {code}: 0 missing queue; else {1, id, body, md5, prio, enq, firstdeq, dc, nextvis, handle}...
COMMON = """
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function promote(base, now)
  local due = redis.call('ZRANGEBYSCORE', base .. ':timer', '-inf', now, 'LIMIT', 0, 1000)
  for _, id in ipairs(due) do
    redis.call('ZREM', base .. ':timer', id)
    local m = base .. ':m:' .. id
    if redis.call('EXISTS', m) == 1 then
      local f = redis.call('HMGET', m, 'Priority', 'Seq')
      redis.call('ZADD', base .. ':ready', tonumber(f[1]) * SPAN + tonumber(f[2]), id)
      redis.call('HSET', m, 'State', 'active')
    end
  end
end
local function next_timer(base)
  local first = redis.call('ZRANGE', base .. ':timer', 0, 0, 'WITHSCORES')
  if first[2] then return first[2] end
  return '-1'
end
""".replace("SPAN", str(PRIORITY_SPAN))

SEND = (
    COMMON
    + """
local base, id, body, md5, prio, delay = ARGV[1], ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5]), ARGV[6]
if redis.call('EXISTS', base) == 0 then return 0 end
local m = base .. ':m:' .. id
local retention = tonumber(redis.call('HGET', base, 'MessageRetentionPeriod'))
-- Same id sent again (a notifier repeating after a crash): one copy, even if already deleted.
if not redis.call('SET', base .. ':sent:' .. id, '1', 'NX', 'PX', retention * 1000) then return 2 end
if delay == '' then delay = redis.call('HGET', base, 'DelaySeconds') end
delay = tonumber(delay)
local now = now_ms()
local seq = redis.call('INCR', base .. ':seq')
redis.call('HSET', m, 'Body', body, 'MD5', md5, 'Priority', prio, 'EnqueueTime', now,
  'FirstDequeueTime', 0, 'DequeueCount', 0, 'Seq', seq, 'NextVisibleTime', now + delay * 1000,
  'Handle', '', 'State', delay > 0 and 'delayed' or 'active')
redis.call('PEXPIREAT', m, now + retention * 1000)
if delay > 0 then
  redis.call('ZADD', base .. ':timer', now + delay * 1000, id)
else
  redis.call('ZADD', base .. ':ready', prio * SPAN + seq, id)
end
redis.call('LPUSH', base .. ':wake', '1')
redis.call('LTRIM', base .. ':wake', 0, 15)
redis.call('PEXPIRE', base .. ':wake', 60000)
return 1
""".replace("SPAN", str(PRIORITY_SPAN))
)

# ARGV: base, n, dlq_base ('' = none), then n handle tokens.
RECEIVE = (
    COMMON
    + """
local base, n, dlq = ARGV[1], tonumber(ARGV[2]), ARGV[3]
if redis.call('EXISTS', base) == 0 then return {0} end
local now = now_ms()
promote(base, now)
local vt = tonumber(redis.call('HGET', base, 'VisibilityTimeout'))
local maxrc = tonumber(redis.call('HGET', base, 'MaxReceiveCount') or '0')
local out = {1}
local got = 0
while got < n do
  local head = redis.call('ZRANGE', base .. ':ready', 0, 0)
  if not head[1] then break end
  local id = head[1]
  local m = base .. ':m:' .. id
  redis.call('ZREM', base .. ':ready', id)
  if redis.call('EXISTS', m) == 1 then
    local dc = redis.call('HINCRBY', m, 'DequeueCount', 1)
    if maxrc > 0 and dc > maxrc and dlq ~= '' and redis.call('EXISTS', dlq) == 1 then
      -- Move, keeping the id and the retention deadline (MNS does not reset it on move).
      local ttl = redis.call('PTTL', m)
      local dm = dlq .. ':m:' .. id
      local f = redis.call('HMGET', m, 'Body', 'MD5', 'Priority', 'EnqueueTime')
      local seq = redis.call('INCR', dlq .. ':seq')
      redis.call('HSET', dm, 'Body', f[1], 'MD5', f[2], 'Priority', f[3], 'EnqueueTime', f[4],
        'FirstDequeueTime', 0, 'DequeueCount', 0, 'Seq', seq, 'NextVisibleTime', now, 'Handle', '',
        'State', 'active')
      if ttl > 0 then redis.call('PEXPIRE', dm, ttl) end
      redis.call('ZADD', dlq .. ':ready', tonumber(f[3]) * SPAN + seq, id)
      redis.call('DEL', m)
    else
      got = got + 1
      local handle = id .. '-' .. ARGV[3 + got]
      local nextvis = now + vt * 1000
      if tonumber(redis.call('HGET', m, 'FirstDequeueTime')) == 0 then
        redis.call('HSET', m, 'FirstDequeueTime', now)
      end
      redis.call('HSET', m, 'Handle', handle, 'NextVisibleTime', nextvis, 'State', 'inactive')
      redis.call('ZADD', base .. ':timer', nextvis, id)
      local f = redis.call('HMGET', m, 'Body', 'MD5', 'Priority', 'EnqueueTime', 'FirstDequeueTime')
      for _, v in ipairs({id, f[1], f[2], f[3], f[4], f[5], dc, nextvis, handle}) do table.insert(out, v) end
    end
  end
end
if got == 0 then out[1] = 2; table.insert(out, next_timer(base)) end
return out
""".replace("SPAN", str(PRIORITY_SPAN))
)

PEEK = (
    COMMON
    + """
local base, n = ARGV[1], tonumber(ARGV[2])
if redis.call('EXISTS', base) == 0 then return {0} end
local now = now_ms()
promote(base, now)
local out = {1}
for _, id in ipairs(redis.call('ZRANGE', base .. ':ready', 0, n - 1)) do
  local f = redis.call('HMGET', base .. ':m:' .. id, 'Body', 'MD5', 'Priority', 'EnqueueTime',
    'FirstDequeueTime', 'DequeueCount')
  if f[1] then
    for _, v in ipairs({id, f[1], f[2], f[3], f[4], f[5], f[6], now, ''}) do table.insert(out, v) end
  end
end
return out
"""
)

# ARGV: base, handle, new handle token ('' for delete), visibility seconds. Returns {code, handle, nextvis}.
HANDLE_OP = (
    COMMON
    + """
local base, handle, token, vt = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
if redis.call('EXISTS', base) == 0 then return {0} end
local id = string.sub(handle, 1, 32)
local m = base .. ':m:' .. id
local now = now_ms()
local f = redis.call('HMGET', m, 'Handle', 'NextVisibleTime', 'State')
if f[1] ~= handle or f[3] ~= 'inactive' or tonumber(f[2]) <= now then return {3} end
if token == '' then
  redis.call('DEL', m)
  redis.call('ZREM', base .. ':timer', id)
  redis.call('ZREM', base .. ':ready', id)
  return {1}
end
local newh = id .. '-' .. token
local nextvis = now + vt * 1000
redis.call('HSET', m, 'Handle', newh, 'NextVisibleTime', nextvis)
redis.call('ZADD', base .. ':timer', nextvis, id)
return {1, newh, nextvis}
"""
)

DELETE_QUEUE = """
local base = ARGV[1]
if redis.call('EXISTS', base) == 0 then return 0 end
for _, z in ipairs({':ready', ':timer'}) do
  for _, id in ipairs(redis.call('ZRANGE', base .. z, 0, -1)) do redis.call('DEL', base .. ':m:' .. id) end
end
redis.call('DEL', base, base .. ':ready', base .. ':timer', base .. ':seq', base .. ':wake')
return 1
"""

COUNTS = (
    COMMON
    + """
local base = ARGV[1]
local now = now_ms()
promote(base, now)
local delayed, inactive = 0, 0
for _, id in ipairs(redis.call('ZRANGE', base .. ':timer', 0, -1)) do
  local s = redis.call('HGET', base .. ':m:' .. id, 'State')
  if s == 'delayed' then delayed = delayed + 1 elseif s == 'inactive' then inactive = inactive + 1 end
end
return {redis.call('ZCARD', base .. ':ready'), inactive, delayed}
"""
)

# The attribute hashes of queues and topics (``TopicStore`` uses these too). Each write is one
# script, so a concurrent reader sees a whole object or none: never CreateTime without the rest.

# KEYS: the object's hash, the account's name set. ARGV: name, then field/value pairs.
# Returns 1 if created, 0 if the object already existed (nothing written).
CREATE_HASH = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
redis.call('SADD', KEYS[2], ARGV[1])
return 1
"""

# KEYS: the object's hash. ARGV: field/value pairs. Returns 0 (nothing written) once the object is
# gone, so an update racing a delete cannot leave a half object behind.
UPDATE_HASH = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV))
return 1
"""

# KEYS: the object's hash. ARGV: field, increment. Same guard as UPDATE_HASH.
INCR_FIELD = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
return redis.call('HINCRBY', KEYS[1], ARGV[1], ARGV[2])
"""
