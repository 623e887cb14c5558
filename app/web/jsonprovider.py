"""Flask's JSON responses written by orjson: the same bytes' meaning, a fifth of the cost.

A submission's response is one of its larger costs in Python (``bench/load.py``). orjson is
asked for what Flask's default provider gives: keys sorted, compact, a trailing newline, and the
same conversions for what JSON has no type for (dates as HTTP dates, dataclasses as dicts,
decimals and UUIDs as strings: Flask's own ``default``, which orjson is made to defer to).
Non-ASCII text is written as UTF-8 rather than ``\\u`` escapes, which every JSON parser reads
alike. A value orjson refuses (an integer beyond 64 bits, a lone surrogate) falls back to Flask's
provider, so nothing serialises differently from before except byte-for-byte.
"""

from __future__ import annotations

from typing import Any

import orjson
from flask import Response
from flask.json.provider import DefaultJSONProvider

_OPTIONS = (
    orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
)


class OrjsonProvider(DefaultJSONProvider):
    def _fast(self, obj: Any) -> bytes | None:
        try:
            return orjson.dumps(obj, default=self.default, option=_OPTIONS)
        except TypeError:  # orjson.JSONEncodeError: what Python's json may still write
            return None

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        if not kwargs:
            fast = self._fast(obj)
            if fast is not None:
                return fast.decode()
        return super().dumps(obj, **kwargs)

    def response(self, *args: Any, **kwargs: Any) -> Response:
        if self._app.debug or self.compact is False:  # indented output: Flask's own
            return super().response(*args, **kwargs)
        fast = self._fast(self._prepare_response_obj(args, kwargs))
        if fast is None:
            return super().response(*args, **kwargs)
        return self._app.response_class(fast + b"\n", mimetype=self.mimetype)
