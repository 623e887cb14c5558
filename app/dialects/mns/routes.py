"""The MNS REST dialect: ``/queues/...`` and ``/topics/...`` as aliyun-mns-sdk 1.3.0 calls them.

Mounted at the application root (the SDK builds absolute paths from the account endpoint). Each
route accepts every method and dispatches itself, so an unsupported method gets MNS's own
``MethodNotAllowed``; every other error is rendered by ``errors.render_error`` through the shell. openmps extensions live under ``/mns/``: the push signing
certificate (unauthenticated: receivers fetch it), the delivery log, dead letters and redelivery.
"""

from __future__ import annotations

import functools
import logging

from flask import Blueprint, Response, request

from app.core.errors import DomainError
from app.dialects.mns import render, schema
from app.dialects.mns.auth import mns_scheme
from app.dialects.mns.errors import MnsError, from_domain, invalid_argument, method_not_allowed
from app.dialects.mns.responses import xml_response
from app.gateway.dialect import DialectServices
from app.gateway.gate import Caller
from app.gateway.raw import RawRequest
from app.notify.delivery import DeliveryStore
from app.notify.queues import QueueAttributes, QueueStore
from app.notify.signing import CERT_PATH, load_signing_key
from app.notify.ssrf import EndpointGuard
from app.notify.topics import TopicAttributes, TopicStore

log = logging.getLogger(__name__)
ALL_METHODS = ["GET", "PUT", "POST", "DELETE"]


