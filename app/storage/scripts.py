"""A Lua script on the submit path, sent on a connection of each thread's own, without
redis-py's per-command machinery.

``Redis.execute_command`` wraps every command in a retry closure, observability timers and
event dispatch, ``Script.__call__`` adds argument filtering, and the pool's check-out and
check-in take a lock and poll the socket: together about a tenth of a submission's instructions
on the API (callgrind), for one ``EVALSHA``. ``LeanScript`` sends that ``EVALSHA`` itself and
hands every case it does not handle back to the client's own path, so behaviour stays redis-py's:

- a reply, or an error the script raised: returned, or raised, as ``Script`` would (a script that
  raised may have written part of its effects, so it is never sent twice);
- ``NOSCRIPT`` (a restarted or flushed Redis): the script is loaded and run by ``Script``;
- a broken or timed-out connection (a restarted Redis, one that closed an idle client): the
  connection is dropped and the call goes through ``Script``, with the client's retry policy,
  just as redis-py's own retry would resend it.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Sequence
from typing import Any

import hiredis
import redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError


class LeanScript:
    def __init__(self, client: redis.Redis, source: str) -> None:
        self.script = client.register_script(source)
        self.pool = client.connection_pool
        self._pinned = threading.local()

    def _connection(self) -> Any:
        """This thread's own connection, taken from the pool once (again in a forked child) and
        kept: checking one out and in again each call costs a lock, a poll of the socket and
        redis-py's observability counters. One per live thread that submits (gunicorn's are a
        fixed set); it goes back to the pool when its thread ends."""
        pinned = self._pinned
        pid = os.getpid()
        if getattr(pinned, "pid", None) != pid:
            pinned.checkout = _Checkout(self.pool)
            pinned.pid = pid
        return pinned.checkout.conn

    def __call__(self, keys: Sequence[str], args: Sequence[str | int]) -> Any:
        conn = self._connection()
        try:
            # Packed by hiredis directly: redis-py's packer first copies the arguments looking for
            # bytearrays and memoryviews, which these never are.
            command: Any = ("EVALSHA", self.script.sha, len(keys), *keys, *args)  # hiredis's stub wants a 1-tuple
            conn.send_packed_command([hiredis.pack_command(command)])
            return conn.read_response()
        except NoScriptError:
            pass
        except ResponseError:  # the script's own error: its reply was read whole
            raise
        except (RedisConnectionError, RedisTimeoutError):
            conn.disconnect()  # reconnects on its next use
        except BaseException:
            conn.disconnect()  # interrupted mid-reply: what is left unread must not answer the next call
            raise
        return self.script(keys=list(keys), args=list(args))


class _Checkout:
    """A connection checked out of ``pool`` until this object goes, with its thread's locals."""

    def __init__(self, pool: redis.ConnectionPool) -> None:
        self.pool = pool
        self.pid = os.getpid()
        self.conn: Any = pool.get_connection()

    def __del__(self) -> None:
        if self.pid != os.getpid():  # a forked child's copy belongs to no pool of its own
            return
        # At interpreter exit the pool may be half torn down; nothing is left to give back then.
        with contextlib.suppress(Exception):
            self.pool.release(self.conn)
