"""Property-based fuzzing of every native endpoint, every MNS endpoint and their query parameters.

Each example is one HTTP request: an endpoint of the dialect, path parameters (known ids, names
at and past every limit, arbitrary text), query parameters (the endpoint's own and random ones,
with values shaped like what they expect and like what breaks parsers), headers, and a body
(valid bodies with one field replaced by arbitrary JSON, arbitrary JSON, raw bytes, nesting
bombs, XML for MNS). Requests are signed with a real access key most of the time so they reach
the handlers, and run in-process through Flask's test client against a real redis-server; a
handful also go through a served app over a socket.

The property: no response is ever a 5xx, and every error is in its dialect's format (native:
JSON ``{code, message, request_id}``, plus ``errors`` for an ``InvalidParameter``; MNS: XML ``Error`` with Code, Message, RequestId, HostId).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Iterator
from dataclasses import dataclass
from email.utils import formatdate
from typing import Any
from urllib.parse import quote
from xml.etree import ElementTree

import httpx
import pytest
import redis
from flask import Flask
from hypothesis import given
from hypothesis import strategies as st

from app.settings import Settings
from app.storage.credentials import AccessKey
from app.web import create_app
from app.wiring import Services
from tests.fuzz.conftest import TALLY
from tests.servers import RedisServer, serve_wsgi
from tests.stack import fast_settings, make_services

MNS_ROOTS = ("/queues", "/topics", "/mns")


@dataclass
class Target:
    flask_app: Flask
    services: Services
    key: AccessKey
    job_id: str
    pipeline_id: str


@pytest.fixture(scope="module")
def target(redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    redis.Redis.from_url(redis_server.url).flushall()  # the module starts from an empty database
    settings: Settings = fast_settings(redis_server.url, tmp_path_factory.mktemp("fuzz") / "data")
    services = make_services(settings)
    services.objects.put("media", "in/video.mp4", b"\x00" * 64, "video/mp4")
    services.objects.put("out", "snap/a/00001.jpg", b"\xff\xd8jpeg", "image/jpeg")
    key = services.credentials.create("acme", key_id="FUZZKEY", secret="fuzz-secret")
    flask_app = create_app(settings, services)
    client = flask_app.test_client()
    auth = native_auth(key)
    job_id = client.post("/api/v1/jobs", json=valid_job(), headers=auth).get_json()["id"]
    pipeline_id = client.post("/api/v1/pipelines", json={"name": "fuzzed"}, headers=auth).get_json()["id"]
    yield Target(flask_app, services, key, job_id, pipeline_id)
    services.redis.close()


def native_auth(key: AccessKey) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{key.id}:{key.secret}".encode()).decode()}


def mns_headers(key: AccessKey, method: str, target: str, body: bytes, content_type: str) -> dict[str, str]:
    """Signed as aliyun-mns-sdk signs (an independent implementation of the scheme)."""
    headers = {"x-mns-version": "2015-06-06", "Date": formatdate(usegmt=True)}
    if content_type:
        headers["Content-Type"] = content_type
    text = f"{method}\n\n{content_type}\n{headers['Date']}\nx-mns-version:2015-06-06\n{target}"
    signature = base64.b64encode(hmac.new(key.secret.encode(), text.encode(), hashlib.sha1).digest()).decode()
    headers["Authorization"] = f"MNS {key.id}:{signature}"
    return headers


def valid_job() -> dict[str, Any]:
    return {
        "input": {"bucket": "media", "key": "in/video.mp4"},
        "output": {"bucket": "out", "key": "f/{JobId}/{Count}.jpg"},
        "snapshot": {"mode": "series", "start_ms": 0, "interval_s": 1.5, "count": 3, "width": 64},
    }


# --- strategies ---------------------------------------------------------------------------

HUGE = 10**401
numbers = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([0, -1, 1, 10**15, 10**16, HUGE, -HUGE, 2**63]),
    st.floats(allow_nan=True, allow_infinity=True),
)
texts = st.one_of(
    st.text(max_size=30),
    st.sampled_from(["", " ", "\x00", "\ud800", "{Count}", "{", "}", "../x", "a//b", "a\\b", "x" * 300, "é" * 600]),
)
scalars = st.one_of(st.none(), st.booleans(), numbers, texts)
json_values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)
JOB_PATHS = [
    ("input",),
    ("input", "bucket"),
    ("input", "key"),
    ("output",),
    ("output", "bucket"),
    ("output", "key"),
    ("snapshot",),
    ("snapshot", "mode"),
    ("snapshot", "time_ms"),
    ("snapshot", "start_ms"),
    ("snapshot", "interval_s"),
    ("snapshot", "count"),
    ("snapshot", "end_ms"),
    ("snapshot", "points_ms"),
    ("snapshot", "frame_type"),
    ("snapshot", "width"),
    ("snapshot", "height"),
    ("snapshot", "format"),
    ("snapshot", "quality"),
    ("snapshot", "sprite"),
    ("snapshot", "black_frames"),
    ("pipeline_id",),
    ("priority",),
    ("user_data",),
    ("client_token",),
    ("webhook_url",),
]
SPRITE_FIELDS = [
    "output",
    "lines",
    "columns",
    "cell_width",
    "cell_height",
    "padding",
    "margin",
    "color",
    "cell_sel_step",
    "keep_cells",
    "max_sheet_width",
    "max_sheet_height",
]
BLACK_FIELDS = ["black_level", "max_dark_ratio", "min_stddev", "search_window_ms"]
WEBHOOKS = [
    "http://[::1",
    "http://[",
    "http://127.0.0.1/h",
    "http://[::127.0.0.1]/",
    "ftp://x",
    "https://example.com/h",
    "http://a:99999/",
]


@st.composite
def mutated_job(draw: st.DrawFn) -> Any:
    body = valid_job()
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(JOB_PATHS))
        if path == ("snapshot", "sprite"):
            value: Any = {"output": {"bucket": "out", "key": "s/{TileCount}.jpg"}}
            value[draw(st.sampled_from(SPRITE_FIELDS))] = draw(json_values)
        elif path == ("snapshot", "black_frames"):
            value = {draw(st.sampled_from(BLACK_FIELDS)): draw(json_values)}
        elif path == ("webhook_url",):
            value = draw(st.one_of(st.sampled_from(WEBHOOKS), json_values))
        elif path == ("snapshot", "points_ms"):
            value = draw(st.lists(numbers, max_size=5))
        else:
            value = draw(json_values)
        node = body
        for part in path[:-1]:
            if not isinstance(node.get(part), dict):  # an earlier mutation replaced the parent
                node[part] = {}
            node = node[part]
        node[path[-1]] = value
    return body


BOMBS = [b"[" * 100_000 + b"]" * 100_000, b'{"a":' * 5000 + b"1" + b"}" * 5000, b'{"x": ' + b"9" * 5000 + b"}"]
json_bodies = st.one_of(
    mutated_job().map(lambda b: json.dumps(b).encode()),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.binary(max_size=64),
    st.sampled_from(BOMBS),
)
segment = st.one_of(
    st.sampled_from(["x", "default", "nope", "", "a" * 300, "b" * 5000, "..", "%2e%2e", "%00", "%ff", "%ed%a0%80"]),
    st.text(max_size=20).map(lambda t: quote(t, safe="")),
)
query_values = st.one_of(
    st.sampled_from(
        [
            "",
            "0",
            "1",
            "-1",
            "20",
            "100",
            "101",
            "1e400",
            "nan",
            "inf",
            "²",
            "1_0",
            "9" * 5000,
            "true",
            "false",
            "maybe",
            "active",
            "paused",
            "running",
            "2026-11-21T09:00:00Z",
            "0001-01-01T00:00:00+23:59",
            "9999-12-31T23:59:59",
            "%%%",
            "a" * 600,
        ]
    ),
    st.text(max_size=16),
)


def query_string(names: list[str]) -> st.SearchStrategy[str]:
    name = st.one_of(st.sampled_from(names), st.text(max_size=8)) if names else st.text(max_size=8)
    pairs = st.lists(st.tuples(name, query_values), max_size=4)
    return pairs.map(lambda ps: "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in ps))


NATIVE = [
    ("POST", "/api/v1/jobs", ["wait"], True),
    ("GET", "/api/v1/jobs", ["state", "pipeline_id", "created_after", "created_before", "limit", "page_token"], False),
    ("GET", "/api/v1/jobs/{id}", [], False),
    ("DELETE", "/api/v1/jobs/{id}", ["outputs"], False),
    ("POST", "/api/v1/jobs/{id}/cancel", [], False),
    ("POST", "/api/v1/jobs/{id}/retry", [], False),
    ("GET", "/api/v1/webhook-secret", [], False),
    ("POST", "/api/v1/pipelines", [], True),
    ("GET", "/api/v1/pipelines", ["state", "page", "page_size"], False),
    ("GET", "/api/v1/pipelines/{id}", [], False),
    ("PATCH", "/api/v1/pipelines/{id}", [], True),
    ("DELETE", "/api/v1/pipelines/{id}", [], False),
    ("GET", "/objects/{id}/{id}", ["expires", "signature"], False),
    ("GET", "/healthz", [], False),
    ("GET", "/openapi.json", [], False),
    ("GET", "/docs", [], False),
    ("GET", "/docs/assets/{id}", [], False),
    ("PUT", "/api/v1/{id}", [], True),
]
NATIVE_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]
# waitseconds/PollingWaitSeconds from 1 to 30 are valid long polls: left out so an example never
# blocks for seconds (their range checks are fuzzed with the edges 0, -1, 31 and non-numbers).
LONG_POLL_SAFE = ["0", "-1", "31", "x", "", "9" * 50]
MNS = [
    ("/queues", []),
    ("/queues/{name}", ["metaoverride"]),
    ("/queues/{name}/messages", ["numOfMessages", "peekonly", "receiptHandle", "visibilityTimeout"]),
    ("/topics", []),
    ("/topics/{name}", ["metaoverride"]),
    ("/topics/{name}/messages", []),
    ("/topics/{name}/subscriptions", []),
    ("/topics/{name}/subscriptions/{name}", ["metaoverride"]),
    ("/mns/messages/{name}/deliveries", []),
    ("/mns/dead-letters", []),
    ("/mns/deliveries/{name}/redeliver", []),
    ("/mns/signing-cert.pem", []),
]
mns_names = st.one_of(
    st.sampled_from(["q1", "t1", "sub", "Q-2", "", "a" * 300, "1abc", "dlq"]),
    st.text(alphabet="abcXYZ09-_.~", max_size=130),
)
XML = [
    "<Queue><VisibilityTimeout>{n}</VisibilityTimeout><MaximumMessageSize>{n}</MaximumMessageSize>"
    "<MessageRetentionPeriod>{n}</MessageRetentionPeriod><DelaySeconds>{n}</DelaySeconds>"
    "<PollingWaitSeconds>{w}</PollingWaitSeconds></Queue>",
    "<Message><MessageBody>{t}</MessageBody><DelaySeconds>{n}</DelaySeconds><Priority>{n}</Priority></Message>",
    "<Messages><Message><MessageBody>{t}</MessageBody></Message><Message><MessageBody>{t}</MessageBody></Message></Messages>",
    "<ReceiptHandles><ReceiptHandle>{t}</ReceiptHandle></ReceiptHandles>",
    "<Topic><MaximumMessageSize>{n}</MaximumMessageSize><LoggingEnabled>{t}</LoggingEnabled></Topic>",
    "<Subscription><Endpoint>{e}</Endpoint><NotifyStrategy>{t}</NotifyStrategy>"
    "<NotifyContentFormat>{t}</NotifyContentFormat><FilterTag>{t}</FilterTag></Subscription>",
    "<Message><MessageBody>{t}</MessageBody><MessageTag>{t}</MessageTag></Message>",
    '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]><Message><MessageBody>&b;</MessageBody></Message>',
]
xml_text = st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), max_size=20).map(
    lambda t: t.replace("&", "&amp;").replace("<", "&lt;")
)


@st.composite
def mns_body(draw: st.DrawFn) -> bytes:
    kind = draw(st.integers(0, 3))
    if kind == 0:
        return b""
    if kind == 1:
        return draw(st.binary(max_size=64))
    template = draw(st.sampled_from(XML))
    return template.format(
        n=draw(st.sampled_from(["0", "-1", "1", "30", "65536", "999999999999999999999", "x", ""])),
        w=draw(st.sampled_from(LONG_POLL_SAFE)),
        t=draw(xml_text),
        e=draw(
            st.sampled_from(
                ["http://127.0.0.1:9/h", "acs:mns:r:acme:queues/q1", "acs:mns:r:other:queues/q1", "ftp://x", "x"]
            )
        ),
    ).encode()


# --- checks -------------------------------------------------------------------------------


def check_native(status: int, content_type: str, data: bytes, what: str) -> None:
    TALLY.add(status)
    assert status < 500, what
    if status >= 400:
        assert content_type.startswith("application/json"), (what, status, data[:200])
        body = json.loads(data)
        # InvalidParameter also lists every {field, reason} it found; no other error has "errors".
        expected = {"code", "message", "request_id"} | ({"errors"} if body.get("code") == "InvalidParameter" else set())
        assert set(body) == expected and body["code"] and body["request_id"], (what, body)
        for error in body.get("errors", []):
            assert set(error) == {"field", "reason"} and isinstance(error["field"], str) and error["reason"], (
                what,
                body,
            )
        assert body.get("errors", [None]), (what, body)  # never an empty list


def check_mns(status: int, content_type: str, data: bytes, what: str) -> None:
    TALLY.add(status)
    assert status < 500, what
    if status >= 400:
        assert content_type.startswith("text/xml"), (what, status, data[:200])
        root = ElementTree.fromstring(data)
        fields = {el.tag.rpartition("}")[2]: el.text for el in root}
        assert root.tag.endswith("Error") and all(fields.get(k) for k in ("Code", "Message", "RequestId", "HostId")), (
            what,
            data,
        )


# --- properties ---------------------------------------------------------------------------


@st.composite
def native_request(draw: st.DrawFn, target: Target) -> tuple[str, str, bytes, dict[str, str]]:
    method, template, params, has_body = draw(st.sampled_from(NATIVE))
    if draw(st.integers(0, 9)) == 0:
        method = draw(st.sampled_from(NATIVE_METHODS))  # also the methods a route does not take
    path = template
    while "{id}" in path:
        value = draw(
            st.one_of(
                st.sampled_from([target.job_id, target.pipeline_id, "out", "snap/a/00001.jpg", "default"]), segment
            )
        )
        path = path.replace("{id}", value, 1)
    query = draw(query_string(params))
    body = draw(json_bodies) if has_body or draw(st.integers(0, 9)) == 0 else b""
    headers = (
        native_auth(target.key)
        if draw(st.integers(0, 9))
        else {
            "Authorization": draw(
                st.sampled_from(
                    ["", "Basic", "Basic !!!", "Bearer x", "Basic " + base64.b64encode(b"FUZZKEY:wrong").decode()]
                )
            )
        }
    )
    if body:
        headers["Content-Type"] = draw(
            st.sampled_from(["application/json", "application/json", "text/plain", "application/x-www-form-urlencoded"])
        )
    if draw(st.integers(0, 4)) == 0:
        headers["Idempotency-Key"] = draw(st.text(alphabet="abcdef0123456789-", max_size=80))
    if draw(st.integers(0, 4)) == 0:
        # printable, no surrounding blanks: the clients refuse to send anything else as a header value
        request_id = draw(st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), max_size=200))
        if request_id:
            headers["X-Request-Id"] = request_id
    return method, path + (f"?{query}" if query else ""), body, headers


@st.composite
def mns_request(draw: st.DrawFn, target: Target) -> tuple[str, str, bytes, dict[str, str]]:
    template, params = draw(st.sampled_from(MNS))
    path = template
    while "{name}" in path:
        path = path.replace("{name}", quote(draw(mns_names), safe=""), 1)
    method = draw(st.sampled_from(["GET", "PUT", "POST", "DELETE", "GET", "PUT"]))
    pairs = draw(
        st.lists(
            st.tuples(
                st.one_of(st.sampled_from([*params, "waitseconds"]), st.text(alphabet="abcxyz", max_size=6)),
                st.one_of(query_values, st.sampled_from(LONG_POLL_SAFE)),
            ),
            max_size=3,
        )
    )
    pairs = [(k, v if k.lower() != "waitseconds" else draw(st.sampled_from(LONG_POLL_SAFE))) for k, v in pairs]
    query = "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in pairs)
    full = path + (f"?{query}" if query else "")
    body = draw(mns_body())
    content_type = "text/xml;charset=UTF-8" if body else ""
    if draw(st.integers(0, 9)):
        headers = mns_headers(target.key, method, full, body, content_type)
    else:
        headers = {
            "Authorization": draw(st.sampled_from(["", "MNS", "MNS x:y", "MNS FUZZKEY:bad"])),
            "Date": draw(st.sampled_from(["", "yesterday", formatdate(usegmt=True)])),
        }
    return method, full, body, headers


def run(target: Target, request: tuple[str, str, bytes, dict[str, str]]) -> None:
    method, path, body, headers = request
    resp = target.flask_app.test_client().open(path, method=method, data=body, headers=headers)
    checker = check_mns if path.startswith(MNS_ROOTS) else check_native
    checker(resp.status_code, resp.content_type or "", resp.get_data(), f"{method} {path[:200]}")


@given(data=st.data())
def test_native_endpoints_never_500_and_answer_json(target: Target, data: st.DataObject) -> None:
    run(target, data.draw(native_request(target)))


@given(data=st.data())
def test_mns_endpoints_never_500_and_answer_mns_xml(target: Target, data: st.DataObject) -> None:
    run(target, data.draw(mns_request(target)))


@given(data=st.data())
def test_any_path_and_method_never_500(target: Target, data: st.DataObject) -> None:
    """Paths no route has, methods routes do not take, across both dialects' roots."""
    # (Not the vendor dialects' roots, "/" with an Action, /v1/...: they answer in their own formats.)
    root = data.draw(st.sampled_from(["/api/v1", "/api", "/queues", "/topics", "/mns", "/objects", "/x", "/api/v2"]))
    rest = "/".join(data.draw(st.lists(segment, max_size=4)))
    method = data.draw(st.sampled_from(["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD"]))
    query = data.draw(query_string(["limit", "wait", "page", "state", "numOfMessages", "waitseconds"]))
    query = "&".join(
        p for p in query.split("&") if not p.lower().startswith("waitseconds=") or p.split("=", 1)[1] in LONG_POLL_SAFE
    )
    path = f"{root}/{rest}"
    if path.startswith("//"):  # the test client would read "//host/..." as an authority, not a path
        path = "/x" + path
    path += f"?{query}" if query else ""
    headers = (
        native_auth(target.key) if not path.startswith(MNS_ROOTS) else mns_headers(target.key, method, path, b"", "")
    )
    resp = target.flask_app.test_client().open(path, method=method, headers=headers)
    if method == "HEAD":
        TALLY.add(resp.status_code)
        assert resp.status_code < 500
        return
    checker = check_mns if path.startswith(MNS_ROOTS) else check_native
    checker(resp.status_code, resp.content_type or "", resp.get_data(), f"{method} {path[:200]}")


@given(data=st.data())
def test_a_served_app_never_500(target: Target, served: str, data: st.DataObject) -> None:
    """The same requests over a real socket (werkzeug's threaded server), a handful per run."""
    use_mns = data.draw(st.booleans())
    method, path, body, headers = data.draw(mns_request(target) if use_mns else native_request(target))
    if "?" in path:  # httpx would re-encode a query it did not build; keep the signed target intact
        path, _, query = path.partition("?")
        url = httpx.URL(served + path, query=query.encode())
    else:
        url = httpx.URL(served + path)
    resp = httpx.request(method, url, content=body, headers=headers, timeout=30)
    sent = resp.request.url.path  # what went over the wire (httpx removes dot segments: /queues/.. is /)
    checker = check_mns if sent.startswith(MNS_ROOTS) else check_native
    checker(resp.status_code, resp.headers.get("content-type", ""), resp.content, f"{method} {path[:200]}")


@pytest.fixture(scope="module")
def served(target: Target) -> Iterator[str]:
    server, url = serve_wsgi(target.flask_app)
    yield url
    server.shutdown()
    server.server_close()
