"""Malformed MNS requests get MNS's XML error with the right code and status, never a 500.

Requests are signed here by an independent implementation of the MNS scheme (not the code under
test), so a signing bug on either side would show up as a mismatch."""

from __future__ import annotations

import base64
import hashlib
import hmac
from email.utils import formatdate
from xml.etree import ElementTree

import httpx
from mns.account import Account
from mns.queue import QueueMeta

from tests.integration.notify.conftest import AK, SK, MnsServer

NS = "{http://mns.aliyuncs.com/doc/v1/}"


def _request(
    server: MnsServer,
    method: str,
    target: str,
    body: bytes = b"",
    *,
    secret: str = SK,
    ak: str = AK,
    date: str | None = None,
    md5: str | None = None,
    auth: str | None = None,
) -> httpx.Response:
    headers = {"x-mns-version": "2015-06-06", "date": date or formatdate(usegmt=True)}
    if body:
        headers["content-type"] = "text/xml;charset=UTF-8"
        headers["content-md5"] = md5 or base64.b64encode(hashlib.md5(body).hexdigest().encode()).decode()
    text = "\n".join([method, headers.get("content-md5", ""), headers.get("content-type", ""), headers["date"], ""])
    text += "".join(f"{k}:{v}\n" for k, v in sorted(headers.items()) if k.startswith("x-mns-")) + target
    sig = base64.b64encode(hmac.new(secret.encode(), text.encode(), hashlib.sha1).digest()).decode()
    headers["authorization"] = auth if auth is not None else f"MNS {ak}:{sig}"
    if auth == "":
        del headers["authorization"]
    return httpx.request(method, server.url + target, content=body, headers=headers)


def _error(resp: httpx.Response) -> str:
    root = ElementTree.fromstring(resp.content)
    assert root.tag == f"{NS}Error"
    fields = {c.tag.removeprefix(NS): c.text for c in root}
    assert set(fields) == {"Code", "Message", "RequestId", "HostId"} and all(fields.values())
    assert resp.headers["x-mns-request-id"] == fields["RequestId"]
    return str(fields["Code"])


