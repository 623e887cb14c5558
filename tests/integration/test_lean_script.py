"""``LeanScript`` on a real redis-server: it answers as redis-py's ``Script`` would, through a
flushed script cache and a connection the server closed, and never sends a script that raised
twice."""

from __future__ import annotations

import pytest
import redis

from app.storage.scripts import LeanScript

# Counts its runs in KEYS[1], then answers ARGV[1] back, or raises when ARGV[1] is "boom" (after
# its write: Redis keeps what a script wrote before it raised).
COUNTING = """
local runs = redis.call('INCR', KEYS[1])
if ARGV[1] == 'boom' then return redis.error_reply('ERR boom after run ' .. runs) end
return {ARGV[1], runs}
"""


def test_answers_like_a_registered_script(redis_client: redis.Redis) -> None:
    lean = LeanScript(redis_client, COUNTING)
    plain = redis_client.register_script(COUNTING)
    assert lean(keys=["runs"], args=["hello"]) == ["hello", 1]
    assert plain(keys=["runs"], args=["hello"]) == ["hello", 2]
    assert lean(keys=["runs"], args=[7]) == ["7", 3]  # arguments as redis-py encodes them


def test_a_flushed_script_cache_is_loaded_again(redis_client: redis.Redis) -> None:
    lean = LeanScript(redis_client, COUNTING)
    assert lean(keys=["runs"], args=["a"]) == ["a", 1]
    redis_client.script_flush()  # as after a restart without persistence of the script cache
    assert lean(keys=["runs"], args=["b"]) == ["b", 2]  # run once: NOSCRIPT means it did not run


def test_a_connection_the_server_closed_is_replaced(redis_client: redis.Redis, redis_url: str) -> None:
    lean = LeanScript(redis_client, COUNTING)
    assert lean(keys=["runs"], args=["a"]) == ["a", 1]
    killer = redis.Redis.from_url(redis_url)
    assert killer.client_kill_filter(_type="normal", skipme=True) >= 1  # the pool's idle connection
    killer.close()
    assert lean(keys=["runs"], args=["b"]) == ["b", 2]
    assert redis_client.get("runs") == "2"  # sent once more on a new connection, run once


def test_a_script_that_raised_is_not_sent_again(redis_client: redis.Redis) -> None:
    lean = LeanScript(redis_client, COUNTING)
    with pytest.raises(redis.exceptions.ResponseError, match="boom after run 1"):
        lean(keys=["runs"], args=["boom"])
    assert redis_client.get("runs") == "1"
    assert lean(keys=["runs"], args=["after"]) == ["after", 2]  # the connection went back usable
