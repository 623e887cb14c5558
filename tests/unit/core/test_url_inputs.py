"""A URL as a job's input: the core's shape rules, redaction, serialisation and the fingerprint."""

from dataclasses import replace

import pytest

from app.core.errors import InvalidParameter
from app.core.service import SubmitRequest, request_fingerprint
from app.core.specs import (
    MAX_URL_CHARS,
    ObjectRef,
    OutputTarget,
    SingleTime,
    SnapshotSpec,
    UrlSource,
    input_location,
    redact_url,
    spec_from_dict,
    spec_to_dict,
    url_problem,
    validate_spec,
)

URL = "https://cdn.example.com/videos/v.mp4?X-Token=abc&e=99"
SPEC = SnapshotSpec(UrlSource(URL), SingleTime(1000), OutputTarget("out", "{job_id}.jpg"))


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com/v.mp4",
        "https://example.com:8443/a/b.mp4?sig=x%20y",
        "http://127.0.0.1:9000/v.mp4",  # shape only: the endpoint policy judges the address
        "http://[2001:db8::1]/v.mp4",
        "https://example.com",
        "https://example.com/" + "a" * (MAX_URL_CHARS - len("https://example.com/")),
    ],
)
def test_well_formed_http_urls_pass(url: str) -> None:
    assert url_problem(url) is None
    validate_spec(replace(SPEC, input=UrlSource(url)))


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("", "is required"),
        (42, "must be a string"),
        ("ftp://example.com/v.mp4", "http:// or https://"),
        ("file:///etc/passwd", "http:// or https://"),
        ("https:///v.mp4", "with a host"),
        ("example.com/v.mp4", "http:// or https://"),
        ("https://example.com/" + "a" * MAX_URL_CHARS, f"it has {MAX_URL_CHARS + 20}"),
        ("https://user:pw@example.com/v.mp4", "must not carry credentials"),
        ("https://token@example.com/v.mp4", "must not carry credentials"),
        ("https://example.com/a b.mp4", "without spaces"),
        ("https://example.com/v.mp4\r\nX-Evil: 1", "without spaces"),
        ("https://exämple.com/v.mp4", "printable ASCII"),
        ("http://[::1/v.mp4", "does not parse"),
        ("http://example.com:99999/v.mp4", "does not parse"),
    ],
)
def test_malformed_urls_are_refused_with_the_field_named(url: object, reason: str) -> None:
    problem = url_problem(url)
    assert problem is not None and reason in problem, problem
    with pytest.raises(InvalidParameter) as caught:
        validate_spec(replace(SPEC, input=UrlSource(url)))  # type: ignore[arg-type]
    assert caught.value.field == "input.url" and reason in caught.value.reason


def test_redaction_drops_the_query_and_fragment_only() -> None:
    assert redact_url(URL) == "https://cdn.example.com/videos/v.mp4"
    assert redact_url("http://h/v.mp4#t=5") == "http://h/v.mp4"
    assert redact_url("http://h/v.mp4") == "http://h/v.mp4"


def test_a_url_input_round_trips_and_says_where_it_is() -> None:
    data = spec_to_dict(SPEC)
    assert data["input"] == {"url": URL}  # kept as given, query and all: the job belongs to its tenant
    assert spec_from_dict(data) == SPEC
    object_spec = replace(SPEC, input=ObjectRef("media", "v.mp4"))
    assert spec_from_dict(spec_to_dict(object_spec)) == object_spec
    assert input_location(SPEC.input) == ("", URL)
    assert input_location(object_spec.input) == ("media", "v.mp4")


def test_the_idempotency_fingerprint_covers_the_url() -> None:
    first = request_fingerprint("acme", SubmitRequest(spec=SPEC))
    assert first == request_fingerprint("acme", SubmitRequest(spec=SnapshotSpec(**vars(SPEC))))
    other_token = replace(SPEC, input=UrlSource(URL.replace("abc", "abd")))
    assert request_fingerprint("acme", SubmitRequest(spec=other_token)) != first
    # A URL and an object input never collide, whatever their text.
    as_object = replace(SPEC, input=ObjectRef("cdn.example.com", URL))
    assert request_fingerprint("acme", SubmitRequest(spec=as_object)) != first
