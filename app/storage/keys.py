"""Every Redis key of the job store and the scheduler, in one readable place.

(The MNS emulation keeps its own keys beside its model: ``app/notify/queues.py`` ``QueueKeys``,
``app/notify/topics.py``, ``app/notify/delivery.py`` and ``app/notify/signing.py``, all under
``openmps:``.)

Jobs
    ``openmps:job:{id}``                     hash: the job, every value <= 64 bytes (``jobhash.py`` says why)
    ``openmps:job:{id}:written``             set of "bucket/key": every object the job's attempts wrote
                                              (folded into the job's hash when it finishes: ``jobhash.py``)
    ``openmps:jobs:t:{tenant}``               zset job id -> created ms (listing, newest first)
    ``openmps:jobs:t:{tenant}:s:{state}``     zset, same scores, per state
    ``openmps:jobs:t:{tenant}:p:{pipeline}``  zset, same scores, per pipeline
    ``openmps:jobs:t:{tenant}:ps:{state}:{pipeline}``  zset, same scores, per pipeline and state (the
                                              state first: state names never hold ':', pipeline ids may)
    ``openmps:idem:{tenant}:{token}``         string "job_id fingerprint" (idempotent submission)
    ``openmps:lease:{id}``                    string with TTL: the running attempt's token; gone = worker died
    ``openmps:outbox``                        stream of {job_id}: terminal jobs awaiting notification
    ``openmps:jobs:expiry``                   zset "tenant|pipeline|state|id" -> ms its retention ends
                                              (finished jobs only; the sweeper clears their index entries)

A finished job's hash, its written set and its idempotency record carry a TTL of the retention
(``OPENMPS_JOB_RETENTION_DAYS``), set by the script that finished it; queued and running jobs
have none.

Scheduling (per pipeline; see ``app/storage/scheduler.py`` for the policy)
    ``openmps:sched:pending:{pipeline}``      zset job id -> rank (priority, then submission order)
    ``openmps:sched:dispatched:{pipeline}``   zset job id -> ms the task message was sent
    ``openmps:sched:running:{pipeline}``      zset job id -> ms started
    ``openmps:sched:seq``                     counter: submission order
    ``openmps:sched:reconcile-lock``          string with TTL: one reconciler at a time

Pipelines and access keys
    ``openmps:pipeline:{id}``                 hash
    ``openmps:pipelines``                     zset pipeline id -> created ms
    ``openmps:pipelines:version``             counter, bumped on every pipeline change (workers poll it)
    ``openmps:accesskey:{id}``                hash {secret (sealed), tenant, created_ms}
    ``openmps:push-endpoint:{tenant}:{origin}`` string: JSON of the tenant's push endpoint for a dialect's jobs
    ``openmps:grants:{tenant}``               hash "bucket[/prefix]" -> "r" | "w" | "rw" (bucket grants)
    ``openmps:grants:tenants``                set of tenants that hold grants

Operators and the fleet
    ``openmps:operators``                     set of access key ids with operator rights (console)
    ``openmps:workers:{class}``               zset worker name -> ms its heartbeat expires (``workers.py``)
    ``openmps:worker:{name}``                 hash {class, concurrency, seen_ms}, with the same expiry
    ``openmps:console:secret``                string: the console's session key when none is configured

Request gate (``app/gateway/gate.py``)
    ``openmps:nonce:{key id}:{nonce}``        string with TTL (twice the clock window): a nonce seen
    ``openmps:throttle:{key id}``             hash {tokens, ms}: the key's token bucket (``throttle.py``)
"""

from __future__ import annotations

PREFIX = "openmps:"

OUTBOX = f"{PREFIX}outbox"
SCHED_SEQ = f"{PREFIX}sched:seq"
RECONCILE_LOCK = f"{PREFIX}sched:reconcile-lock"
PIPELINES = f"{PREFIX}pipelines"
PIPELINES_VERSION = f"{PREFIX}pipelines:version"
JOBS_EXPIRY = f"{PREFIX}jobs:expiry"
GRANT_TENANTS = f"{PREFIX}grants:tenants"
OPERATORS = f"{PREFIX}operators"
CONSOLE_SECRET = f"{PREFIX}console:secret"


def job(job_id: str) -> str:
    return f"{PREFIX}job:{job_id}"


def written(job_id: str) -> str:
    return f"{PREFIX}job:{job_id}:written"


def grants(tenant: str) -> str:
    return f"{PREFIX}grants:{tenant}"


def tenant_jobs(tenant: str) -> str:
    return f"{PREFIX}jobs:t:{tenant}"


def tenant_state_jobs(tenant: str, state: str) -> str:
    return f"{PREFIX}jobs:t:{tenant}:s:{state}"


def tenant_pipeline_jobs(tenant: str, pipeline_id: str) -> str:
    return f"{PREFIX}jobs:t:{tenant}:p:{pipeline_id}"


def tenant_pipeline_state_jobs(tenant: str, pipeline_id: str, state: str) -> str:
    """Listing by pipeline *and* state reads this one index. ``ps`` (not ``p``) keeps it apart from
    ``tenant_pipeline_jobs`` whatever the pipeline id, and ``tenant`` never holds ':'."""
    return f"{PREFIX}jobs:t:{tenant}:ps:{state}:{pipeline_id}"


def idempotency(tenant: str, token: str) -> str:
    return f"{PREFIX}idem:{tenant}:{token}"


def lease(job_id: str) -> str:
    return f"{PREFIX}lease:{job_id}"


def pending(pipeline_id: str) -> str:
    return f"{PREFIX}sched:pending:{pipeline_id}"


def dispatched(pipeline_id: str) -> str:
    return f"{PREFIX}sched:dispatched:{pipeline_id}"


def running(pipeline_id: str) -> str:
    return f"{PREFIX}sched:running:{pipeline_id}"


def pipeline(pipeline_id: str) -> str:
    return f"{PREFIX}pipeline:{pipeline_id}"


def access_key(key_id: str) -> str:
    return f"{PREFIX}accesskey:{key_id}"


def push_endpoint(tenant: str, origin: str) -> str:
    return f"{PREFIX}push-endpoint:{tenant}:{origin}"


def nonce(access_key_id: str, value: str) -> str:
    return f"{PREFIX}nonce:{access_key_id}:{value}"


def throttle(access_key_id: str) -> str:
    return f"{PREFIX}throttle:{access_key_id}"


def workers(worker_class: str) -> str:
    return f"{PREFIX}workers:{worker_class}"


def worker(name: str) -> str:
    return f"{PREFIX}worker:{name}"
