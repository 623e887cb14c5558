"""Lua scripts for atomic job transitions and scheduling moves.

Each script reads and writes one job's hash together with its pipeline's scheduling sets, its
listing indexes and the outbox, so no crash can leave them disagreeing. Scores are formatted
with ``%d`` because Lua numbers are doubles and Redis would otherwise receive ``1e+12`` text.
KEYS/ARGV layouts are documented above each script and built in ``app/storage/jobs.py`` and
``app/storage/scheduler.py``.

Every script that writes a job's ``state`` starts with ``STATE_TABLE``, the transition table of
``app.core.states`` rendered into Lua, and calls ``may(from, to)`` before each such write (CREATE
checks the initial state instead), so the Python table is the one authority over the stored
states: the scripts pick *which* move a call means (start, takeover, finish...), the table says
whether that move is allowed. ``tests/integration/test_state_contract.py`` holds them to it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from app.core.states import INITIAL_STATE, TRANSITIONS, JobState

_LUA_NAME = re.compile(r"[a-z_]+")  # state values are quoted into Lua verbatim: keep them plain


def _quoted(state: JobState) -> str:
    if not _LUA_NAME.fullmatch(state.value):
        raise ValueError(f"state {state.value!r} cannot be rendered into Lua as is")
    return f'"{state.value}"'


def render_state_table(transitions: Mapping[JobState, frozenset[JobState]], initial: JobState) -> str:
    """The transition table as a Lua prelude: ``INITIAL``, ``ALLOWED[from][to]`` and ``may``.

    Rendered in ``JobState`` declaration order, never set order (which varies with the hash seed),
    so every process registers byte-identical scripts and shares their cached SHA.
    """
    rows = []
    for source in JobState:
        exits = ", ".join(f"[{_quoted(t)}] = true" for t in JobState if t in transitions.get(source, frozenset()))
        rows.append(f"  [{_quoted(source)}] = {{{exits}}},")
    return "\n".join(
        [
            "-- Rendered from app.core.states by app.storage.lua.render_state_table; do not edit here.",
            f"local INITIAL = {_quoted(initial)}",
            "local ALLOWED = {",
            *rows,
            "}",
            "local function may(from, to)",
            "  local exits = ALLOWED[from]",
            "  return exits ~= nil and exits[to] == true",
            "end",
            "",
        ]
    )


STATE_TABLE = render_state_table(TRANSITIONS, INITIAL_STATE)

# Retention of a job that just ended (used by every script that moves a job to a terminal state).
# The job's hash, its written set and its idempotency record (only if it still names this job)
# expire after ``retention_ms``; ``member`` ("tenant|pipeline|state|id") goes into the expiry set
# at ``expire_at`` so the sweeper can clear the index entries the TTLs cannot reach.
RETAIN = """
local function retain(job_key, idem_key, use_idem, written_key, expiry_key, retention_ms, expire_at, member, job_id)
  redis.call("PEXPIRE", job_key, retention_ms)
  redis.call("PEXPIRE", written_key, retention_ms)
  if use_idem == "1" then
    local held = redis.call("GET", idem_key)
    if held and string.sub(held, 1, #job_id + 1) == job_id .. " " then redis.call("PEXPIRE", idem_key, retention_ms) end
  end
  redis.call("ZADD", expiry_key, expire_at, member)
end
"""

# Writes whole attributes of a job's hash from the name/value pairs list[first..last], encoded as
# ``app/storage/jobhash.py`` ``encode`` does: a long value arrives split ("name.0", "name.1", ...),
# an empty one means none. Every field the attribute had, whole or split, goes first, so a shorter
# value never leaves pieces of a longer one behind (nor a whole field of a record stored before
# values were split). ``put_text`` splits a text the script itself writes (ASCII) the same way.
PUT = """
local function attribute_of(field) return string.match(field, "^(.-)%.%d+$") or field end
local function put(key, list, first, last)
  local names, set, stale = {}, {}, {}
  for i = first, last, 2 do
    names[attribute_of(list[i])] = true
    if list[i + 1] ~= "" then
      set[#set + 1] = list[i]
      set[#set + 1] = list[i + 1]
    end
  end
  for _, field in ipairs(redis.call("HKEYS", key)) do
    if names[attribute_of(field)] then stale[#stale + 1] = field end
  end
  if #stale > 0 then redis.call("HDEL", key, unpack(stale)) end
  if #set > 0 then redis.call("HSET", key, unpack(set)) end
end
local function put_text(key, name, text)
  local list = {name, text}
  if #text > 64 then
    list = {}
    for i = 1, #text, 64 do
      list[#list + 1] = name .. "." .. tostring((i - 1) / 64)
      list[#list + 1] = string.sub(text, i, i + 63)
    end
  end
  put(key, list, 1, #list)
end
"""

# The dispatch selection, shared by DISPATCH and CREATE (one copy of the policy).
# Moves up to ``window - in flight`` of the best-ranked pending jobs to dispatched (never past
# the pipeline's concurrency cap, never while it is paused) and returns their ids; the caller
# sends one task each, after the script (persist before publish: the moves are stored first).
DISPATCH_WINDOW = """
local function dispatch_window(pipeline, pending, dispatched, running, window, now)
  if redis.call("HGET", pipeline, "state") == "paused" then return {} end
  local inflight = redis.call("ZCARD", dispatched)
  local room = window - inflight
  local cap = tonumber(redis.call("HGET", pipeline, "max_concurrency") or "")
  if cap and cap > 0 then room = math.min(room, cap - redis.call("ZCARD", running) - inflight) end
  if room <= 0 then return {} end
  local ids = redis.call("ZRANGE", pending, 0, room - 1)
  for _, id in ipairs(ids) do
    redis.call("ZREM", pending, id)
    redis.call("ZADD", dispatched, now, id)
  end
  return ids
end
"""

# Stores one or more new jobs (a single submission or a batch) and fills the dispatch window of
# every pipeline that received one, in one round trip: a submission into a full window costs this
# one script call. Jobs are handled in order, each on its own: one refused never stops the next,
# and a client token a job stores is seen by a later job of the same batch.
# KEYS: seq, then per job (``4 + n_idx`` keys): job, idem (or job when unused), pipeline, pending,
#       its listing indexes (``n_idx`` of them: every index a submitted job is listed in),
#       then per pipeline to dispatch (4 keys): pipeline, pending, dispatched, running
# ARGV: n_jobs, n_idx, n_dispatch, window (0 = store only), now_ms, rank_factor, then one JSON
#       array with per job [job_id, fingerprint, use_idem ("1"/"0"), created_ms, inverted_priority,
#       tenant, {hash field: value}] (the fields as ``app/storage/jobhash.py`` ``job_to_hash``
#       encodes them: strings only, long values already split, empty ones left out; one string for
#       the whole batch because redis-py packs each argument in Python, while the JSON is encoded
#       in C and decoded by the server's cjson)
# Per job, the pipeline must still exist and be the tenant's or shared (checked here, atomically,
# so a concurrent delete cannot orphan the job, and a cached pipeline lookup can never let a job
# into a pipeline that is gone). A job is stored only in the initial state and only under an id
# not in use: nothing in the table leads back into the initial state, so "creating" over a stored
# job would be a forbidden write. The idempotency record lives as long as the job: it gets the
# job's retention TTL when it ends.
# Returns {results, sent}: results[i] = {"created"|"exists"|"no_pipeline"|"refused", a, b}
# ("exists": the id and fingerprint already stored under the token; "refused": the state already
# stored under the id, or ""), sent[k] = the ids dispatched from the k-th dispatch pipeline.
CREATE = (
    STATE_TABLE
    + DISPATCH_WINDOW
    + """
local n_jobs, n_idx, n_dispatch = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local window, now, factor = tonumber(ARGV[4]), ARGV[5], tonumber(ARGV[6])
local batch = cjson.decode(ARGV[7])
local stride = 4 + n_idx
local results, touched = {}, {}
for j = 0, n_jobs - 1 do
  local k = 1 + j * stride
  local job_key, idem_key, pipeline_key, pending_key = KEYS[k + 1], KEYS[k + 2], KEYS[k + 3], KEYS[k + 4]
  local item = batch[j + 1]
  local job_id, fingerprint, use_idem, created = item[1], item[2], item[3], item[4]
  local inverted, tenant, hash = tonumber(item[5]), item[6], item[7]
  local result
  local owner = redis.call("HMGET", pipeline_key, "id", "tenant")
  if not owner[1] or (owner[2] and owner[2] ~= "" and owner[2] ~= tenant) then
    result = {"no_pipeline", "", ""}
  end
  if not result and use_idem == "1" then
    local existing = redis.call("GET", idem_key)
    if existing then
      local sp = string.find(existing, " ", 1, true)
      result = {"exists", string.sub(existing, 1, sp - 1), string.sub(existing, sp + 1)}
    end
  end
  if not result and redis.call("EXISTS", job_key) == 1 then
    result = {"refused", redis.call("HGET", job_key, "state") or "", ""}
  end
  if not result and hash["state"] ~= INITIAL then
    result = {"refused", "", ""}
  end
  if not result then
    local seq = redis.call("INCR", KEYS[1])
    local rank = string.format("%d", inverted * factor + seq)
    local fields = {"rank", rank, "seq", seq}
    for name, value in pairs(hash) do
      fields[#fields + 1] = name
      fields[#fields + 1] = value
    end
    redis.call("HSET", job_key, unpack(fields))
    redis.call("ZADD", pending_key, rank, job_id)
    for i = k + 5, k + 4 + n_idx do redis.call("ZADD", KEYS[i], created, job_id) end
    if use_idem == "1" then redis.call("SET", idem_key, job_id .. " " .. fingerprint) end
    touched[pipeline_key] = true
    result = {"created", job_id, fingerprint}
  end
  results[#results + 1] = result
end
local sent = {}
local d = 1 + n_jobs * stride
for p = 0, n_dispatch - 1 do
  local q = d + p * 4
  if window > 0 and touched[KEYS[q + 1]] then
    sent[#sent + 1] = dispatch_window(KEYS[q + 1], KEYS[q + 2], KEYS[q + 3], KEYS[q + 4], window, now)
  else
    sent[#sent + 1] = {}
  end
end
return {results, sent}
"""
)

# KEYS: job, pipeline, pending, dispatched, running, lease, outbox, idx submitted, idx running, idx failed,
#       idem (or job when unused), written, expiry,
#       idx pipeline+submitted, idx pipeline+running, idx pipeline+failed
# ARGV: job_id, now_ms, lease_ttl_ms, lease_token, max_attempts, worker, failure code for exhausted attempts,
#       use_idem, retention_ms, expire_at_ms, expiry member (for a job failed here: see RETAIN)
# The state decides which move a delivery means (start a waiting job; take over or fail a running
# one whose lease expired); ``may`` decides whether that move is allowed ("refused" if not: the
# job's hash is left as it was).
START = (
    STATE_TABLE
    + RETAIN
    + PUT
    + """
local state = redis.call("HGET", KEYS[1], "state")
if not state then return {"missing", "0"} end
local attempts = tonumber(redis.call("HGET", KEYS[1], "attempts") or "0")
local created = redis.call("HGET", KEYS[1], "created_ms")
if state == "submitted" then
  local rank = redis.call("HGET", KEYS[1], "rank")
  local function park(outcome)
    redis.call("ZREM", KEYS[4], ARGV[1])
    redis.call("ZADD", KEYS[3], rank, ARGV[1])
    return {outcome, tostring(attempts)}
  end
  if not may(state, "running") then return {"refused", tostring(attempts)} end
  if redis.call("HGET", KEYS[2], "state") == "paused" then return park("paused") end
  local cap = tonumber(redis.call("HGET", KEYS[2], "max_concurrency") or "")
  if cap and cap > 0 and redis.call("ZCARD", KEYS[5]) >= cap then return park("busy") end
  attempts = attempts + 1
  redis.call("HSET", KEYS[1], "state", "running", "attempts", attempts, "started_ms", ARGV[2], "worker", ARGV[6])
  redis.call("ZREM", KEYS[3], ARGV[1])
  redis.call("ZREM", KEYS[4], ARGV[1])
  redis.call("ZADD", KEYS[5], ARGV[2], ARGV[1])
  redis.call("SET", KEYS[6], ARGV[4], "PX", ARGV[3])
  redis.call("ZREM", KEYS[8], ARGV[1])
  redis.call("ZADD", KEYS[9], created, ARGV[1])
  redis.call("ZREM", KEYS[14], ARGV[1])
  redis.call("ZADD", KEYS[15], created, ARGV[1])
  return {"started", tostring(attempts)}
elseif state == "running" then
  -- A running or finished job holds no window slot: a stray message for it releases any it held.
  redis.call("ZREM", KEYS[3], ARGV[1])
  redis.call("ZREM", KEYS[4], ARGV[1])
  if redis.call("EXISTS", KEYS[6]) == 1 then return {"duplicate", tostring(attempts)} end
  if attempts >= tonumber(ARGV[5]) then
    if not may(state, "failed") then return {"refused", tostring(attempts)} end
    redis.call("HSET", KEYS[1], "state", "failed", "finished_ms", ARGV[2], "error_code", ARGV[7])
    put_text(KEYS[1], "error_message", "the job ended its worker process " .. attempts ..
      " times (crash, kill or out of memory); not retried again")
    redis.call("ZREM", KEYS[5], ARGV[1])
    redis.call("ZREM", KEYS[9], ARGV[1])
    redis.call("ZADD", KEYS[10], created, ARGV[1])
    redis.call("ZREM", KEYS[15], ARGV[1])
    redis.call("ZADD", KEYS[16], created, ARGV[1])
    redis.call("XADD", KEYS[7], "*", "job_id", ARGV[1])
    retain(KEYS[1], KEYS[11], ARGV[8], KEYS[12], KEYS[13], ARGV[9], ARGV[10], ARGV[11], ARGV[1])
    return {"exhausted", tostring(attempts)}
  end
  -- A takeover rewrites "state" (running -> running) so that it, too, is a checked write.
  if not may(state, "running") then return {"refused", tostring(attempts)} end
  attempts = attempts + 1
  redis.call("HSET", KEYS[1], "state", "running", "attempts", attempts, "started_ms", ARGV[2], "worker", ARGV[6])
  redis.call("ZADD", KEYS[5], ARGV[2], ARGV[1])
  redis.call("ZREM", KEYS[4], ARGV[1])
  redis.call("SET", KEYS[6], ARGV[4], "PX", ARGV[3])
  return {"takeover", tostring(attempts)}
end
redis.call("ZREM", KEYS[3], ARGV[1])
redis.call("ZREM", KEYS[4], ARGV[1])
return {"duplicate", tostring(attempts)}
"""
)

# KEYS: job   ARGV: field, value, ...   (an attribute as PUT takes it) only onto a job that is
# still stored: a write after its retention ended would recreate its hash, holding just that.
PUT_EXISTING = (
    PUT
    + """
if redis.call("EXISTS", KEYS[1]) == 0 then return 0 end
put(KEYS[1], ARGV, 1, #ARGV)
return 1
"""
)

# KEYS: job, written   ARGV: "bucket/key"
# An object the job wrote, recorded only while the job is stored; once it has finished (its
# written set was folded into its hash, see FINISH) the set gets the job's remaining retention.
RECORD_WRITTEN = """
if redis.call("EXISTS", KEYS[1]) == 0 then return 0 end
redis.call("SADD", KEYS[2], ARGV[1])
local ttl = redis.call("PTTL", KEYS[1])
if ttl > 0 then redis.call("PEXPIRE", KEYS[2], ttl) end
return 1
"""

# KEYS: lease   ARGV: token, ttl_ms
HEARTBEAT = """
if redis.call("GET", KEYS[1]) == ARGV[1] then
  redis.call("PEXPIRE", KEYS[1], ARGV[2])
  return 1
end
return 0
"""

# KEYS: job, lease, running, pending, dispatched, outbox, idx submitted, idx running, idx target,
#       idem (or job when unused), written, expiry,
#       idx pipeline+submitted, idx pipeline+running, idx pipeline+target
# ARGV: job_id, target_state (terminal), lease_token ("" = no lease check), use_idem, retention_ms,
#       expire_at_ms, expiry member, written count, n, n "written" field/value pairs, field, value, ...
# A lease held by *another* token means this attempt was taken over: refuse. An expired lease
# with nobody else holding it means the job really completed here: accept.
# The written set is folded into the hash's "written" attribute (``jobhash.written_fields``, from
# the ``written count`` members the caller read) only if it still holds that many: a set that
# grew meanwhile stays a set, with the retention; "-1" = nothing to fold.
FINISH = (
    STATE_TABLE
    + RETAIN
    + PUT
    + """
local state = redis.call("HGET", KEYS[1], "state")
if not state then return "missing" end
if not may(state, ARGV[2]) then return "refused" end
if state == "running" and ARGV[3] ~= "" then
  local holder = redis.call("GET", KEYS[2])
  if holder and holder ~= ARGV[3] then return "refused" end
end
local written_end = 9 + 2 * tonumber(ARGV[9])
redis.call("HSET", KEYS[1], "state", ARGV[2])
put(KEYS[1], ARGV, written_end + 1, #ARGV)
if ARGV[8] ~= "-1" and redis.call("SCARD", KEYS[11]) == tonumber(ARGV[8]) then
  put(KEYS[1], ARGV, 10, written_end)
  redis.call("DEL", KEYS[11])
end
redis.call("DEL", KEYS[2])
redis.call("ZREM", KEYS[3], ARGV[1])
redis.call("ZREM", KEYS[4], ARGV[1])
redis.call("ZREM", KEYS[5], ARGV[1])
local created = redis.call("HGET", KEYS[1], "created_ms")
redis.call("ZREM", KEYS[7], ARGV[1])
redis.call("ZREM", KEYS[8], ARGV[1])
redis.call("ZADD", KEYS[9], created, ARGV[1])
redis.call("ZREM", KEYS[13], ARGV[1])
redis.call("ZREM", KEYS[14], ARGV[1])
redis.call("ZADD", KEYS[15], created, ARGV[1])
redis.call("XADD", KEYS[6], "*", "job_id", ARGV[1])
retain(KEYS[1], KEYS[10], ARGV[4], KEYS[11], KEYS[12], ARGV[5], ARGV[6], ARGV[7], ARGV[1])
return "ok"
"""
)

# KEYS: job, pending, dispatched, outbox, idx submitted, idx canceled, idem (or job), written, expiry,
#       idx pipeline+submitted, idx pipeline+canceled
# ARGV: job_id, now_ms, use_idem, retention_ms, expire_at_ms, expiry member
# Only a queued job is canceled here (it leaves the queue); a running one is asked to stop and
# its worker ends it through FINISH.
CANCEL_QUEUED = (
    STATE_TABLE
    + RETAIN
    + """
local state = redis.call("HGET", KEYS[1], "state")
if state ~= "submitted" or not may(state, "canceled") then return "refused" end
redis.call("HSET", KEYS[1], "state", "canceled", "finished_ms", ARGV[2])
redis.call("ZREM", KEYS[2], ARGV[1])
redis.call("ZREM", KEYS[3], ARGV[1])
local created = redis.call("HGET", KEYS[1], "created_ms")
redis.call("ZREM", KEYS[5], ARGV[1])
redis.call("ZADD", KEYS[6], created, ARGV[1])
redis.call("ZREM", KEYS[10], ARGV[1])
redis.call("ZADD", KEYS[11], created, ARGV[1])
redis.call("XADD", KEYS[4], "*", "job_id", ARGV[1])
retain(KEYS[1], KEYS[7], ARGV[3], KEYS[8], KEYS[9], ARGV[4], ARGV[5], ARGV[6], ARGV[1])
return "ok"
"""
)

# KEYS: pipeline, pending, dispatched, running   ARGV: window, now_ms
# The window refill on its own (a freed slot, a resume, reconcile); see DISPATCH_WINDOW.
DISPATCH = (
    DISPATCH_WINDOW
    + """
return dispatch_window(KEYS[1], KEYS[2], KEYS[3], KEYS[4], tonumber(ARGV[1]), ARGV[2])
"""
)

# KEYS: pipeline, registry, pending, dispatched, running, registry version   ARGV: pipeline_id
# Deletes only an empty pipeline, in one step with the emptiness check (no job can slip in between).
DELETE_PIPELINE = """
if redis.call("ZCARD", KEYS[3]) + redis.call("ZCARD", KEYS[4]) + redis.call("ZCARD", KEYS[5]) > 0 then
  return 0
end
redis.call("DEL", KEYS[1])
redis.call("ZREM", KEYS[2], ARGV[1])
redis.call("INCR", KEYS[6])
return 1
"""

# KEYS: job, pending, dispatched   ARGV: job_id
# A task message that could not be sent: the job goes back to pending with its rank, if it is
# still waiting (checked in the same step, so a job that started meanwhile is left alone).
RETURN_TO_PENDING = """
if redis.call("ZREM", KEYS[3], ARGV[1]) == 1 and redis.call("HGET", KEYS[1], "state") == "submitted" then
  redis.call("ZADD", KEYS[2], redis.call("HGET", KEYS[1], "rank"), ARGV[1])
end
return 1
"""

# KEYS: job, idx tenant, idx tenant+state, idx tenant+pipeline, idx tenant+pipeline+state, idem (or job),
#       written, expiry
# ARGV: job_id, state the caller read (its index keys were built from it), use_idem, expiry member
# Forgets a finished job at once (DELETE /jobs/{id}): refused unless it is still in that state and
# the state has no way out of it (terminal), so a queued or running job is never deleted.
DELETE_JOB = (
    STATE_TABLE
    + """
local state = redis.call("HGET", KEYS[1], "state")
if not state or state ~= ARGV[2] or next(ALLOWED[state] or {"?"}) ~= nil then return 0 end
if ARGV[3] == "1" then
  local held = redis.call("GET", KEYS[6])
  if held and string.sub(held, 1, #ARGV[1] + 1) == ARGV[1] .. " " then redis.call("DEL", KEYS[6]) end
end
redis.call("DEL", KEYS[1], KEYS[7])
for i = 2, 5 do redis.call("ZREM", KEYS[i], ARGV[1]) end
redis.call("ZREM", KEYS[8], ARGV[4])
return 1
"""
)

# KEYS: job, idx tenant, idx tenant+state, idx tenant+pipeline, idx tenant+pipeline+state, written, expiry
# ARGV: job_id, member
# The sweeper's step for one job whose retention ended: its index entries go (the TTLs took the
# hash, the written set and the idempotency record). A job found in a non-terminal state (never
# expected: a finished job cannot be restarted and ids are not reused) is left alone.
SWEEP_JOB = (
    STATE_TABLE
    + """
local state = redis.call("HGET", KEYS[1], "state")
if state and next(ALLOWED[state] or {"?"}) ~= nil then
  redis.call("ZREM", KEYS[7], ARGV[2])
  return 0
end
redis.call("DEL", KEYS[1], KEYS[6])
for i = 2, 5 do redis.call("ZREM", KEYS[i], ARGV[1]) end
redis.call("ZREM", KEYS[7], ARGV[2])
return 1
"""
)

# KEYS: idx tenant+pipeline, then per state (``JobState`` order): idx tenant+state, idx tenant+pipeline+state
# ARGV: job ids   Returns how many entries it added or removed.
# Rebuilds the per-(tenant, pipeline, state) entries of these jobs from the two indexes every
# version of the store has kept, which every transition script updates together with the state:
# a job belongs in idx tenant+pipeline+state exactly when it is in idx tenant+pipeline and in idx
# tenant+state. Jobs stored before that index existed get their entry here (``openmps store
# reindex``); an entry whose job left (an older process deleted or swept it) goes.
REINDEX_JOBS = """
local changed = 0
for _, id in ipairs(ARGV) do
  local created = redis.call("ZSCORE", KEYS[1], id)
  for i = 2, #KEYS, 2 do
    if created and redis.call("ZSCORE", KEYS[i], id) then
      changed = changed + redis.call("ZADD", KEYS[i + 1], created, id)
    else
      changed = changed + redis.call("ZREM", KEYS[i + 1], id)
    end
  end
end
return changed
"""
