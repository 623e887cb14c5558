"""The JSON depth check: the same answer as a byte-by-byte scan, on any input."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from app.gateway.bodies import MAX_JSON_DEPTH, json_depth_exceeds


def reference(data: bytes, limit: int) -> bool:
    """The straightforward scanner (what ``json_depth_exceeds`` did before it cut strings out in C)."""
    depth = 0
    in_string = escaped = False
    for byte in data:
        if in_string:
            if escaped:
                escaped = False
            elif byte == ord("\\"):
                escaped = True
            elif byte == ord('"'):
                in_string = False
        elif byte == ord('"'):
            in_string = True
        elif byte in b"[{":
            depth += 1
            if depth > limit:
                return True
        elif byte in b"]}":
            depth -= 1
    return False


@settings(max_examples=400)
@given(st.lists(st.sampled_from([b"[", b"]", b"{", b"}", b'"', b"\\", b"a", b":", b",", b"\n"]), max_size=80))
def test_same_answer_as_a_byte_scan(pieces: list[bytes]) -> None:
    data = b"".join(pieces)
    for limit in (0, 1, 2, 5):
        assert json_depth_exceeds(data, limit) == reference(data, limit)


def test_brackets_inside_strings_and_escapes_do_not_count() -> None:
    deep = b"[" * (MAX_JSON_DEPTH + 1) + b"]" * (MAX_JSON_DEPTH + 1)
    assert json_depth_exceeds(deep)
    assert not json_depth_exceeds(b'{"a": "' + deep.replace(b"]", b'\\"]') + b'"}')
    assert json_depth_exceeds(b'{"a": "\\\\"' + deep + b"}")  # an escaped backslash ends the string
    assert not json_depth_exceeds(b'{"a": "unterminated ' + deep)


def test_a_batch_of_a_hundred_jobs_is_fine() -> None:
    job = b'{"input": {"bucket": "media", "key": "in/v.mp4"}, "output": {"bucket": "m", "key": "k"}}'
    assert not json_depth_exceeds(b'{"jobs": [' + b",".join([job] * 100) + b"]}")
