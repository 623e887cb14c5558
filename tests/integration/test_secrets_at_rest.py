"""Secrets at rest: access-key secrets, webhook secrets (per tenant, per subscription, per pending
delivery) and the MNS push signing key are stored sealed with OPENMPS_SECRET_KEY, still work for
signing, and survive a key rotation with ``openmps secrets rotate``."""

from __future__ import annotations

import os

import pytest
import redis

from app import cli
from app.notify.delivery import DeliveryStore
from app.notify.signing import SIGNING_KEY, load_signing_key, tenant_webhook_secret
from app.notify.ssrf import EndpointGuard
from app.notify.topics import SubscriptionSpec, TopicAttributes, TopicStore
from app.settings import Settings
from app.storage import keys
from app.storage.secretbox import PREFIX, SecretBox, SecretKeyError, generate_key
from app.web import create_app
from app.wiring import build_services
from tests.integration.test_api import auth

OLD = generate_key()
NEW = generate_key()


def stored_values(r: redis.Redis) -> list[str]:
    """Every string Redis holds, flattened: where a plaintext secret would show up."""
    out: list[str] = []
    for name in r.scan_iter("*"):
        kind = r.type(name)
        if kind == "string":
            out.append(r.get(name) or "")
        elif kind == "hash":
            out += [f"{k}={v}" for k, v in r.hgetall(name).items()]
    return out


def populate(settings: Settings) -> dict[str, str]:
    """One of every sealed secret, made through the real code paths; returns the plaintexts."""
    services = build_services(settings)
    key = services.credentials.create("acme", key_id="AKSEAL", secret="the-plain-access-secret")
    webhook = tenant_webhook_secret(services.redis, services.sealer, "acme")
    topics = TopicStore(
        services.redis, "acme", DeliveryStore(services.redis), EndpointGuard(allow_private=True), services.sealer
    )
    topics.create("t", TopicAttributes())
    topics.subscribe("t", "hook", SubscriptionSpec(endpoint="http://127.0.0.1:9/hook"))
    topics.publish("t", "hello")
    signing = load_signing_key(services.redis, services.sealer)
    return {
        "access": key.secret,
        "webhook": webhook,
        "subscription": topics.subscription("t", "hook").webhook_secret,
        "cert": signing.certificate_pem.decode(),
    }


def test_nothing_secret_is_stored_in_plaintext_and_everything_still_signs(settings: Settings) -> None:
    plain = populate(settings)
    services = build_services(settings)
    values = "\n".join(stored_values(services.redis))
    for what in ("access", "webhook", "subscription"):
        assert plain[what] not in values, what
    assert "PRIVATE KEY" not in values
    assert services.redis.hget(keys.access_key("AKSEAL"), "secret").startswith(PREFIX)
    assert services.redis.get(SIGNING_KEY).startswith(PREFIX)
    delivery = next(iter(services.redis.scan_iter("openmps:push:d:*")))
    assert services.redis.hget(delivery, "webhook_secret").startswith(PREFIX)
    assert services.sealer.open(services.redis.hget(delivery, "webhook_secret")) == plain["subscription"]
    key = services.credentials.find("AKSEAL")
    assert key is not None and key.secret == "the-plain-access-secret"
    resp = create_app(settings, services).test_client().get("/api/v1/jobs", headers=auth(key))
    assert resp.status_code == 200  # the gate recomputes the signature from the opened secret


def test_rotation_reseals_everything_under_the_new_key(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    old = settings.with_(secret_keys=(OLD,))
    plain = populate(old)
    services = build_services(old)
    services.redis.hset(keys.access_key("LEGACY"), mapping={"secret": "plain-from-before", "tenant": "acme"})
    for name in [n for n in os.environ if n.startswith("OPENMPS_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("OPENMPS_REDIS_URL", settings.redis_url)
    monkeypatch.setenv("OPENMPS_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("OPENMPS_SECRET_KEY", f"{NEW},{OLD}")  # the new key first, the old one still opens
    assert cli.main(["secrets", "rotate"]) == 0
    counts = dict(line.split("\t")[::-1] for line in capsys.readouterr().out.splitlines())
    assert counts["access keys"] == "2" and counts["subscription webhook secrets"] == "1"
    assert counts["pending deliveries"] == "1" and counts["webhook secrets and the push signing key"] == "2"

    rotated = build_services(settings.with_(secret_keys=(NEW,)))  # the old key is gone now
    assert rotated.credentials.find("AKSEAL").secret == plain["access"]  # type: ignore[union-attr]
    assert rotated.credentials.find("LEGACY").secret == "plain-from-before"  # type: ignore[union-attr]
    assert rotated.redis.hget(keys.access_key("LEGACY"), "secret").startswith(PREFIX)
    assert tenant_webhook_secret(rotated.redis, rotated.sealer, "acme") == plain["webhook"]
    assert load_signing_key(rotated.redis, rotated.sealer).certificate_pem.decode() == plain["cert"]
    topics = TopicStore(
        rotated.redis, "acme", DeliveryStore(rotated.redis), EndpointGuard(allow_private=True), rotated.sealer
    )
    assert topics.subscription("t", "hook").webhook_secret == plain["subscription"]
    with pytest.raises(SecretKeyError):  # and the old key alone no longer opens anything
        build_services(settings.with_(secret_keys=(OLD,))).credentials.find("AKSEAL")


def test_a_missing_or_short_key_stops_the_process_at_start(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(ValueError, match="OPENMPS_SECRET_KEY is not set"):
        build_services(settings.with_(secret_keys=()))
    with pytest.raises(ValueError, match="at least 32"):
        SecretBox(("short",))
    assert cli.main(["secrets", "generate-key"]) == 0
    generated = capsys.readouterr().out.strip()
    assert len(generated) == 43 and SecretBox((generated,)).open(SecretBox((generated,)).seal("x")) == "x"
