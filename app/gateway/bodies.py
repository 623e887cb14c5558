"""Request bodies checked before they are parsed.

``json.loads`` recurses once per nesting level, so ``"[" * 400_000`` (well inside the 1 MiB body
limit) raises ``RecursionError`` out of any JSON parser call, ``get_json(silent=True)``
included. The web shell refuses JSON bodies nested deeper than ``MAX_JSON_DEPTH`` before any
dialect parses them (``app.web``); a dialect that parses JSON sent under another content type
calls ``check_json_depth`` itself.
"""

from __future__ import annotations

import re

from app.core.errors import InvalidParameter

MAX_JSON_DEPTH = 32  # request bodies of every dialect nest 5 levels or fewer

# A complete JSON string: quote, then runs of plain bytes or escapes, then quote (possessive, so
# the scan is linear on any input).
_STRING = re.compile(rb'"(?:[^"\\]++|\\.)*+"', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_OPEN = frozenset(b"[{")


def json_depth_exceeds(data: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether ``data`` nests arrays/objects deeper than ``limit`` (brackets inside strings do
    not count; an unterminated string runs to the end). Skips the scan when the body holds too
    few brackets to get there; otherwise strings are cut out and everything but brackets dropped
    in C, so the Python loop runs once per bracket rather than once per byte (a batch of 100
    jobs is ~30 KB with ~400 brackets)."""
    if data.count(b"[") + data.count(b"{") <= limit:
        return False
    outside = _STRING.sub(b"", data)
    quote = outside.find(b'"')
    if quote >= 0:
        outside = outside[:quote]
    depth = 0
    for byte in outside.translate(None, _NOT_BRACKETS):
        if byte in _OPEN:
            depth += 1
            if depth > limit:
                return True
        else:
            depth -= 1
    return False


def check_json_depth(data: bytes, limit: int = MAX_JSON_DEPTH) -> None:
    if json_depth_exceeds(data, limit):
        raise InvalidParameter("", f"the JSON body is nested deeper than {limit} levels")