def create_blueprint(services: DialectServices) -> Blueprint:
    bp = Blueprint("mns", __name__)
    deliveries = DeliveryStore(services.redis)
    guard = EndpointGuard(allow_private=services.settings.allow_private_endpoints)

    def authenticate() -> Caller:
        """The caller; its tenant is the MNS account whose queues and topics it sees."""
        return services.gate.admit(RawRequest.from_flask(request), mns_scheme)

    def queues() -> QueueStore:
        return QueueStore(services.redis, authenticate().tenant)

    def topics() -> TopicStore:
        return TopicStore(services.redis, authenticate().tenant, deliveries, guard, services.sealer)

    # The key is created once (SET NX) and never replaced, so its certificate is read and the
    # private key parsed once per process, not on every fetch by a receiver.
    @functools.cache
    def certificate_pem() -> bytes:
        return load_signing_key(services.redis, services.sealer).certificate_pem

    @bp.route(CERT_PATH, methods=["GET"])
    def signing_cert() -> Response:
        return Response(certificate_pem(), 200, content_type="application/x-pem-file")

    # -- queues --------------------------------------------------------------------------------

    @bp.route("/queues", methods=ALL_METHODS)
    def queue_list() -> Response:
        _only("GET")
        store = queues()
        names = store.list(request.headers.get("x-mns-prefix", ""))
        return _ok(render.url_list("Queues", "Queue", "QueueURL", [_url(f"queues/{n}") for n in names]))

    @bp.route("/queues/<name>", methods=ALL_METHODS)
    def queue(name: str) -> Response:
        store = queues()
        if request.method == "PUT":
            if "metaoverride" in _query():
                store.set_attributes(name, schema.queue_attributes(request.get_data(), store.attributes(name)))
                return _ok(b"", 204)
            created = store.create(name, schema.queue_attributes(request.get_data(), QueueAttributes()))
            return _ok(b"", 201 if created else 204, location=_url(f"queues/{name}"))
        if request.method == "DELETE":
            store.delete(name)
            return _ok(b"", 204)
        _only("PUT", "DELETE", "GET")
        return _ok(render.queue_info(store.info(name)))

    @bp.route("/queues/<name>/messages", methods=ALL_METHODS)
    def queue_messages(name: str) -> Response:
        store = queues()
        q = _query()
        if request.method == "POST":
            messages, batch = schema.queue_messages(request.get_data())
            # The batch size is the model's to check (InvalidParameter -> InvalidArgument 400).
            return _ok(render.sent(store.send_batch(name, messages), batch=batch), 201)
        if request.method == "GET":
            count = _int_param(q, "numofmessages")
            batch = count is not None
            if q.get("peekonly", "").lower() == "true":
                return _ok(render.received(store.peek(name, count or 1), batch=batch, peek=True))
            found = store.receive(name, count or 1, _int_param(q, "waitseconds"))
            return _ok(render.received(found, batch=batch, peek=False))
        if request.method == "PUT":
            handle = _required(q, "receipthandle", "MissingReceiptHandle")
            _required(q, "visibilitytimeout", "MissingVisibilityTimeout")
            new_handle, next_visible = store.change_visibility(name, handle, _int_param(q, "visibilitytimeout") or 0)
            return _ok(render.change_visibility(new_handle, next_visible))
        _only("POST", "GET", "PUT", "DELETE")
        if "receipthandle" in q:
            store.delete_message(name, _required(q, "receipthandle", "MissingReceiptHandle"))
            return _ok(b"", 204)
        handles = schema.receipt_handles(request.get_data())
        failed = store.delete_batch(name, handles)
        if not failed:
            return _ok(b"", 204)
        errors = [
            (h, from_domain(e).code if isinstance(e, DomainError) else "InternalError", str(e)) for h, e in failed
        ]
        return _ok(render.batch_delete_errors(errors), 404)

    # -- topics --------------------------------------------------------------------------------

    @bp.route("/topics", methods=ALL_METHODS)
    def topic_list() -> Response:
        _only("GET")
        names = topics().list(request.headers.get("x-mns-prefix", ""))
        return _ok(render.url_list("Topics", "Topic", "TopicURL", [_url(f"topics/{n}") for n in names]))

    @bp.route("/topics/<name>", methods=ALL_METHODS)
    def topic(name: str) -> Response:
        store = topics()
        if request.method == "PUT":
            if "metaoverride" in _query():
                store.set_attributes(name, schema.topic_attributes(request.get_data(), store.attributes(name)))
                return _ok(b"", 204)
            created = store.create(name, schema.topic_attributes(request.get_data(), TopicAttributes()))
            return _ok(b"", 201 if created else 204, location=_url(f"topics/{name}"))
        if request.method == "DELETE":
            store.delete(name)
            return _ok(b"", 204)
        _only("PUT", "DELETE", "GET")
        return _ok(render.topic_info(store.info(name)))

    @bp.route("/topics/<name>/messages", methods=ALL_METHODS)
    def topic_messages(name: str) -> Response:
        _only("POST")
        store = topics()
        msg = schema.topic_message(request.get_data())
        return _ok(render.sent([store.publish(name, msg.body, msg.tag)], batch=False), 201)

    @bp.route("/topics/<name>/subscriptions", methods=ALL_METHODS)
    def subscription_list(name: str) -> Response:
        _only("GET")
        subs = topics().subscriptions(name)
        urls = [_url(f"topics/{name}/subscriptions/{s.name}") for s in subs]
        return _ok(render.url_list("Subscriptions", "Subscription", "SubscriptionURL", urls))

    @bp.route("/topics/<name>/subscriptions/<sub>", methods=ALL_METHODS)
    def subscription(name: str, sub: str) -> Response:
        store = topics()
        if request.method == "PUT":
            if "metaoverride" in _query():
                current = store.subscription(name, sub)
                spec = schema.subscription(request.get_data(), current.spec)
                store.set_subscription(name, sub, spec.notify_strategy)
                return _ok(b"", 204)
            created = store.subscribe(name, sub, schema.subscription(request.get_data(), None))
            return _ok(b"", 201 if created else 204, location=_url(f"topics/{name}/subscriptions/{sub}"))
        if request.method == "DELETE":
            store.unsubscribe(name, sub)
            return _ok(b"", 204)
        _only("PUT", "DELETE", "GET")
        return _ok(render.subscription_info(store.account, store.subscription(name, sub)))

    # -- openmps extensions: delivery log, dead letters, redelivery -------------------------

    @bp.route("/mns/messages/<message_id>/deliveries", methods=ALL_METHODS)
    def message_deliveries(message_id: str) -> Response:
        _only("GET")
        account = authenticate().tenant
        found = [d for d in deliveries.for_message(message_id) if d.account == account]
        return _ok(render.deliveries([(d, deliveries.log(d.id)) for d in found]))

    @bp.route("/mns/dead-letters", methods=ALL_METHODS)
    def dead_letters() -> Response:
        _only("GET")
        account = authenticate().tenant
        found = [d for d in deliveries.dead_letters(500) if d.account == account]
        return _ok(render.deliveries([(d, deliveries.log(d.id)) for d in found]))

    @bp.route("/mns/deliveries/<delivery_id>/redeliver", methods=ALL_METHODS)
    def redeliver(delivery_id: str) -> Response:
        _only("POST")
        account = authenticate().tenant
        if deliveries.get(delivery_id).account != account:
            raise MnsError("MessageNotExist", "No such delivery.", 404)
        d = deliveries.redeliver(delivery_id)
        return _ok(render.deliveries([(d, deliveries.log(d.id))]))

    return bp


def _ok(body: bytes, status: int = 200, location: str | None = None) -> Response:
    return xml_response(body, status, location)


def _url(path: str) -> str:
    return f"{request.host_url}{path}"


def _only(*allowed: str) -> None:
    """Refuse a method the route does not serve: ``allowed`` lists every one it does, for the
    405's ``Allow`` header; the view has already answered the others before calling this."""
    if request.method not in allowed:
        raise method_not_allowed(*allowed)


def _query() -> dict[str, str]:
    return schema.raw_query(request.query_string)


def _required(q: dict[str, str], name: str, code: str) -> str:
    value = q.get(name, "")
    if not value:
        raise MnsError(code, f"The {name} parameter is missing.", 400)
    return value


def _int_param(q: dict[str, str], name: str) -> int | None:
    raw = q.get(name)
    if raw is None or raw == "":
        return None
    try:
        return int(raw)
    except ValueError:
        raise invalid_argument(f"The value of {name} must be an integer, got {raw!r}.") from None