CASES = [
    (
        "bad XML",
        dict(method="POST", target="/queues/q1/messages", body=b"<Message><MessageBody>x</Mess"),
        400,
        "MalformedXML",
    ),
    ("wrong root", dict(method="POST", target="/queues/q1/messages", body=b"<Nope/>"), 400, "MalformedXML"),
    ("empty body", dict(method="POST", target="/topics/t1/messages"), 400, "MalformedXML"),
    (
        "subscription without Endpoint",
        dict(method="PUT", target="/topics/t1/subscriptions/s", body=b"<Subscription/>"),
        400,
        "InvalidArgument",
    ),
    ("bad signature", dict(method="GET", target="/queues/q1", secret="wrong"), 403, "SignatureDoesNotMatch"),
    ("expired Date", dict(method="GET", target="/queues/q1", date="Sat, 21 Nov 2020 09:33:48 GMT"), 408, "TimeExpired"),
    ("garbage Date", dict(method="GET", target="/queues/q1", date="yesterday"), 400, "InvalidDateHeader"),
    ("no Authorization", dict(method="GET", target="/queues/q1", auth=""), 400, "MissingAuthorizationHeader"),
    ("odd Authorization", dict(method="GET", target="/queues/q1", auth="Basic abc"), 400, "InvalidAuthorizationHeader"),
    ("unknown key", dict(method="GET", target="/queues/q1", ak="nobody"), 403, "InvalidAccessKeyId"),
    (
        "bad Content-MD5",
        dict(method="POST", target="/queues/q1/messages", body=b"<Message/>", md5="AAAA"),
        400,
        "InvalidDegist",
    ),
    ("unknown queue", dict(method="GET", target="/queues/nope/messages?waitseconds=0"), 404, "QueueNotExist"),
    (
        "unknown topic",
        dict(method="POST", target="/topics/nope/messages", body=b"<Message><MessageBody>x</MessageBody></Message>"),
        404,
        "TopicNotExist",
    ),
    ("bad queue name", dict(method="PUT", target="/queues/1bad"), 400, "InvalidQueueName"),
    ("unsupported method", dict(method="POST", target="/queues/q1"), 405, "MethodNotAllowed"),
    (
        "forged receipt handle",
        dict(method="DELETE", target="/queues/q1/messages?ReceiptHandle=abc"),
        400,
        "ReceiptHandleError",
    ),
    (
        "missing visibility",
        dict(method="PUT", target="/queues/q1/messages?ReceiptHandle=abc"),
        400,
        "MissingVisibilityTimeout",
    ),
    ("non-integer wait", dict(method="GET", target="/queues/q1/messages?waitseconds=soon"), 400, "InvalidArgument"),
    ("wait over 30 s", dict(method="GET", target="/queues/q1/messages?waitseconds=99"), 400, "InvalidArgument"),
    (
        "priority 0",
        dict(
            method="POST",
            target="/queues/q1/messages",
            body=b"<Message><MessageBody>x</MessageBody><Priority>0</Priority></Message>",
        ),
        400,
        "InvalidArgument",
    ),
    (
        "too large",
        dict(
            method="POST",
            target="/queues/q1/messages",
            body=b"<Message><MessageBody>" + b"x" * 70000 + b"</MessageBody></Message>",
        ),
        400,
        "InvalidArgument",
    ),
    (
        "visibility out of range",
        dict(method="PUT", target="/queues/q2", body=b"<Queue><VisibilityTimeout>0</VisibilityTimeout></Queue>"),
        400,
        "InvalidArgument",
    ),
    (
        "batch of 17 messages",
        dict(
            method="POST",
            target="/queues/q1/messages",
            body=b"<Messages>" + b"<Message><MessageBody>x</MessageBody></Message>" * 17 + b"</Messages>",
        ),
        400,
        "InvalidArgument",
    ),
    (
        "batch delete of 17 handles",
        dict(
            method="DELETE",
            target="/queues/q1/messages",
            body=b"<ReceiptHandles>" + b"<ReceiptHandle>abc</ReceiptHandle>" * 17 + b"</ReceiptHandles>",
        ),
        400,
        "InvalidArgument",
    ),
    (
        "subscription to a metadata address",
        dict(
            method="PUT",
            target="/topics/t1/subscriptions/s",
            body=b"<Subscription><Endpoint>http://100.100.100.200/latest</Endpoint></Subscription>",
        ),
        400,
        "InvalidArgument",
    ),
]


def test_malformed_requests_get_mns_errors(mns_server: MnsServer) -> None:
    """One server for all cases (each is a single request); every mismatch is reported at once."""
    Account(mns_server.url, AK, SK).get_queue("q1").create(QueueMeta())
    assert _request(mns_server, "PUT", "/topics/t1").status_code == 201
    mismatches = []
    for label, request_args, status, code in CASES:
        resp = _request(mns_server, **request_args)  # type: ignore[arg-type]
        got = (resp.status_code, _error(resp))
        if got != (status, code):
            mismatches.append(f"{label}: expected {(status, code)}, got {got}")
    assert mismatches == []


def test_xml_entities_are_refused_not_expanded(mns_server: MnsServer) -> None:
    bomb = (
        b'<?xml version="1.0"?><!DOCTYPE m [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>'
        b"<Message><MessageBody>&b;</MessageBody></Message>"
    )
    resp = _request(mns_server, "POST", "/queues/q1/messages", body=bomb)
    assert resp.status_code == 400 and b"<Code>MalformedXML</Code>" in resp.content


def test_a_method_a_resource_does_not_serve_is_405_with_the_ones_it_does(mns_server: MnsServer) -> None:
    """RFC 9110 asks every 405 for ``Allow``; the MNS error body stays MNS's own."""
    Account(mns_server.url, AK, SK).get_queue("q1").create(QueueMeta())
    for method, target, allowed in [
        ("POST", "/queues/q1", {"PUT", "DELETE", "GET"}),
        ("DELETE", "/queues", {"GET"}),
        ("GET", "/topics/t1/messages", {"POST"}),
        ("PATCH", "/queues/q1/messages", {"POST", "GET", "PUT", "DELETE"}),  # no route serves PATCH
    ]:
        resp = _request(mns_server, method, target)
        assert (resp.status_code, _error(resp)) == (405, "MethodNotAllowed"), (method, target)
        served = {m.strip() for m in resp.headers["Allow"].split(",")}
        assert served == allowed if method != "PATCH" else allowed <= served - {"PATCH"}, (method, target, served)
