"""A Lua script on the submit path, called on a pooled connection without redis-py's per-command
machinery.

``Redis.execute_command`` wraps every command in a retry closure, observability timers and
event dispatch, and ``Script.__call__`` adds argument filtering: together about a tenth of a
submission's CPU on the API (measured with py-spy under ``bench/load.py``'s load), for one
``EVALSHA``. ``LeanScript`` sends that ``EVALSHA`` itself and hands every case it does not
handle back to the client's own path, so behaviour stays redis-py's:

- a reply, or an error the script raised: returned, or raised, as ``Script`` would (a script that
  raised may have written part of its effects, so it is never sent twice);
- ``NOSCRIPT`` (a restarted or flushed Redis): the script is loaded and run by ``Script``;
- a broken or timed-out connection before any reply: the connection is dropped and the call goes
  through ``Script``, with the client's retry policy, just as redis-py's own retry would resend it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import hiredis
import redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError
from redis.exceptions import TimeoutError as RedisTimeoutError


class LeanScript:
    def __init__(self, client: redis.Redis, source: str) -> None:
        self.script = client.register_script(source)
        self.pool = client.connection_pool

    def __call__(self, keys: Sequence[str], args: Sequence[str | int]) -> Any:
        conn: Any = self.pool.get_connection()  # redis-py types its connections only in part
        try:
            # Packed by hiredis directly: redis-py's packer first copies the arguments looking for
            # bytearrays and memoryviews, which these never are.
            command: Any = ("EVALSHA", self.script.sha, len(keys), *keys, *args)  # hiredis's stub wants a 1-tuple
            conn.send_packed_command([hiredis.pack_command(command)])
            reply = conn.read_response()
        except NoScriptError:
            self.pool.release(conn)
        except (RedisConnectionError, RedisTimeoutError):
            conn.disconnect()
            self.pool.release(conn)
        except BaseException:
            self.pool.release(conn)
            raise
        else:
            self.pool.release(conn)
            return reply
        return self.script(keys=list(keys), args=list(args))
