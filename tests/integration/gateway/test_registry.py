"""Dialects are found by scanning app.dialects; OPENMPS_DIALECTS mounts a subset."""

from __future__ import annotations

import pytest

from app.gateway import registry
from app.settings import Settings
from app.web import create_app
from tests.stack import make_services


def test_every_installed_dialect_is_found_and_defines_itself() -> None:
    names = registry.available()
    assert {"native", "mns"} <= set(names)
    assert [d.name for d in registry.load()] == names


def test_an_unknown_dialect_name_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="'nope'"):
        registry.load(["nope"])


def test_only_the_dialects_named_are_mounted(settings: Settings) -> None:
    services = make_services(settings.with_(dialects=("native",)))
    client = create_app(services.settings, services).test_client()
    resp = client.get("/queues/q1")  # MNS is not mounted: the native dialect answers, in JSON
    assert resp.status_code == 404 and resp.get_json()["code"] == "NotFound"
    services.redis.close()


def test_settings_read_the_dialect_variables() -> None:
    s = Settings.from_env({"OPENMPS_DIALECTS": "native, mns", "OPENMPS_DIALECT_PORTS": "mns=8101"})
    assert s.dialects == ("native", "mns") and s.dialect_ports == (("mns", 8101),)
    with pytest.raises(ValueError, match="OPENMPS_DIALECT_PORTS"):
        Settings.from_env({"OPENMPS_DIALECT_PORTS": "mns"})
