"""Pydantic at the HTTP edge, strictly: the JSON field types the native models are built from,
and their validation errors as one ``InvalidParameter`` naming every problem.

Strict means a string is never a number, ``true`` never 1, and every number finite and bounded
before anything converts it (a 401-digit integer must not reach ``float``). JSON ``5.0`` is the
integer 5, as JSON Schema counts integers and as this API always took it. Every reason is worded
as this API words them ("must be in [1, 100], got 0"), the same sentence the core's own checks
(``app.core.specs``) would give, and each check documents itself in the JSON Schema.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    ValidationError,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, ErrorDetails, PydanticCustomError, core_schema

from app.core.errors import InvalidParameter
from app.core.specs import shown

# No native field needs a number this large; bounding integers before anything converts them to
# float keeps a 401-digit integer from overflowing ``math.isfinite`` (an OverflowError, a 500).
MAX_NUMBER = 10**15


def refuse(reason: str) -> PydanticCustomError:
    """A validation error whose reason is already in this API's words ("must be ...")."""
    return PydanticCustomError("openmps", "{reason}", {"reason": reason})


def _integer(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise refuse(f"must be an integer, got {shown(value)}")
    if isinstance(value, float):
        if not (math.isfinite(value) and value.is_integer() and abs(value) <= MAX_NUMBER):
            raise refuse(f"must be an integer, got {shown(value)}")  # NaN and Infinity too
        value = int(value)
    if not -MAX_NUMBER <= value <= MAX_NUMBER:  # compared as integers: no float conversion
        raise refuse(f"must be an integer within ±{MAX_NUMBER:g}, got {shown(value)}")
    return value


def _number(value: Any) -> Any:
    finite = isinstance(value, int) or (isinstance(value, float) and math.isfinite(value))
    if isinstance(value, bool) or not finite or not -MAX_NUMBER <= value <= MAX_NUMBER:
        raise refuse(f"must be a finite number of at most {MAX_NUMBER:g}, got {shown(value)}")
    return float(value)


def _text(value: str) -> str:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # JSON "\ud800": a lone surrogate no store can encode
        raise refuse("is not valid Unicode text") from None
    return value


def core_rule(problem: Callable[[str], str | None]) -> Callable[[str], str]:
    """A core name rule (``app.core.names``) run inside the model, so it is reported with the rest."""

    def check(value: str) -> str:
        found = problem(value)
        if found:
            raise refuse(found)
        return value

    return check


def _g(x: float) -> str:
    return f"{x:g}"


@dataclass(frozen=True)
class Range:
    """Annotated metadata: a number in ``[lo, hi]`` (``(lo, hi]`` with ``open_low``), refused in
    this API's words (``below``/``above`` may phrase the two ends as the core does) and
    documented as ``minimum``/``exclusiveMinimum`` and ``maximum``."""

    lo: float
    hi: float
    open_low: bool = False
    words: str = "must be in [{lo}, {hi}], got {got}"
    below: str = ""
    above: str = ""

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        return core_schema.no_info_after_validator_function(self._check, handler(source))

    def __get_pydantic_json_schema__(self, schema: CoreSchema, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        js = handler(schema)
        js.pop("minimum", None)
        js["exclusiveMinimum" if self.open_low else "minimum"] = self.lo
        js["maximum"] = self.hi
        return js

    def _check(self, value: float) -> float:
        low = value > self.lo if self.open_low else value >= self.lo
        if not low or value > self.hi:
            text = (self.below if not low else self.above) or self.words
            raise refuse(text.format(lo=_g(self.lo), hi=_g(self.hi), got=shown(value)))
        return value


@dataclass(frozen=True)
class Size:
    """Annotated metadata: a string's length or a list's item count in ``[lo, hi]``, refused in
    this API's words (``{n}``: the size found) and documented as ``minLength``/``maxLength`` or
    ``minItems``/``maxItems``."""

    lo: int
    hi: int
    words: str
    above: str = ""

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        return core_schema.no_info_after_validator_function(self._check, handler(source))

    def __get_pydantic_json_schema__(self, schema: CoreSchema, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        js = handler(schema)
        kind = "Items" if js.get("type") == "array" else "Length"
        js[f"min{kind}"], js[f"max{kind}"] = self.lo, self.hi
        return js

    def _check(self, value: Sequence[Any]) -> Sequence[Any]:
        n = len(value)
        if not self.lo <= n <= self.hi:
            raise refuse(((n > self.hi and self.above) or self.words).format(n=n, lo=self.lo, hi=self.hi))
        return value


@dataclass(frozen=True)
class Doc:
    """Annotated metadata that only documents (``minimum``, ``pattern``, ...): the check itself is
    one of the validators here, which words its reason as this API does."""

    keywords: tuple[tuple[str, Any], ...]

    def __get_pydantic_json_schema__(self, schema: CoreSchema, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        return {**handler(schema), **dict(self.keywords)}


def doc(**keywords: Any) -> Doc:
    return Doc(tuple(keywords.items()))


Integer = Annotated[int, BeforeValidator(_integer), doc(minimum=-MAX_NUMBER, maximum=MAX_NUMBER)]
Number = Annotated[float, BeforeValidator(_number), doc(minimum=-MAX_NUMBER, maximum=MAX_NUMBER)]
Text = Annotated[str, AfterValidator(_text)]


# --- validation errors -> InvalidParameter ------------------------------------------------

_REASONS = {
    "missing": "is required",
    "string_type": "must be a string",
    "bool_type": "must be true or false",
    "model_type": "must be a JSON object",
    "dict_type": "must be a JSON object",
    "list_type": "must be a JSON array",
}


Tagged = Mapping[tuple[int | str, ...], str]  # a tagged union's location -> the field that picks its member


def field_path(loc: Sequence[int | str], tagged: Tagged = {}) -> str:  # noqa: B006 (never mutated)
    """``("snapshot", "points", "points_ms", 3)`` -> ``snapshot.points_ms[3]``: the tag that
    follows a tagged union's location names no field and is left out."""
    path = ""
    for i, part in enumerate(loc):
        if tuple(loc[:i]) in tagged:
            continue
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path = f"{path}.{part}" if path else part
    return path


def _reason(error: ErrorDetails) -> str:
    kind, ctx = error["type"], error.get("ctx") or {}
    if kind == "openmps":
        return str(ctx["reason"])
    if kind == "literal_error":
        return f"must be {_unquoted(ctx['expected'])}, got {shown(error['input'])}"
    return _REASONS.get(kind, str(error["msg"]))


def _unquoted(choices: object) -> str:
    """Pydantic's "'a', 'b' or 'c'" (or "'a', 'b', 'c'") as this API writes it: "a, b or c"."""
    text = str(choices).replace("'", "")
    head, sep, last = text.rpartition(", ")
    return text if " or " in text or not sep else f"{head} or {last}"


def problems(exc: ValidationError, tagged: Tagged = {}) -> list[tuple[str, str]]:  # noqa: B006
    """Every ``(field, reason)`` pydantic found, in body order; a parent's unknown fields in one."""
    found: list[tuple[str, str]] = []
    unknown: dict[str, list[str]] = {}  # parent path -> its unknown field names
    for error in exc.errors():
        loc, kind = error["loc"], error["type"]
        if kind == "extra_forbidden":
            parent = field_path(loc[:-1], tagged)
            if parent not in unknown:
                found.append((parent, ""))  # its place in the list; the names are filled in below
            unknown.setdefault(parent, []).append(str(loc[-1]))
        elif kind == "union_tag_invalid" and tuple(loc) in tagged:
            name = tagged[tuple(loc)]
            value = error["input"].get(name) if isinstance(error["input"], dict) else None
            expected = _unquoted((error.get("ctx") or {}).get("expected_tags", ""))
            found.append((field_path((*loc, name)), f"must be {expected}, got {shown(value)}"))
        else:
            path = field_path(loc, tagged)
            found.append((path, _reason(error) if path else f"request body {_reason(error)}"))
    for i, (field, reason) in enumerate(found):
        if not reason:
            listed = f"has unknown field(s): {', '.join(sorted(unknown[field]))}"
            found[i] = (field, listed if field else f"request body {listed}")
    return found


M = TypeVar("M", bound=BaseModel)


def validated(model: type[M], body: Any, tagged: Tagged = {}) -> M:  # noqa: B006
    """``body`` (parsed JSON) as ``model``, or ``InvalidParameter`` naming every problem."""
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise InvalidParameter.of(problems(exc, tagged)) from None
