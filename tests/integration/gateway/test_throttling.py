"""The per-access-key token bucket: one key over its limit is refused while another key, at the
same time, is not; the refusal says when to retry; the bucket refills."""

from __future__ import annotations

import base64
import time

from app.settings import Settings
from app.storage.throttle import RedisTokenBucket
from app.web import create_app
from tests.stack import make_services


def _basic(key_id: str, secret: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{key_id}:{secret}".encode()).decode()}


def test_one_key_over_its_limit_is_refused_while_another_is_not(settings: Settings) -> None:
    services = make_services(settings.with_(throttle_rate=2.0, throttle_burst=3))
    hot = services.credentials.create("acme")
    calm = services.credentials.create("acme")
    client = create_app(services.settings, services).test_client()
    hot_codes, calm_codes = [], []
    for _ in range(6):
        hot_codes.append(client.get("/api/v1/jobs", headers=_basic(hot.id, hot.secret)))
        if len(calm_codes) < 3:
            calm_codes.append(client.get("/api/v1/jobs", headers=_basic(calm.id, calm.secret)))
    assert [r.status_code for r in hot_codes[:3]] == [200, 200, 200]
    refused = [r for r in hot_codes[3:] if r.status_code == 429]
    assert len(refused) >= 2, [r.status_code for r in hot_codes]
    body = refused[0].get_json()
    assert body["code"] == "Throttling" and body["request_id"]
    assert int(refused[0].headers["Retry-After"]) >= 1
    assert [r.status_code for r in calm_codes] == [200, 200, 200]
    services.redis.close()


def test_the_bucket_refills_at_its_rate(settings: Settings) -> None:
    services = make_services(settings)
    bucket = RedisTokenBucket(services.redis, rate=20.0, burst=2)
    assert bucket.take("k") == 0 and bucket.take("k") == 0
    wait = bucket.take("k")
    assert 0 < wait <= 0.05 + 0.01
    time.sleep(wait + 0.02)
    assert bucket.take("k") == 0
    assert bucket.take("other") == 0  # a separate bucket per key
    services.redis.close()


def test_a_zero_rate_disables_throttling(settings: Settings) -> None:
    services = make_services(settings)
    bucket = RedisTokenBucket(services.redis, rate=0.0, burst=1)
    assert all(bucket.take("k") == 0 for _ in range(100))
    services.redis.close()
