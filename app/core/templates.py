"""Output key templates in openmps's own, vendor-neutral syntax.

A template is object-key text with holes: ``{job_id}``, ``{index}`` (the 1-based image number),
``{sheet}`` (the 1-based sprite-sheet number) and ``{time_s}`` (the media time the image was asked
for, in whole seconds rounded down: names such as Huawei's ``<name>_<time>.jpg``); ``{index:5}``
zero-pads to 5 digits. Literal
braces are doubled (``{{`` / ``}}``), as in ``str.format``, so any key text a vendor allows can be
carried through. Each dialect translates its own syntax (MPS ``{Count}``, JD's ``%04d``, …) with
``from_vendor`` and spells a template back with ``to_vendor`` (MPS's ``UrlPattern``), so the
core never knows a vendor's token names.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Mapping

from app.core.errors import InvalidParameter

JOB_ID = "job_id"
INDEX = "index"
SHEET = "sheet"
TIME_S = "time_s"
TOKENS = frozenset({JOB_ID, INDEX, SHEET, TIME_S})
# Tokens that tell a job's images apart (a template for several images must hold one of them).
IMAGE_TOKENS = (INDEX, TIME_S)
MAX_PAD = 9

_PIECE = re.compile(r"\{\{|\}\}|\{([a-z_]+)(?::([0-9]))?\}|[{}]")


def render(
    template: str,
    *,
    job_id: str,
    index: int | None = None,
    sheet: int | None = None,
    time_ms: float | None = None,
) -> str:
    """The key for one image (or sheet). A token whose value is not given renders as ``""``.
    ``time_ms`` is the image's requested media time; ``{time_s}`` renders it in whole seconds."""
    # The epsilon absorbs float noise: a planned 0.1 s * 30 must name second 3, not 2.
    seconds = None if time_ms is None else math.floor(time_ms / 1000.0 + 1e-9)
    values: dict[str, str | int | None] = {JOB_ID: job_id, INDEX: index, SHEET: sheet, TIME_S: seconds}

    def piece(m: re.Match[str]) -> str:
        text = m.group(0)
        if text in ("{{", "}}"):
            return text[0]
        name, pad = m.group(1), m.group(2)
        value = values.get(name) if name else None
        if value is None:
            return ""
        if isinstance(value, int):
            return f"{value:0{int(pad or 0)}d}" if pad else str(value)
        return value

    return _PIECE.sub(piece, template)


def uses(template: str, token: str) -> bool:
    """Whether ``template`` holds ``token`` (``{token}`` or ``{token:N}``), not as escaped text."""
    return any(m.group(1) == token for m in _PIECE.finditer(template))


def check(template: str, field: str) -> None:
    """Refuse unknown tokens and lone braces, so a template renders the same on every path."""
    for m in _PIECE.finditer(template):
        text = m.group(0)
        if text in ("{{", "}}"):
            continue
        if m.group(1) is None:
            raise InvalidParameter(field, "has an unmatched brace (write literal braces as {{ and }})")
        if m.group(1) not in TOKENS:
            raise InvalidParameter(
                field, f"holds an unknown token {text!r}; known: {{job_id}}, {{index}}, {{sheet}}, {{time_s}}"
            )
        if m.group(1) == JOB_ID and m.group(2):
            raise InvalidParameter(field, "pads {job_id}; only {index}, {sheet} and {time_s} take a width")


def escape(text: str) -> str:
    """Literal key text as template text."""
    return text.replace("{", "{{").replace("}", "}}")


def from_vendor(text: str, spelling: Mapping[str, str]) -> str:
    """A vendor's key text -> neutral template. ``spelling`` maps vendor tokens to neutral ones,
    e.g. ``{"{Count}": "{index:5}", "{JobId}": "{job_id}"}``; everything else is literal.

    Pure, and a high-volume submitter sends the same few templates: the translations are kept
    (``_from_vendor``), a share of every submission otherwise."""
    return _from_vendor(text, tuple(spelling.items()))


@functools.lru_cache(maxsize=4096)
def _from_vendor(text: str, spelling_items: tuple[tuple[str, str], ...]) -> str:
    spelling = dict(spelling_items)
    if not spelling:
        return escape(text)
    pattern = re.compile("|".join(re.escape(k) for k in sorted(spelling, key=len, reverse=True)))
    out: list[str] = []
    pos = 0
    for m in pattern.finditer(text):
        out.append(escape(text[pos : m.start()]))
        out.append(spelling[m.group(0)])
        pos = m.end()
    out.append(escape(text[pos:]))
    return "".join(out)


def to_vendor(template: str, spelling: Mapping[str, str], *, job_id: str | None = None) -> str:
    """A neutral template spelled in a vendor's syntax (the inverse of ``from_vendor``):
    ``spelling`` maps neutral token names to vendor text; ``job_id`` given renders that token.
    Kept like ``from_vendor``'s, but for a rendered job id (one per job: nothing to share)."""
    if job_id is None:
        return _to_vendor(template, tuple(spelling.items()))
    return _spell(template, spelling, job_id)


@functools.lru_cache(maxsize=4096)
def _to_vendor(template: str, spelling_items: tuple[tuple[str, str], ...]) -> str:
    return _spell(template, dict(spelling_items), None)


def _spell(template: str, spelling: Mapping[str, str], job_id: str | None) -> str:
    def piece(m: re.Match[str]) -> str:
        text = m.group(0)
        if text in ("{{", "}}"):
            return text[0]
        name = m.group(1) or ""
        if name == JOB_ID and job_id is not None:
            return job_id
        return spelling.get(name, text)

    return _PIECE.sub(piece, template)


def literal_head(template: str, *, job_id: str) -> str:
    """The text every key rendered from ``template`` for this job starts with: the literal text
    (and the job id) up to the first numbered token. What a key-prefix permission is checked on."""
    out: list[str] = []
    pos = 0
    for m in _PIECE.finditer(template):
        out.append(template[pos : m.start()])
        text = m.group(0)
        if text in ("{{", "}}"):
            out.append(text[0])
        elif m.group(1) == JOB_ID:
            out.append(job_id)
        else:
            return "".join(out)
        pos = m.end()
    out.append(template[pos:])
    return "".join(out)


def matcher(template: str, *, job_id: str, given: tuple[str, ...]) -> re.Pattern[str]:
    """A regex that full-matches every key ``template`` renders for this job when the tokens in
    ``given`` get numbers (>= 1) and the others none (they render as ``""``)."""
    out: list[str] = []
    pos = 0
    for m in _PIECE.finditer(template):
        out.append(re.escape(template[pos : m.start()]))
        text, name, pad = m.group(0), m.group(1), m.group(2)
        if text in ("{{", "}}") or name is None:
            out.append(re.escape(text[0]))
        elif name == JOB_ID:
            out.append(re.escape(job_id))
        elif name in given:
            out.append(rf"\d{{{int(pad)},}}" if pad else r"\d+")
        pos = m.end()
    out.append(re.escape(template[pos:]))
    return re.compile("".join(out), re.DOTALL)
