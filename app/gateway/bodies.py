"""Request bodies checked before they are parsed.

``json.loads`` recurses once per nesting level, so ``"[" * 400_000`` (well inside the 1 MiB body
limit) raises ``RecursionError`` out of any JSON parser call, ``get_json(silent=True)``
included. The web shell refuses JSON bodies nested deeper than ``MAX_JSON_DEPTH`` before any
dialect parses them (``app.web``); a dialect that parses JSON sent under another content type
calls ``check_json_depth`` itself.
"""

from __future__ import annotations

from app.core.errors import InvalidParameter

MAX_JSON_DEPTH = 32  # request bodies of every dialect nest 5 levels or fewer

_QUOTE, _BACKSLASH = ord('"'), ord("\\")
_OPEN = frozenset(b"[{")
_CLOSE = frozenset(b"]}")


def json_depth_exceeds(data: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether ``data`` nests arrays/objects deeper than ``limit`` (brackets inside strings do
    not count). Stops at the first level past the limit, and skips the scan when the body holds
    too few brackets to get there."""
    if data.count(b"[") + data.count(b"{") <= limit:
        return False
    depth = 0
    in_string = escaped = False
    for byte in data:
        if in_string:
            if escaped:
                escaped = False
            elif byte == _BACKSLASH:
                escaped = True
            elif byte == _QUOTE:
                in_string = False
        elif byte == _QUOTE:
            in_string = True
        elif byte in _OPEN:
            depth += 1
            if depth > limit:
                return True
        elif byte in _CLOSE:
            depth -= 1
    return False


def check_json_depth(data: bytes, limit: int = MAX_JSON_DEPTH) -> None:
    if json_depth_exceeds(data, limit):
        raise InvalidParameter("", f"the JSON body is nested deeper than {limit} levels")
