"""``LeanScript`` on a real redis-server: it answers as redis-py's ``Script`` would, through a
flushed script cache and a connection the server closed, and never sends a script that raised
twice."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import redis

from app.storage.scripts import LeanScript
from tests.servers import RedisServer

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


def test_each_thread_sends_on_its_own_connection(redis_client: redis.Redis) -> None:
    lean = LeanScript(redis_client, COUNTING)
    replies: list[object] = []

    def submit(n: int) -> None:
        for i in range(50):
            replies.append(lean(keys=["runs"], args=[f"{n}-{i}"]))

    threads = [threading.Thread(target=submit, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(r[0] for r in replies) == sorted(f"{n}-{i}" for n in range(4) for i in range(50))  # type: ignore[index]
    assert redis_client.get("runs") == "200"
    pool = redis_client.connection_pool
    assert not pool._in_use_connections  # each thread's connection went back when it ended
    assert len(pool._available_connections) >= 4


def test_a_restarted_redis_is_reached_again(tmp_path: Path) -> None:
    server = RedisServer(tmp_path / "redis")
    server.start()
    try:
        client = redis.Redis.from_url(server.url, decode_responses=True)
        lean = LeanScript(client, COUNTING)
        assert lean(keys=["runs"], args=["before"]) == ["before", 1]
        server.kill()  # the pinned connection dies with it, and the script cache
        server.start()
        assert lean(keys=["runs"], args=["after"])[0] == "after"
        client.close()
    finally:
        server.stop()
